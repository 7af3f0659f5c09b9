// `lunkit stats [--json] [--watch] [--interval S] [--bootlab [LAB]]`: the
// dashboard's numbers as a table (or JSON) from the daemon's stats.snapshot
// (docs/stats.md). Once: counters since start. --watch: rates over each
// interval from a stats.subscribe stream (polling stats.snapshot against a
// daemon without it), until Ctrl-C; with --json one snapshot per line.
// Boot labs get a client table each; --bootlab shows only those (one lab, or
// all), and with --json only the snapshot's `bootlabs` part.

import type { Argv, CommandModule } from 'yargs';

import { ControlError, type ControlClient } from '../../daemon/control-client.js';
import type { BootlabStats } from '../../daemon/bootlab-stats.js';
import type { StatsSnapshot } from '../../daemon/metrics.js';
import { LunkitError } from '../../protocols/errors.js';
import { diffBuckets, quantileUs, type CommandCounters } from '../../core/stats.js';
import { columns, formatAge, formatBytes, formatCount, formatLatency, formatRate, type Column } from '../../dashboard/format.js';
import { UsageError, processIo, runVerb, withCommon, type CommonArgs, type Io } from '../output.js';

interface StatsArgs extends CommonArgs {
  watch: boolean;
  interval: number;
  /** Only boot-lab clients: of this lab, or of every lab when '' (a bare --bootlab). */
  bootlab?: string;
}

function mappings(snap: StatsSnapshot): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const t of snap.iscsi?.targets ?? []) {
    for (const tpg of t.tpgs) for (const l of tpg.luns) out.set(l.device, [...(out.get(l.device) ?? []), `${t.iqn}/${l.lun}`]);
  }
  return out;
}

interface Interval {
  read: number;
  write: number;
  iops: number;
  p99: number;
}

function interval(now: CommandCounters, before: CommandCounters | undefined, dt: number): Interval | undefined {
  if (!before || dt <= 0) return undefined;
  const n = now.latency.count - before.latency.count;
  return {
    read: (now.readBytes - before.readBytes) / dt,
    write: (now.writtenBytes - before.writtenBytes) / dt,
    iops: (now.commands - before.commands) / dt,
    p99: n > 0 ? quantileUs(diffBuckets(now.latency.buckets, before.latency.buckets), 0.99) : 0,
  };
}

const LUN_COLS: Column[] = [
  // Cut from the left: derived names share their start (bootlab.<lab>.<client>).
  { width: 12, cut: 'start' },
  { width: 7 },
  { width: 7, right: true },
  { width: 30, cut: 'start' },
  { width: 10, right: true },
  { width: 10, right: true },
  { width: 9, right: true },
  { width: 6, right: true },
  { width: 7, right: true },
];

const SESSION_COLS: Column[] = [
  { width: 34, cut: 'start' },
  { width: 21 },
  { width: 12 },
  { width: 6, right: true },
  { width: 10, right: true },
  { width: 10, right: true },
  { width: 4, right: true },
];

const CLIENT_COLS: Column[] = [
  { width: 16 },
  { width: 17 },
  { width: 5, right: true },
  { width: 9 },
  { width: 8, right: true },
  { width: 10, right: true },
  { width: 10, right: true },
  { width: 9, right: true },
  { width: 7, right: true },
  { width: 10, right: true },
];

/** The labs `only` names ('' or undefined: all); undefined when that lab does not exist. */
export function selectLabs(snap: StatsSnapshot, only?: string): BootlabStats[] | undefined {
  const labs = snap.bootlabs ?? [];
  if (!only) return labs;
  const lab = labs.find((l) => l.name === only);
  return lab ? [lab] : undefined;
}

/**
 * A client table per lab: who is logged in, the overlay's size, the LU's
 * totals (or, with `prev`, rates over the interval), last boot.
 */
export function formatBootlabTables(snap: StatsSnapshot, labs: readonly BootlabStats[], prev?: StatsSnapshot): string {
  const dt = prev ? (snap.time - prev.time) / 1000 : 0;
  const rates = prev !== undefined && dt > 0;
  const lus = new Map(snap.core.luns.map((l) => [l.id, l]));
  const prevLus = new Map((prev?.core.luns ?? []).map((l) => [l.id, l]));
  const out: string[] = [];
  for (const lab of labs) {
    const on = lab.clients.filter((c) => c.loggedIn).length;
    if (out.length > 0) out.push('');
    out.push(`Boot lab ${lab.name}: ${on} of ${lab.clients.length} client${lab.clients.length === 1 ? '' : 's'} logged in; target ${lab.target}`);
    out.push(
      columns(
        ['CLIENT', 'MAC', 'LUN', 'LOGGED-IN', 'DELTA', rates ? 'READ/s' : 'READ', rates ? 'WRITTEN/s' : 'WRITTEN', rates ? 'IOPS' : 'COMMANDS', 'P99', 'LAST BOOT'],
        CLIENT_COLS,
      ).trimEnd(),
    );
    for (const c of lab.clients) {
      const lu = c.io ? lus.get(c.io.luId) : undefined;
      const iv = lu ? interval(lu, prevLus.get(lu.id), dt) : undefined;
      const booted = c.lastBoot ? Date.parse(c.lastBoot.time) : NaN;
      out.push(
        columns(
          [
            c.name,
            c.mac,
            String(c.lun),
            c.loggedIn ? (c.sessions > 1 ? `yes (${c.sessions})` : 'yes') : 'no',
            c.deltaBytes === null ? '-' : formatBytes(c.deltaBytes),
            rates ? formatRate(iv?.read ?? 0) : formatBytes(c.io?.readBytes ?? 0),
            rates ? formatRate(iv?.write ?? 0) : formatBytes(c.io?.writtenBytes ?? 0),
            rates ? formatCount(iv?.iops ?? 0) : String(c.io?.commands ?? 0),
            formatLatency(rates ? (iv?.p99 ?? 0) : (c.io?.latency.p99Us ?? 0)),
            Number.isFinite(booted) ? `${formatAge(snap.time - booted)} ago` : '-',
          ],
          CLIENT_COLS,
        ).trimEnd(),
      );
    }
    if (lab.clients.length === 0) out.push('(no clients)');
  }
  return out.length > 0 ? out.join('\n') + '\n' : '';
}

/**
 * The human table of a snapshot. With `prev` (watch mode) LUN and session
 * columns are rates over the interval between the two; without, totals.
 * Boot labs follow, a client table each.
 */
export function formatStatsTable(snap: StatsSnapshot, prev?: StatsSnapshot): string {
  const dt = prev ? (snap.time - prev.time) / 1000 : 0;
  const rates = prev !== undefined && dt > 0;
  const maps = mappings(snap);
  const out: string[] = [];
  const prevLun = new Map((prev?.core.luns ?? []).map((l) => [l.id, l]));
  out.push(
    columns(
      ['LU', 'TYPE', 'SIZE', 'MAPPED AS', rates ? 'READ/s' : 'READ', rates ? 'WRITTEN/s' : 'WRITTEN', rates ? 'IOPS' : 'COMMANDS', 'ERRORS', 'P99'],
      LUN_COLS,
    ).trimEnd(),
  );
  for (const l of snap.core.luns) {
    const iv = interval(l, prevLun.get(l.id), dt);
    out.push(
      columns(
        [
          l.name,
          l.backstore,
          formatBytes(l.sizeBytes),
          (maps.get(l.name) ?? ['-']).join(','),
          rates ? formatRate(iv?.read ?? 0) : formatBytes(l.readBytes),
          rates ? formatRate(iv?.write ?? 0) : formatBytes(l.writtenBytes),
          rates ? formatCount(iv?.iops ?? 0) : String(l.commands),
          String(l.errors),
          formatLatency(rates ? (iv?.p99 ?? 0) : l.latency.p99Us),
        ],
        LUN_COLS,
      ).trimEnd(),
    );
  }
  if (snap.core.luns.length === 0) out.push('(no LUs)');
  // A latched flush failure (core/io-guard.ts) is a state, not a counter: one line per LU under the table.
  for (const l of snap.core.luns) {
    const e = l.mediumError;
    if (e) out.push(`${l.name}: MEDIUM ERROR since ${new Date(e.at).toISOString()} (${e.op} failed: ${e.code}); ${e.refused} flushes/FUA writes refused; lunkit backstore clear-error ${l.name}`);
  }
  out.push('');
  const isessions = new Map((snap.iscsi?.sessions ?? []).filter((s) => s.nexusId !== null).map((s) => [s.nexusId as number, s]));
  const prevNexus = new Map((prev?.core.nexuses ?? []).map((n) => [n.id, n]));
  out.push(columns(['SESSION', 'ADDRESS', 'ISID', 'AGE', rates ? 'READ/s' : 'READ', rates ? 'WRITTEN/s' : 'WRITTEN', 'INFL'], SESSION_COLS).trimEnd());
  for (const n of snap.core.nexuses) {
    const is = isessions.get(n.id);
    const iv = interval(n, prevNexus.get(n.id), dt);
    out.push(
      columns(
        [
          `${n.initiatorName} -> ${n.targetName}`,
          is?.connections[0]?.remote ?? n.fabric,
          is?.isid ?? '-',
          formatAge(snap.time - n.openedAt),
          rates ? formatRate(iv?.read ?? 0) : formatBytes(n.readBytes),
          rates ? formatRate(iv?.write ?? 0) : formatBytes(n.writtenBytes),
          String(n.inFlight),
        ],
        SESSION_COLS,
      ).trimEnd(),
    );
  }
  if (snap.core.nexuses.length === 0) out.push('(no sessions)');
  const t = snap.iscsi?.totals;
  if (t) {
    const rej = Object.entries(t.rejects).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    out.push(
      '',
      `iSCSI: ${t.sessions} sessions, ${t.connections} connections; logins ${t.loginsOk} ok, ${t.loginsFailed} failed; logouts ${t.logouts}; ` +
        `rejects ${rej}; digest errors header ${t.headerDigestErrors}, data ${t.dataDigestErrors}; in ${formatBytes(t.bytesIn)}, out ${formatBytes(t.bytesOut)}`,
      // Budgets (docs/security.md): what clients make the target hold now, and how often reading stopped.
      `iSCSI held: write data ${formatBytes(t.writeBytesHeld ?? 0)}, immediate commands ${t.immediateInFlight ?? 0}, retained ${formatBytes(t.retainedBytes ?? 0)}; ` +
        `reading paused ${t.readPausesBackpressure ?? 0}x for backpressure, ${t.readPausesBudget ?? 0}x for write budget; ${t.retentionDrops ?? 0} connections dropped over retention`,
    );
  }
  const n = snap.nbd;
  if (n) {
    out.push(
      '',
      `NBD: ${n.connections} connections (${n.handshaking} haggling), ${n.inFlight} requests in flight; held ${formatBytes(n.inFlightBytes)}, queued ${formatBytes(n.queuedBytes)}, ${n.paused} not reading; ` +
        `reading paused ${n.readPausesBackpressure}x for backpressure, ${n.readPausesBudget}x for budget; ` +
        `closed on handshake timeout ${n.handshakeTimeouts}, idle timeout ${n.idleTimeouts}, too many options ${n.tooManyOptions}`,
    );
  }
  const labs = snap.bootlabs ?? [];
  if (labs.length > 0) out.push('', formatBootlabTables(snap, labs, prev).trimEnd());
  return out.join('\n') + '\n';
}

function noSuchLab(snap: StatsSnapshot, name: string): LunkitError {
  const names = (snap.bootlabs ?? []).map((l) => l.name);
  return new LunkitError('ERR_NOT_FOUND', `no boot lab "${name}" (${names.length > 0 ? `labs: ${names.join(', ')}` : 'the daemon has no boot labs'})`);
}

/**
 * One snapshot as --json and --bootlab ask: the whole table (or snapshot),
 * or the boot-lab client tables (or `{ version, time, bootlabs }`).
 * `prev` turns totals into rates (watch mode).
 */
export function renderSnapshot(snap: StatsSnapshot, opts: { json: boolean; bootlab?: string | undefined; pretty?: boolean }, prev?: StatsSnapshot): string {
  if (opts.bootlab === undefined) return opts.json ? `${JSON.stringify(snap, null, opts.pretty ? 2 : undefined)}\n` : formatStatsTable(snap, prev);
  const labs = selectLabs(snap, opts.bootlab);
  if (!labs) throw noSuchLab(snap, opts.bootlab);
  if (opts.json) return `${JSON.stringify({ version: snap.version, time: snap.time, bootlabs: labs }, null, opts.pretty ? 2 : undefined)}\n`;
  return labs.length > 0 ? formatBootlabTables(snap, labs, prev) : '(no boot labs)\n';
}

/** `lunkit stats` without --watch: one snapshot, printed. */
export async function printStats(client: ControlClient, opts: { json: boolean; bootlab?: string | undefined }, io: Io): Promise<void> {
  const snap = await fetchSnapshot(client);
  io.stdout.write(renderSnapshot(snap, { ...opts, pretty: true }));
}

export function fetchSnapshot(client: ControlClient, eventsSince = 0): Promise<StatsSnapshot> {
  return client.call<StatsSnapshot>('stats.snapshot', eventsSince > 0 ? { eventsSince } : {});
}

/** A running stream of snapshots (streamSnapshots). */
export interface SnapshotStream {
  /** 'subscribe': stats.subscribe notifications; 'poll': stats.snapshot every interval (older daemon). */
  readonly mode: 'subscribe' | 'poll';
  /** The subscription id (mode 'subscribe'). */
  readonly subscription: number | undefined;
  /** Ends the stream (stats.unsubscribe when the connection is still up); no callback runs after it. */
  stop(): Promise<void>;
}

export interface SnapshotHandlers {
  onSnapshot(snapshot: StatsSnapshot): void;
  /**
   * A problem: in 'subscribe' mode the connection ended (fatal, nothing
   * follows); in 'poll' mode one snapshot failed (the next poll still runs).
   */
  onError(err: Error): void;
}

function isStatsNotification(params: Record<string, unknown>): params is { subscription: number; snapshot: StatsSnapshot } {
  return typeof params.subscription === 'number' && typeof params.snapshot === 'object' && params.snapshot !== null;
}

/**
 * Snapshots every `intervalMs` from the daemon: a stats.subscribe stream,
 * or, when the daemon answers ERR_CONTROL_METHOD (it predates
 * subscriptions), stats.snapshot polls that ask only for new events.
 */
export async function streamSnapshots(client: ControlClient, intervalMs: number, handlers: SnapshotHandlers): Promise<SnapshotStream> {
  let stopped = false;
  let subscription: number | undefined;
  // Notifications that arrive before the answer tells us our id (the daemon
  // answers first, but a reordering must not lose the first, whole-log snapshot).
  const early: Array<{ subscription: number; snapshot: StatsSnapshot }> = [];
  const offNotification = client.onNotification((method, params) => {
    if (stopped || method !== 'stats' || !isStatsNotification(params)) return;
    if (subscription === undefined) early.push(params);
    else if (params.subscription === subscription) handlers.onSnapshot(params.snapshot);
  });
  const offClose = client.onClose((err) => {
    if (!stopped && subscription !== undefined) handlers.onError(err);
  });
  try {
    const res = await client.call<{ subscription: number }>('stats.subscribe', { intervalMs: Math.max(100, Math.round(intervalMs)) });
    subscription = res.subscription;
    for (const p of early.splice(0)) if (p.subscription === subscription) handlers.onSnapshot(p.snapshot);
    const id = subscription;
    return {
      mode: 'subscribe',
      subscription: id,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        offNotification();
        offClose();
        if (!client.closed) await client.call('stats.unsubscribe', { subscription: id }).catch(() => undefined);
      },
    };
  } catch (err) {
    offNotification();
    offClose();
    if (!(err instanceof ControlError && err.code === 'ERR_CONTROL_METHOD')) throw err;
  }
  // Polling fallback: the same snapshots, events since the last one seen.
  let lastSeq = 0;
  let timer: NodeJS.Timeout | undefined;
  const poll = async (): Promise<void> => {
    try {
      const snap = await fetchSnapshot(client, lastSeq);
      if (stopped) return;
      if (snap.events.length > 0) lastSeq = snap.events[snap.events.length - 1].seq;
      handlers.onSnapshot(snap);
    } catch (err) {
      if (stopped) return;
      handlers.onError(err instanceof Error ? err : new LunkitError('ERR_INTERNAL', String(err)));
    }
    if (!stopped) timer = setTimeout(() => void poll(), intervalMs);
  };
  void poll();
  return {
    mode: 'poll',
    subscription: undefined,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      return Promise.resolve();
    },
  };
}

/** Until SIGINT/SIGTERM (or the daemon goes away): one table (or JSON line) per snapshot. */
async function watch(client: ControlClient, args: StatsArgs, io: Io): Promise<void> {
  let prev: StatsSnapshot | undefined;
  let finish: ((err?: Error) => void) | undefined;
  const done = new Promise<void>((resolve, reject) => {
    finish = (err) => (err ? reject(err) : resolve());
  });
  const onSignal = (): void => finish?.();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stream: SnapshotStream | undefined;
  try {
    stream = await streamSnapshots(client, args.interval * 1000, {
      onSnapshot: (snap) => {
        let text: string;
        try {
          text = renderSnapshot(snap, { json: args.json, bootlab: args.bootlab }, prev);
        } catch (err) {
          // The lab is gone (or never was): end the watch with that error.
          finish?.(err instanceof Error ? err : new LunkitError('ERR_INTERNAL', String(err)));
          return;
        }
        if (args.json) io.stdout.write(text);
        else {
          if (io.stdout.isTTY) io.stdout.write('\x1b[H\x1b[2J');
          io.stdout.write(`${new Date(snap.time).toISOString()}\n${text}\n`);
        }
        prev = snap;
      },
      // Losing the daemon ends the watch with its error; a failed poll does too
      // (as before subscriptions: the loop stopped at the first failed call).
      onError: (err) => finish?.(err),
    });
    await done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stream?.stop();
  }
}

export const statsCommand: CommandModule<object, StatsArgs> = {
  command: 'stats',
  describe: 'Per-LUN and per-session I/O statistics of the running daemon',
  builder: (y: Argv) =>
    withCommon(
      y
        .option('watch', { alias: 'w', type: 'boolean', default: false, describe: 'repeat every --interval seconds, showing rates, until Ctrl-C' })
        .option('interval', { alias: 'i', type: 'number', default: 1, describe: 'seconds between snapshots with --watch' })
        .option('bootlab', { type: 'string', describe: 'only boot-lab clients: of this lab, or of every lab when no name follows' })
        .example('$0 stats', 'counters since the daemon started')
        .example('$0 stats --bootlab lab1', 'the clients of boot lab lab1: logged in, overlay delta, I/O')
        .example('$0 stats --watch', 'throughput, IOPS and p99 latency every second')
        .example('$0 stats --json', 'the whole snapshot (docs/stats.md)'),
    ) as Argv<StatsArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => {
        if (!(args.interval > 0)) throw new UsageError('ERR_INVALID_PARAMS', '--interval must be a number of seconds above 0');
      },
      async (client) => {
        if (args.watch) return watch(client, args, processIo);
        await printStats(client, { json: args.json, bootlab: args.bootlab }, processIo);
      },
    ),
};
