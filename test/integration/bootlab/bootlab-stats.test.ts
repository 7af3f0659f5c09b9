// Boot-lab clients in the statistics (issue 15) on a live daemon (in-process,
// 127.0.0.1): a lab with two clients on a small golden image, one logged in
// writing a few blocks. The snapshot shows it logged in with writes and a
// bigger overlay than the other's; `lunkit stats` (the command module's code
// on the daemon's socket) and the Prometheus endpoint show both.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { labTargetIqn, clientInitiatorIqn } from '../../../src/bootlab/names.js';
import { printStats } from '../../../src/cli/commands/stats.js';
import type { Io } from '../../../src/cli/output.js';
import type { RequestContext } from '../../../src/daemon/control-server.js';
import { ControlClient } from '../../../src/daemon/control-client.js';
import type { BootlabClientStats } from '../../../src/daemon/bootlab-stats.js';
import { LunkitDaemon } from '../../../src/daemon/daemon.js';
import { IscsiSession, write16 } from '../../../src/initiator/index.js';
import { freePort } from '../../helpers/daemon-process.js';
import { parsePrometheus, sampleValue } from '../../unit/stats/prom-parser.js';

const ctx = { id: 1, progress: () => {}, connection: { notify: () => true, onClose: () => {} } } as unknown as RequestContext;
const PC01 = '52:54:00:aa:00:01';
const PC02 = '52:54:00:aa:00:02';
let dir: string;
let daemon: LunkitDaemon;
let session: IscsiSession | undefined;
let iscsiPort: number;

async function call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await daemon.handle(method, params, ctx)) as Record<string, unknown>;
}

/** WRITE(16) through the unit attentions a new session brings. */
async function wr(s: IscsiSession, lba: number, data: Buffer): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const r = await write16(s, 0, lba, data, { blockSize: 512 });
    if (r.ok) return;
    if (r.sense?.key !== 6) throw new Error(`WRITE failed: status ${r.status} ${r.sense?.keyName} asc ${r.sense?.asc}/${r.sense?.ascq}`);
  }
  throw new Error('WRITE: unit attentions did not stop');
}

function clients(): Record<string, BootlabClientStats> {
  const lab = daemon.statsSnapshot().bootlabs?.find((l) => l.name === 'lab1');
  return Object.fromEntries((lab?.clients ?? []).map((c) => [c.name, c]));
}

/** Snapshots until `ok` holds (overlay sizes are sampled in the background, at most every 5 s). */
async function until(ok: (c: Record<string, BootlabClientStats>) => boolean, ms = 15_000): Promise<Record<string, BootlabClientStats>> {
  const end = Date.now() + ms;
  for (;;) {
    const c = clients();
    if (ok(c)) return c;
    if (Date.now() > end) throw new Error(`timed out; last: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function captureIo(): { io: Io; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        add(chunk.toString());
        cb();
      },
    });
  return { io: { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) }, out: () => out, err: () => err };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-bootlab-stats-'));
  await writeFile(join(dir, 'golden.img'), Buffer.alloc(4 * 1024 * 1024, 0x47));
  const ports = { http: await freePort(), tftp: await freePort(), iscsi: await freePort() };
  iscsiPort = ports.iscsi;
  daemon = await LunkitDaemon.start({ socketPath: join(dir, 's.sock'), metrics: '127.0.0.1:0' });
  await call('bootlab.create', { name: 'lab1', golden: join(dir, 'golden.img'), listen: '127.0.0.1', ports, dir: join(dir, 'lab1') });
  await call('bootlab.client.add', { lab: 'lab1', mac: PC01, name: 'pc01' });
  await call('bootlab.client.add', { lab: 'lab1', mac: PC02, name: 'pc02' });
});

afterAll(async () => {
  await session?.logout().catch(() => undefined);
  await daemon?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

describe('boot-lab clients in stats', () => {
  it('shows both clients off, with their LUs, before anyone logs in', async () => {
    const c = await until((x) => (x.pc01?.deltaBytes ?? null) !== null && (x.pc02?.deltaBytes ?? null) !== null);
    expect(c.pc01).toMatchObject({ mac: PC01, lun: 0, backstore: 'bootlab.lab1.pc01', initiator: clientInitiatorIqn('lab1', 'pc01'), loggedIn: false, sessions: 0, lastBoot: null });
    expect(c.pc02).toMatchObject({ mac: PC02, lun: 1, loggedIn: false });
    expect(c.pc01.io).toMatchObject({ writes: 0, writtenBytes: 0 });
    const lu = daemon.statsSnapshot().core.luns.find((l) => l.id === c.pc01.io?.luId);
    expect(lu?.name).toBe('bootlab.lab1.pc01');
  });

  it('shows the client that logs in and writes: logged in, nonzero writes, a bigger delta', async () => {
    const before = clients();
    session = await IscsiSession.open({ host: '127.0.0.1', port: iscsiPort, targetName: labTargetIqn('lab1'), initiatorName: clientInitiatorIqn('lab1', 'pc01'), keepaliveIntervalMs: 0 });
    // Four 64 KiB writes at spread offsets: new clusters in the overlay.
    for (const lba of [0, 2048, 4096, 6144]) await wr(session, lba, Buffer.alloc(65536, 0x57));
    const c = await until((x) => x.pc01.loggedIn && (x.pc01.deltaBytes ?? 0) > (before.pc01.deltaBytes ?? 0), 15_000);
    expect(c.pc01.sessions).toBe(1);
    expect(c.pc01.io?.writes).toBeGreaterThanOrEqual(4);
    expect(c.pc01.io?.writtenBytes).toBe(4 * 65536);
    expect(c.pc01.deltaBytes).toBeGreaterThan(c.pc02.deltaBytes ?? 0);
    expect(c.pc02).toMatchObject({ loggedIn: false, sessions: 0, io: { writes: 0 } });
  });

  it('`lunkit stats` on the socket shows both clients; --bootlab --json gives the part', async () => {
    const client = await ControlClient.connect(daemon.socketPath);
    try {
      const table = captureIo();
      await printStats(client, { json: false }, table.io);
      const lines = table.out().split('\n');
      expect(lines).toContain(`Boot lab lab1: 1 of 2 clients logged in; target ${labTargetIqn('lab1')}`);
      expect(lines.find((l) => l.startsWith('pc01 '))).toMatch(new RegExp(`^pc01\\s+${PC01}\\s+0 yes\\s+\\S+\\s+0B\\s+256KiB\\s+\\d+\\s`));
      expect(lines.find((l) => l.startsWith('pc02 '))).toMatch(new RegExp(`^pc02\\s+${PC02}\\s+1 no\\s+\\S+\\s+0B\\s+0B\\s+0\\s`));
      // The LU table lists the clients' LUs too.
      expect(table.out()).toMatch(/^…\S*lab1\.pc01\s+qcow2/m);

      const json = captureIo();
      await printStats(client, { json: true, bootlab: 'lab1' }, json.io);
      const part = JSON.parse(json.out()) as { bootlabs: Array<{ name: string; clients: BootlabClientStats[] }> };
      expect(part.bootlabs.map((l) => l.name)).toEqual(['lab1']);
      expect(part.bootlabs[0].clients.map((c) => [c.name, c.loggedIn])).toEqual([
        ['pc01', true],
        ['pc02', false],
      ]);
      await expect(printStats(client, { json: false, bootlab: 'nolab' }, captureIo().io)).rejects.toThrow(/no boot lab "nolab" \(labs: lab1\)/);
    } finally {
      client.close();
    }
  });

  it('the Prometheus endpoint has the client families', async () => {
    const text = await fetch(daemon.metricsUrl!).then((r) => r.text());
    const fams = parsePrometheus(text);
    expect(sampleValue(fams, 'lunkit_bootlab_client_logged_in', { lab: 'lab1', client: 'pc01', mac: PC01 })).toBe(1);
    expect(sampleValue(fams, 'lunkit_bootlab_client_logged_in', { lab: 'lab1', client: 'pc02', mac: PC02 })).toBe(0);
    expect(sampleValue(fams, 'lunkit_bootlab_client_delta_bytes', { client: 'pc01' })).toBeGreaterThan(sampleValue(fams, 'lunkit_bootlab_client_delta_bytes', { client: 'pc02' }) ?? 0);
    expect(sampleValue(fams, 'lunkit_bootlab_clients_logged_in', { lab: 'lab1' })).toBe(1);
    expect(sampleValue(fams, 'lunkit_lun_write_bytes_total', { backstore: 'bootlab.lab1.pc01' })).toBe(4 * 65536);
  });
});
