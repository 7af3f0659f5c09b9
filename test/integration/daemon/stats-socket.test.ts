// Statistics of a real `lunkit daemon` (bin/lunkit.js, needs `npm run build`)
// over its control socket and its --metrics endpoint: a naive initiator
// (test/helpers/naive-iscsi.ts) reads a known number of bytes; stats.snapshot,
// the stats.subscribe stream and `curl -s` on /metrics must all count exactly
// those bytes. The Prometheus text is checked line by line by a small parser
// written here (text format 0.0.4), independent of src/daemon/metrics.ts.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

import { streamSnapshots } from '../../../src/cli/commands/stats.js';
import { ControlClient } from '../../../src/daemon/control-client.js';
import type { StatsSnapshot } from '../../../src/daemon/metrics.js';
import { startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { NaiveIscsiClient } from '../../helpers/naive-iscsi.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.lunkit:stats';
// A quote and a backslash: the label escaping of the session series is exercised for real.
const INITIATOR = 'iqn.2026-11.org.example:reader"one\\two';

// ---------------------------------------------------------------------------
// A strict little parser of the Prometheus text format 0.0.4

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  type: string;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value "${text}" in: ${line}`);
  return Number(text);
}

/** `{a="x",b="y\"z"}` starting at text[0] === '{'; returns labels and the index after '}'. */
function parseLabels(text: string, line: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === '}') return { labels, end: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`label without = in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '"') break;
      if (c === '\\') {
        const e = text[j + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new Error(`bad escape \\${e} in: ${line}`);
        j += 2;
        continue;
      }
      if (c === '\n') throw new Error(`raw newline in a label value: ${line}`);
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`expected , or } after label ${name} in: ${line}`);
  }
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  if (families.has(sample)) return families.get(sample);
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const f = families.get(sample.slice(0, -suffix.length));
      if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
    }
  }
  return undefined;
}

function parsePrometheusText(body: string): Map<string, Family> {
  if (!body.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  let current: Family | undefined;
  for (const line of body.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      let f = families.get(name);
      if (f && f.samples.length > 0) throw new Error(`${kind} after samples of ${name}`);
      if (closed.has(name)) throw new Error(`family ${name} appears twice`);
      if (!f) {
        f = { name, type: 'untyped', help: undefined, samples: [] };
        families.set(name, f);
        if (current && current !== f) closed.add(current.name);
        current = f;
      }
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`bad type in: ${line}`);
        f.type = rest;
      } else {
        if (f.help !== undefined) throw new Error(`two HELP lines for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`bad escape in HELP: ${line}`);
        f.help = rest.replace(/\\(\\|n)/g, (_, e: string) => (e === 'n' ? '\n' : '\\'));
      }
      continue;
    }
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) throw new Error(`bad sample line: ${line}`);
    const name = nm[0];
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      const l = parseLabels(rest, line);
      labels = l.labels;
      rest = rest.slice(l.end);
    }
    const parts = rest.trim().split(' ');
    if (!rest.startsWith(' ') || parts.length < 1 || parts.length > 2) throw new Error(`bad value part in: ${line}`);
    const value = parseValue(parts[0], line);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`bad timestamp in: ${line}`);
    const f = familyOf(name, families);
    if (!f) throw new Error(`sample ${name} without HELP/TYPE before it`);
    if (f !== current) throw new Error(`sample ${name} away from its family's block`);
    if (f.type === 'histogram' && name.endsWith('_bucket') && labels.le === undefined) throw new Error(`bucket without le: ${line}`);
    f.samples.push({ name, labels, value });
  }
  // Histograms: cumulative buckets, +Inf equal to _count, per label set.
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const series = new Map<string, { buckets: Array<[number, number]>; count?: number }>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      const e = series.get(key) ?? { buckets: [] };
      series.set(key, e);
      if (s.name.endsWith('_bucket')) e.buckets.push([parseValue(le, le), s.value]);
      if (s.name.endsWith('_count')) e.count = s.value;
    }
    for (const [key, e] of series) {
      for (let i = 1; i < e.buckets.length; i++) {
        if (!(e.buckets[i][0] > e.buckets[i - 1][0]) || e.buckets[i][1] < e.buckets[i - 1][1]) throw new Error(`${f.name} ${key}: buckets not cumulative`);
      }
      const inf = e.buckets.at(-1);
      if (!inf || inf[0] !== Infinity || inf[1] !== e.count) throw new Error(`${f.name} ${key}: +Inf bucket differs from _count`);
    }
  }
  return families;
}

function value(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = familyOf(name, fams);
  const hits = (f?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hits.length} series`);
  return hits[0]?.value;
}

// ---------------------------------------------------------------------------

/** Reads PDUs until the command's status; returns the Data-In bytes and the status. */
async function untilStatus(c: NaiveIscsiClient): Promise<{ data: number; status: number }> {
  let data = 0;
  for (;;) {
    const p = await c.next(5000);
    if (!p) throw new Error('no response from the target');
    if (p.opcode === 0x25) {
      data += p.data.length;
      if (p.bhs[1] & 0x01) return { data, status: p.bhs[3] };
    } else if (p.opcode === 0x21) return { data, status: p.bhs[3] };
  }
}

const read10 = (lba: number, blocks: number): number[] => [0x28, 0, 0, 0, (lba >> 8) & 0xff, lba & 0xff, 0, 0, blocks, 0];

interface Ping {
  pid: number;
  listening: { iscsi: Array<{ iqn: string; host: string; port: number }> };
}

describe('statistics of a running daemon', () => {
  let daemon: DaemonProcess | undefined;
  const clients: ControlClient[] = [];
  let initiator: NaiveIscsiClient | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    initiator?.close();
    for (const c of clients.splice(0)) c.close();
    await daemon?.stop();
    daemon = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function control(): Promise<ControlClient> {
    const c = await ControlClient.connect(daemon!.socket);
    clients.push(c);
    return c;
  }

  it('counts what an initiator read in stats.snapshot, the stats.subscribe stream and /metrics', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-stats-'));
    const config = join(dir, 'lunkit.json');
    await writeFile(
      config,
      JSON.stringify({
        backstores: { ram0: { type: 'ramdisk', size: '16M' } },
        iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'ram0' }, attributes: { generateNodeAcls: true } } } } } },
      }),
    );
    daemon = await startDaemon({ dir, config, args: ['--metrics', '127.0.0.1:0'] });
    const url = /^metrics (http:\/\/\S+)$/m.exec(daemon.stdout())?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(daemon.stdout().indexOf('metrics ')).toBeLessThan(daemon.stdout().indexOf('ready'));

    const c = await control();
    const ping = await c.call<Ping>('ping');
    const portal = ping.listening.iscsi.find((a) => a.iqn === IQN)!;
    expect(portal.port).toBeGreaterThan(0);

    // Before any initiator: the LUN is there, with nothing read.
    const before = await c.call<StatsSnapshot>('stats.snapshot');
    expect(before.core.luns).toEqual([expect.objectContaining({ name: 'ram0', backstore: 'ramdisk', sizeBytes: 16 * 1024 * 1024, readBytes: 0 })]);
    expect(before.iscsi?.targets[0]).toMatchObject({ iqn: IQN, tpgs: [{ tag: 1, luns: [{ lun: 0, device: 'ram0' }] }] });

    // A subscriber from the start: its stream must end up with the same numbers.
    const streamed: StatsSnapshot[] = [];
    const streamErrors: Error[] = [];
    const stream = await streamSnapshots(c, 100, { onSnapshot: (s) => streamed.push(s), onError: (e) => streamErrors.push(e) });
    expect(stream.mode).toBe('subscribe');

    // The initiator: N bytes in READ(10)s of various sizes.
    const ini = (initiator = await NaiveIscsiClient.connect(portal.port, portal.host));
    await ini.login(INITIATOR, IQN);
    for (let i = 0; i < 5; i++) {
      ini.send(ini.scsiCommand([0, 0, 0, 0, 0, 0]));
      if ((await untilStatus(ini)).status === 0) break;
    }
    let n = 0;
    const sizes = [1, 8, 128, 255, 64, 17];
    let lba = 0;
    for (const blocks of sizes) {
      ini.send(ini.scsiCommand(read10(lba, blocks), { read: true, edtl: blocks * 512 }));
      const r = await untilStatus(ini);
      expect(r.status).toBe(0);
      n += r.data;
      lba += blocks;
    }
    expect(n).toBe(sizes.reduce((a, b) => a + b, 0) * 512);

    const snap = await c.call<StatsSnapshot>('stats.snapshot');
    const lun = snap.core.luns.find((l) => l.name === 'ram0')!;
    expect(lun.readBytes).toBe(n);
    expect(lun.reads).toBe(sizes.length);
    expect(lun.writtenBytes).toBe(0);
    const sess = snap.iscsi!.sessions.find((s) => s.initiatorName === INITIATOR)!;
    expect(sess).toMatchObject({ targetName: IQN, type: 'normal' });
    const nexus = snap.core.nexuses.find((x) => x.id === sess.nexusId)!;
    expect(nexus.readBytes).toBe(n);
    expect(snap.events.map((e) => e.channel)).toEqual(expect.arrayContaining(['lunkit:iscsi:login', 'lunkit:core:nexus-open']));
    // eventsSince: only the newer ones.
    const lastSeq = snap.events.at(-1)!.seq;
    expect((await c.call<StatsSnapshot>('stats.snapshot', { eventsSince: lastSeq })).events).toEqual([]);

    // The stream: a snapshot taken after the reads shows the same bytes; its
    // events arrive once each, in order.
    const t = Date.now();
    while (!streamed.some((s) => s.core.luns[0]?.readBytes === n) && Date.now() - t < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(streamed.some((s) => s.core.luns[0]?.readBytes === n)).toBe(true);
    const seqs = streamed.flatMap((s) => s.events.map((e) => e.seq));
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    expect(streamed.flatMap((s) => s.events).some((e) => e.channel === 'lunkit:iscsi:login' && e.fields.initiator === INITIATOR)).toBe(true);
    await stream.stop();
    expect(streamErrors).toEqual([]);
    const count = streamed.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(streamed.length).toBe(count);

    // curl on /metrics: every line parses; the byte counter is N.
    const { stdout: body } = await run('curl', ['-s', '-f', '--max-time', '10', url!], { timeout: 15_000 });
    const fams = parsePrometheusText(body);
    const lunLabels = { target: IQN, lun: '0', backstore: 'ram0' };
    expect(familyOf('lunkit_lun_read_bytes_total', fams)?.type).toBe('counter');
    expect(familyOf('lunkit_lun_read_bytes_total', fams)?.help).toBeTruthy();
    expect(value(fams, 'lunkit_lun_read_bytes_total', lunLabels)).toBe(n);
    expect(value(fams, 'lunkit_lun_reads_total', lunLabels)).toBe(sizes.length);
    expect(value(fams, 'lunkit_lun_write_bytes_total', lunLabels)).toBe(0);
    expect(value(fams, 'lunkit_lun_size_bytes', lunLabels)).toBe(16 * 1024 * 1024);
    expect(value(fams, 'lunkit_session_read_bytes_total', { initiator: INITIATOR })).toBe(n);
    expect(value(fams, 'lunkit_iscsi_logins_total', { result: 'ok' })).toBe(1);
    expect(value(fams, 'lunkit_iscsi_sessions')).toBe(1);
    expect(familyOf('lunkit_lun_latency_seconds', fams)?.type).toBe('histogram');
    expect(value(fams, 'lunkit_lun_latency_seconds_count', lunLabels)).toBe(value(fams, 'lunkit_lun_commands_total', lunLabels));
    // The raw line really carries the escaped initiator name.
    expect(body).toContain('initiator="iqn.2026-11.org.example:reader\\"one\\\\two"');
  });

  it('ends the subscription of a client that disconnects; the daemon carries on', async () => {
    daemon = await startDaemon({ args: ['--metrics', '127.0.0.1:0'] });
    const a = await control();
    const b = await control();
    const got: number[] = [];
    const offA = a.onNotification((method) => {
      if (method === 'stats') got.push(Date.now());
    });
    const subA = await a.call<{ subscription: number; intervalMs: number }>('stats.subscribe', { intervalMs: 100 });
    expect(subA.intervalMs).toBe(100);
    const subB = await b.call<{ subscription: number }>('stats.subscribe', { intervalMs: 100 });
    expect(subB.subscription).not.toBe(subA.subscription);
    const t = Date.now();
    while (got.length < 2 && Date.now() - t < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBeGreaterThanOrEqual(2);
    // Another connection cannot end A's subscription.
    await expect(b.call('stats.unsubscribe', { subscription: subA.subscription })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    expect((await b.call<Ping & { subscriptions: number }>('ping')).subscriptions).toBe(2);
    offA();
    a.close();
    // The daemon notices the close: A's subscription is gone, B's is fine.
    const t2 = Date.now();
    let left = 2;
    while (left !== 1 && Date.now() - t2 < 5000) {
      await new Promise((r) => setTimeout(r, 50));
      left = (await b.call<Ping & { subscriptions: number }>('ping')).subscriptions;
    }
    expect(left).toBe(1);
    expect((await b.call<Ping>('ping')).pid).toBe(daemon.child.pid);
    expect(await b.call('stats.unsubscribe', { subscription: subB.subscription })).toEqual({});
    // Bad intervals are refused with the reason.
    await expect(b.call('stats.subscribe', { intervalMs: 5 })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMS' });
    // A third connection still gets answers.
    const c = await control();
    expect((await c.call<Ping>('ping')).pid).toBe(daemon.child.pid);
  });
});
