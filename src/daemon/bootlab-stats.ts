// Boot-lab clients in the statistics snapshot (issue 15, docs/stats.md
// "Boot labs"): per lab, per client who it is (name, MAC, LUN, backstore,
// initiator), whether it is logged in, how big its overlay has grown (the
// delta), its last boot, and the I/O counters of its LU.
//
// A snapshot is synchronous and may be taken every 100 ms (stats.subscribe,
// the dashboard, every Prometheus scrape) for thousands of clients, so:
//   - logged-in comes from the iSCSI sessions of the same snapshot, counted
//     once into a map (not one scan of the sessions per client);
//   - LU counters come from the core's LUN list of the same snapshot, by
//     backstore name (the join key the LUN rows use);
//   - overlay sizes come from OverlaySizes, a cache of stat() results: a
//     snapshot only reads it, and when its newest refresh is older than
//     maxAgeMs (5 s) starts one refresh in the background (stat of every
//     overlay, a few at a time). Nothing runs while nobody asks for statistics.

import { stat } from 'node:fs/promises';

import { clientBackstoreName, clientInitiatorIqn, labTargetIqn, overlayPath } from '../bootlab/names.js';
import type { BootlabsConfig } from '../bootlab/schema.js';
import type { CoreStatsSnapshot } from '../core/stats.js';
import type { IscsiStatsSnapshot } from '../fabrics/iscsi/stats.js';

/** The I/O of a client's LU since it was created (a reset makes a new LU: counters start again). */
export interface BootlabClientIo {
  /** The LU's id in core.luns (its full counters, latency buckets included). */
  luId: number;
  commands: number;
  reads: number;
  writes: number;
  readBytes: number;
  writtenBytes: number;
  errors: number;
  inFlight: number;
  /** Latency since the LU was created, microseconds (no buckets: core.luns has them). */
  latency: { count: number; sumUs: number; meanUs: number; p99Us: number; maxUs: number };
}

export interface BootlabClientStats {
  mac: string;
  name: string;
  /** TPG LUN of the lab target (the client sees it as LUN 0). */
  lun: number;
  /** Backstore (LU) name: bootlab.<lab>.<name>; the `backstore` label of lunkit_lun_* metrics. */
  backstore: string;
  initiator: string;
  /** The overlay file the client writes to now. */
  overlay: string;
  loggedIn: boolean;
  /** Normal iSCSI sessions of the client's initiator on the lab target. */
  sessions: number;
  /** Overlay file size in bytes (what the client changed, plus qcow2 metadata); null until measured. */
  deltaBytes: number | null;
  /** Disk space the overlay takes (st_blocks * 512); null until measured. */
  allocatedBytes: number | null;
  /** When deltaBytes was measured, ms since the epoch; null until then. */
  sizeSampledAt: number | null;
  /** The last iPXE script served to the client. */
  lastBoot: { time: string; address: string } | null;
  /** Counters of the client's LU; null while the LU is not running (e.g. during a change). */
  io: BootlabClientIo | null;
}

export interface BootlabStats {
  name: string;
  target: string;
  golden: string;
  clients: BootlabClientStats[];
}

/** What the snapshot takes from the daemon. */
export interface BootlabStatsHost {
  /** The configured labs (read only, not copied). */
  labs(): BootlabsConfig | undefined;
  lastBoot(lab: string, mac: string): { time: string; address: string } | undefined;
}

export interface OverlaySize {
  bytes: number;
  allocated: number;
  at: number;
}

export interface OverlaySizesOptions {
  /** A snapshot starts a refresh when the last one started longer ago than this (default 5000 ms). */
  maxAgeMs?: number;
  /** stat() calls in flight at once during a refresh (default 16). */
  concurrency?: number;
  now?: () => number;
  /** Size and blocks of a file; undefined when it is missing (default fs.promises.stat). */
  statFile?: (path: string) => Promise<{ size: number; blocks: number } | undefined>;
}

async function statOrUndefined(path: string): Promise<{ size: number; blocks: number } | undefined> {
  return stat(path).catch(() => undefined);
}

/**
 * Overlay file sizes, refreshed in the background at most every maxAgeMs and
 * only while someone reads them. A refresh replaces the whole table, so the
 * files of deleted or reset clients drop out.
 */
export class OverlaySizes {
  private sizes = new Map<string, OverlaySize>();
  private running: Promise<void> | undefined;
  private lastStart = -Infinity;
  private readonly maxAgeMs: number;
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly statFile: (path: string) => Promise<{ size: number; blocks: number } | undefined>;

  constructor(opts: OverlaySizesOptions = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? 5000;
    this.concurrency = Math.max(1, opts.concurrency ?? 16);
    this.now = opts.now ?? Date.now;
    this.statFile = opts.statFile ?? statOrUndefined;
  }

  get(path: string): OverlaySize | undefined {
    return this.sizes.get(path);
  }

  /** The refresh under way, if any (tests wait on it). */
  get pending(): Promise<void> | undefined {
    return this.running;
  }

  /** Starts a refresh of `paths` unless one runs or the last started less than maxAgeMs ago. */
  want(paths: readonly string[]): void {
    if (this.running || this.now() - this.lastStart < this.maxAgeMs) return;
    if (paths.length === 0) {
      this.sizes = new Map();
      return;
    }
    void this.refresh(paths);
  }

  /** Measures every path now (a few at a time) and replaces the table. */
  refresh(paths: readonly string[]): Promise<void> {
    if (this.running) return this.running;
    this.lastStart = this.now();
    const next = new Map<string, OverlaySize>();
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < paths.length) {
        const p = paths[i++];
        const st = await this.statFile(p).catch(() => undefined);
        if (st) next.set(p, { bytes: st.size, allocated: st.blocks * 512, at: this.now() });
      }
    };
    const workers = Array.from({ length: Math.min(this.concurrency, paths.length) }, () => worker());
    this.running = Promise.all(workers).then(() => {
      this.sizes = next;
      this.running = undefined;
    });
    return this.running;
  }
}

function sessionKey(initiator: string, target: string): string {
  return `${initiator.toLowerCase()} ${target.toLowerCase()}`;
}

/** The `bootlabs` part of a snapshot, from the core and iSCSI parts of the same snapshot. */
export function collectBootlabStats(
  labs: BootlabsConfig | undefined,
  from: { core: CoreStatsSnapshot; iscsi: IscsiStatsSnapshot | null },
  opts: { sizes: OverlaySizes; lastBoot: BootlabStatsHost['lastBoot'] },
): BootlabStats[] {
  const entries = Object.entries(labs ?? {});
  if (entries.length === 0) {
    opts.sizes.want([]);
    return [];
  }
  const sessions = new Map<string, number>();
  for (const s of from.iscsi?.sessions ?? []) {
    if (s.type !== 'normal') continue;
    const k = sessionKey(s.initiatorName, s.targetName);
    sessions.set(k, (sessions.get(k) ?? 0) + 1);
  }
  const luns = new Map(from.core.luns.map((l) => [l.name, l]));
  const paths: string[] = [];
  const out = entries.map(([lab, l]): BootlabStats => {
    const target = labTargetIqn(lab);
    const clients = Object.entries(l.clients).map(([mac, c]): BootlabClientStats => {
      const backstore = clientBackstoreName(lab, c.name);
      const initiator = clientInitiatorIqn(lab, c.name);
      const overlay = overlayPath(l.dir, c.name, c.generation);
      paths.push(overlay);
      const size = opts.sizes.get(overlay);
      const n = sessions.get(sessionKey(initiator, target)) ?? 0;
      const lu = luns.get(backstore);
      return {
        mac,
        name: c.name,
        lun: c.lun,
        backstore,
        initiator,
        overlay,
        loggedIn: n > 0,
        sessions: n,
        deltaBytes: size?.bytes ?? null,
        allocatedBytes: size?.allocated ?? null,
        sizeSampledAt: size?.at ?? null,
        lastBoot: opts.lastBoot(lab, mac) ?? null,
        io: lu
          ? {
              luId: lu.id,
              commands: lu.commands,
              reads: lu.reads,
              writes: lu.writes,
              readBytes: lu.readBytes,
              writtenBytes: lu.writtenBytes,
              errors: lu.errors,
              inFlight: lu.inFlight,
              latency: { count: lu.latency.count, sumUs: lu.latency.sumUs, meanUs: lu.latency.meanUs, p99Us: lu.latency.p99Us, maxUs: lu.latency.maxUs },
            }
          : null,
      };
    });
    return { name: lab, target, golden: l.golden, clients };
  });
  opts.sizes.want(paths);
  return out;
}

/** The daemon's source of the `bootlabs` part (metrics.ts StatsSources.bootlabs). */
export class BootlabStatsSource {
  constructor(
    private readonly host: BootlabStatsHost,
    readonly sizes: OverlaySizes = new OverlaySizes(),
  ) {}

  statsSnapshot(from: { core: CoreStatsSnapshot; iscsi: IscsiStatsSnapshot | null }): BootlabStats[] {
    return collectBootlabStats(this.host.labs(), from, { sizes: this.sizes, lastBoot: (lab, mac) => this.host.lastBoot(lab, mac) });
  }
}
