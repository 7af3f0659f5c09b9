// `lunkit stats [--json] [--watch] [--interval S]`: the dashboard's numbers
// as a table (or JSON) from the daemon's stats.snapshot (docs/stats.md).
// Once: counters since start. --watch: rates over each interval, until
// Ctrl-C; with --json one snapshot per line.

import type { Argv, CommandModule } from 'yargs';

import type { ControlClient } from '../../daemon/control-client.js';
import type { StatsSnapshot } from '../../daemon/metrics.js';
import { diffBuckets, quantileUs, type CommandCounters } from '../../core/stats.js';
import { columns, formatAge, formatBytes, formatCount, formatLatency, formatRate, type Column } from '../../dashboard/format.js';
import { UsageError, processIo, runVerb, withCommon, type CommonArgs, type Io } from '../output.js';

interface StatsArgs extends CommonArgs {
  watch: boolean;
  interval: number;
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
  { width: 12 },
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

/**
 * The human table of a snapshot. With `prev` (watch mode) LUN and session
 * columns are rates over the interval between the two; without, totals.
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
    );
  }
  return out.join('\n') + '\n';
}

export function fetchSnapshot(client: ControlClient, eventsSince = 0): Promise<StatsSnapshot> {
  return client.call<StatsSnapshot>('stats.snapshot', eventsSince > 0 ? { eventsSince } : {});
}

/** Until SIGINT/SIGTERM: one table (or JSON line) per interval. */
async function watch(client: ControlClient, args: StatsArgs, io: Io): Promise<void> {
  let prev: StatsSnapshot | undefined;
  let stop = false;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    stop = true;
    wake?.();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop) {
      const snap = await fetchSnapshot(client);
      if (args.json) io.stdout.write(`${JSON.stringify(snap)}\n`);
      else {
        if (io.stdout.isTTY) io.stdout.write('\x1b[H\x1b[2J');
        io.stdout.write(`${new Date(snap.time).toISOString()}\n${formatStatsTable(snap, prev)}\n`);
      }
      prev = snap;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, args.interval * 1000);
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
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
        .example('$0 stats', 'counters since the daemon started')
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
        const snap = await fetchSnapshot(client);
        processIo.stdout.write(args.json ? `${JSON.stringify(snap, null, 2)}\n` : formatStatsTable(snap));
      },
    ),
};
