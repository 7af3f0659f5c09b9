// Statistics of the SCSI core (issue 6): per logical unit and per I_T nexus
// counters, a latency histogram, and events on node:diagnostics_channel.
//
// Cost rules (ARCHITECTURE.md "Performance principles"): the counters are
// plain number fields on objects the engine already holds for a command (the
// ScsiDevice and the Nexus), the histogram is one typed array allocated with
// its owner, and recording a command allocates nothing, looks nothing up and
// starts no timer. Events are rare (nexus opened, TMF, LUN changes); their
// message is only built when a channel has subscribers. snapshot() returns
// plain JSON for the control socket, the metrics endpoint and the dashboard.

import diagnostics_channel from 'node:diagnostics_channel';
import { ScsiStatus, type ScsiCommand, type ScsiResponse, type TmfFunction } from './types.js';
import type { BlockFailure } from './errno.js';
import { SenseReasons, type SenseReason } from './sense-reasons.js';

// ---------------------------------------------------------------------------
// Log-linear latency histogram (HdrHistogram's idea, reduced): values in
// microseconds; 0..15 us get a bucket each, then every power of two is cut
// into 16 linear sub-buckets, so a bucket is at most 1/16 (6.25 %) wide
// relative to its value. 448 buckets cover 0 us .. 2^31 us (about 36 min).

const SUB_BITS = 4;
const SUB = 1 << SUB_BITS; // 16
/** Number of buckets: 16 linear + 16 per power of two from 2^4 to 2^30. */
export const LATENCY_BUCKETS = SUB + (31 - SUB_BITS) * SUB; // 448
const MAX_US = 0x7fffffff;

/** Bucket index of a latency in microseconds. */
export function latencyBucket(us: number): number {
  const v = us >= MAX_US ? MAX_US : us > 0 ? us | 0 : 0;
  if (v < SUB) return v;
  const e = 31 - Math.clz32(v); // floor(log2 v), >= 4
  return (e - SUB_BITS + 1) * SUB + ((v >>> (e - SUB_BITS)) & (SUB - 1));
}

/** Smallest value (us) that falls in bucket `i`. */
export function bucketLowerUs(i: number): number {
  if (i < SUB) return i;
  const e = Math.floor(i / SUB) + SUB_BITS - 1;
  const sub = i % SUB;
  return (SUB + sub) * 2 ** (e - SUB_BITS);
}

/** First value (us) above bucket `i` (its exclusive upper bound). */
export function bucketUpperUs(i: number): number {
  return i + 1 < LATENCY_BUCKETS ? bucketLowerUs(i + 1) : MAX_US + 1;
}

/** Non-empty buckets as [index, count] pairs, ascending: compact plain JSON. */
export type SparseBuckets = Array<[number, number]>;

/**
 * The q-quantile (0..1) of a sparse histogram, in microseconds: the upper
 * bound of the bucket holding that rank (so p99 never under-reports), or 0
 * for an empty histogram.
 */
export function quantileUs(buckets: SparseBuckets, q: number): number {
  let total = 0;
  for (const [, c] of buckets) total += c;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [i, c] of buckets) {
    seen += c;
    if (seen >= rank) return bucketUpperUs(i);
  }
  return bucketUpperUs(buckets[buckets.length - 1][0]);
}

/** Buckets of `now` minus buckets of `before` (an interval's histogram from two snapshots). */
export function diffBuckets(now: SparseBuckets, before: SparseBuckets | undefined): SparseBuckets {
  if (!before || before.length === 0) return now;
  const old = new Map(before);
  const out: SparseBuckets = [];
  for (const [i, c] of now) {
    const d = c - (old.get(i) ?? 0);
    if (d > 0) out.push([i, d]);
  }
  return out;
}

export interface LatencySnapshot {
  count: number;
  sumUs: number;
  meanUs: number;
  p99Us: number;
  maxUs: number;
  /** Non-empty buckets (see latencyBucket/bucketUpperUs). */
  buckets: SparseBuckets;
}

export class LatencyHistogram {
  readonly counts = new Uint32Array(LATENCY_BUCKETS);
  count = 0;
  sumUs = 0;
  maxUs = 0;

  record(us: number): void {
    this.counts[latencyBucket(us)]++;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
  }

  snapshot(): LatencySnapshot {
    const buckets: SparseBuckets = [];
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) if (counts[i] !== 0) buckets.push([i, counts[i]]);
    return {
      count: this.count,
      sumUs: Math.round(this.sumUs),
      meanUs: this.count ? Math.round(this.sumUs / this.count) : 0,
      p99Us: quantileUs(buckets, 0.99),
      maxUs: Math.round(this.maxUs),
      buckets,
    };
  }
}

// ---------------------------------------------------------------------------
// Command counters

/** Sense key names (SPC-4 §4.5.6 table 27), by key value. */
export const SENSE_KEY_NAMES: readonly string[] = [
  'NO_SENSE',
  'RECOVERED_ERROR',
  'NOT_READY',
  'MEDIUM_ERROR',
  'HARDWARE_ERROR',
  'ILLEGAL_REQUEST',
  'UNIT_ATTENTION',
  'DATA_PROTECT',
  'BLANK_CHECK',
  'VENDOR_SPECIFIC',
  'COPY_ABORTED',
  'ABORTED_COMMAND',
  'RESERVED_C',
  'VOLUME_OVERFLOW',
  'MISCOMPARE',
  'COMPLETED',
];

/** Sense key of sense data in fixed (70h/71h) or descriptor (72h/73h) format (SPC-4 §4.5). */
export function senseKeyOf(sense: Buffer): number {
  if (sense.length < 3) return 0;
  const code = sense[0] & 0x7f;
  return (code === 0x72 || code === 0x73 ? sense[1] : sense[2]) & 0x0f;
}

/** Counters of one LU or one nexus, as plain JSON. */
export interface CommandCounters {
  commands: number;
  /** Commands the transport marked data-in / data-out. */
  reads: number;
  writes: number;
  /** Data-In bytes returned / Data-Out bytes received. */
  readBytes: number;
  writtenBytes: number;
  inFlight: number;
  /** Ended by task management (no status sent). */
  aborted: number;
  /** Status other than GOOD / CONDITION MET (aborted not included). */
  errors: number;
  /** CHECK CONDITION count by sense key name (only keys seen). */
  checkConditions: Record<string, number>;
  /** Task management functions received, by function (only those seen). */
  taskManagement: Partial<Record<TmfFunction, number>>;
  latency: LatencySnapshot;
}

/**
 * Counters kept on a ScsiDevice and on each nexus. record() is the whole
 * per-command cost: a handful of additions and one histogram increment.
 */
export class CommandStats {
  commands = 0;
  reads = 0;
  writes = 0;
  readBytes = 0;
  writtenBytes = 0;
  inFlight = 0;
  aborted = 0;
  errors = 0;
  readonly senseKeys = new Uint32Array(16);
  /** Rare (TMF): a small object filled on demand. */
  readonly tmf: Partial<Record<TmfFunction, number>> = {};
  readonly latency = new LatencyHistogram();

  /** One finished command. `us`: time from submit to response, microseconds. */
  record(cmd: Pick<ScsiCommand, 'direction'> & { dataOut?: Buffer | undefined }, res: ScsiResponse, us: number): void {
    this.commands++;
    const dir = cmd.direction;
    if (dir === 'read') this.reads++;
    else if (dir === 'write') this.writes++;
    const dataIn = res.dataIn;
    if (dataIn !== undefined) this.readBytes += dataIn.length;
    if (dir === 'write' || dir === 'bidi') {
      const out = cmd.dataOut;
      if (out !== undefined) this.writtenBytes += out.length;
    }
    const status = res.status;
    if (status !== ScsiStatus.GOOD && status !== ScsiStatus.CONDITION_MET) {
      if (res.aborted) this.aborted++;
      else {
        this.errors++;
        if (status === ScsiStatus.CHECK_CONDITION && res.sense !== undefined) this.senseKeys[senseKeyOf(res.sense)]++;
      }
    }
    this.latency.record(us);
  }

  /**
   * One finished block-nexus operation (block-nexus.ts), counted like the
   * SCSI command it stands for: reads and writes with their bytes, a
   * failure by its sense key, an abort as aborted.
   */
  recordBlock(direction: 'read' | 'write' | 'none', bytes: number, failure: BlockFailure | undefined, us: number): void {
    this.commands++;
    if (direction === 'read') {
      this.reads++;
      if (failure === undefined) this.readBytes += bytes;
    } else if (direction === 'write') {
      this.writes++;
      this.writtenBytes += bytes;
    }
    if (failure !== undefined) {
      if (failure === 'ABORTED') this.aborted++;
      else {
        this.errors++;
        if (failure in SenseReasons) this.senseKeys[SenseReasons[failure as SenseReason].key]++;
      }
    }
    this.latency.record(us);
  }

  taskManagement(fn: TmfFunction): void {
    this.tmf[fn] = (this.tmf[fn] ?? 0) + 1;
  }

  snapshot(): CommandCounters {
    const checkConditions: Record<string, number> = {};
    for (let k = 0; k < 16; k++) if (this.senseKeys[k] !== 0) checkConditions[SENSE_KEY_NAMES[k]] = this.senseKeys[k];
    return {
      commands: this.commands,
      reads: this.reads,
      writes: this.writes,
      readBytes: this.readBytes,
      writtenBytes: this.writtenBytes,
      inFlight: this.inFlight,
      aborted: this.aborted,
      errors: this.errors,
      checkConditions,
      taskManagement: { ...this.tmf },
      latency: this.latency.snapshot(),
    };
  }
}

// ---------------------------------------------------------------------------
// Snapshot of the core (ScsiCore.statsSnapshot())

export interface LunStatsSnapshot extends CommandCounters {
  /** ScsiDevice id, unique in this process. */
  id: number;
  /** Device (backstore) name: the join key with the fabrics' LUN maps. */
  name: string;
  /** Backstore kind: file, ramdisk, null, nbd ... */
  backstore: string;
  sizeBytes: number;
  blockSize: number;
  readOnly: boolean;
  /** When the device was created, ms since the epoch. */
  createdAt: number;
  /**
   * Present while a failed flush is latched (io-guard.ts): flushes and FUA
   * writes fail with MEDIUM ERROR until `lunkit backstore clear-error`.
   */
  mediumError?: { code: string; message: string; at: number; op: 'flush' | 'write'; refused: number };
}

export interface NexusStatsSnapshot extends CommandCounters {
  /** Nexus id (iSCSI sessions name theirs: SessionStats.nexusId). */
  id: number;
  fabric: string;
  initiatorName: string;
  initiatorPortId: string;
  targetName: string;
  targetPortId: string;
  openedAt: number;
  /** LUN numbers the nexus sees now. */
  luns: number[];
}

export interface CoreStatsSnapshot {
  luns: LunStatsSnapshot[];
  nexuses: NexusStatsSnapshot[];
}

// ---------------------------------------------------------------------------
// Events (STYLE.md §19): every lunkit:* channel carries a StatsEvent.

export type EventSeverity = 'info' | 'warn' | 'error';

/** The message of every lunkit:* diagnostics channel: plain JSON. */
export interface StatsEvent {
  /** ms since the epoch. */
  time: number;
  /** The channel's name, e.g. "lunkit:core:tmf". */
  channel: string;
  severity: EventSeverity;
  /** One line for humans (the dashboard's event log). */
  text: string;
  fields: Record<string, string | number | boolean | null>;
}

export const CoreChannel = {
  NEXUS_OPEN: 'lunkit:core:nexus-open',
  NEXUS_CLOSE: 'lunkit:core:nexus-close',
  TMF: 'lunkit:core:tmf',
  LUN_CHANGE: 'lunkit:core:lun-change',
} as const;

const channels = new Map<string, diagnostics_channel.Channel>();

/** The diagnostics channel of that name (node keeps one per name; cached here too). */
export function statsChannel(name: string): diagnostics_channel.Channel {
  let ch = channels.get(name);
  if (!ch) {
    ch = diagnostics_channel.channel(name);
    channels.set(name, ch);
  }
  return ch;
}

/**
 * Publish an event on `channel` if anybody listens; `text` and `fields` are
 * only evaluated then, so an unobserved event costs one property read.
 */
export function publishEvent(
  channel: diagnostics_channel.Channel,
  severity: EventSeverity,
  text: () => string,
  fields: () => StatsEvent['fields'],
): void {
  if (!channel.hasSubscribers) return;
  const ev: StatsEvent = { time: Date.now(), channel: String(channel.name), severity, text: text(), fields: fields() };
  channel.publish(ev);
}

export function isStatsEvent(v: unknown): v is StatsEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.time === 'number' && typeof e.channel === 'string' && typeof e.text === 'string';
}
