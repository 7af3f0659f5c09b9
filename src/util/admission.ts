// Connection admission for the network fabrics (iSCSI portals, NBD listeners):
// a cap on connections in total and per source address, checked right after
// accept, before the connection gets any buffer or timer. A refused socket is
// destroyed at once. Refusals are logged once per interval, not per attempt:
// a client that opens 10,000 connections must not turn into 10,000 log lines
// (the log is a resource the attacker would otherwise control).
//
// Memory: one map entry per source address with a live connection, so at most
// maxConnections entries; nothing is kept for refused or closed connections
// but the counters.

/** Why a connection (or, for iSCSI, a login) was refused. */
export type RefusalReason = 'total' | 'per-address' | 'per-initiator';

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
}

type Emit = (msg: string, fields: Record<string, unknown>) => void;

/**
 * A log line that may repeat at attacker speed. The first one of a quiet
 * period is written at once; the ones after it within `intervalMs` are only
 * counted (per bucket), and one summary line per interval reports them.
 */
export class RateLimitedLog {
  private windowEnd = -Infinity;
  private suppressed = 0;
  private readonly buckets = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: Emit,
    private readonly message: string,
    readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Log `fields` now, or count them under `bucket` for the next summary. */
  note(fields: Record<string, unknown>, bucket = 'other'): void {
    const t = this.now();
    if (t >= this.windowEnd && this.timer === undefined) {
      this.windowEnd = t + this.intervalMs;
      this.emit(this.message, fields);
      return;
    }
    this.suppressed++;
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.windowEnd - t));
      this.timer.unref();
    }
  }

  /** Write the summary of what was counted (if anything) and start a new interval. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressed === 0) return;
    const fields: Record<string, unknown> = { more: this.suppressed, seconds: Math.round(this.intervalMs / 100) / 10 };
    for (const [k, n] of this.buckets) fields[k] = n;
    this.suppressed = 0;
    this.buckets.clear();
    this.windowEnd = this.now() + this.intervalMs;
    this.emit(`${this.message} (repeated)`, fields);
  }
}

/**
 * The address connections are counted under: IPv4-mapped IPv6 addresses as
 * plain IPv4 (a dual-stack listener sees both forms of one client).
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined || remoteAddress === '') return 'unknown';
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  return m ? m[1] : remoteAddress.toLowerCase();
}

export interface AdmissionOptions {
  /** Read at every check, so setLimits() applies to the next connection. */
  limits: () => AdmissionLimits;
  /** "iSCSI" or "NBD", for the log line. */
  fabric: string;
  log: { warn?: Emit };
  intervalMs?: number;
  now?: () => number;
}

export class ConnectionAdmission {
  private live = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly refusedBy: Record<RefusalReason, number> = { total: 0, 'per-address': 0, 'per-initiator': 0 };
  private readonly refusals: RateLimitedLog;

  constructor(private readonly opts: AdmissionOptions) {
    const warn = opts.log.warn?.bind(opts.log) ?? (() => {});
    this.refusals = new RateLimitedLog(warn, `${opts.fabric} connection refused`, opts.intervalMs, opts.now);
  }

  /**
   * Count a new connection from `remoteAddress`. Returns the function that
   * uncounts it (call it when the connection closes; calling twice is
   * harmless), or undefined when a limit is reached: the caller destroys the
   * socket.
   */
  admit(remoteAddress: string | undefined): (() => void) | undefined {
    const key = addressKey(remoteAddress);
    const limits = this.opts.limits();
    const fromHere = this.perAddress.get(key) ?? 0;
    // Per address first: it names the client that is over its share.
    if (fromHere >= limits.maxConnectionsPerAddress) {
      this.refuse('per-address', { remote: key, limit: limits.maxConnectionsPerAddress, live: fromHere });
      return undefined;
    }
    if (this.live >= limits.maxConnections) {
      this.refuse('total', { remote: key, limit: limits.maxConnections, live: this.live });
      return undefined;
    }
    this.live++;
    this.perAddress.set(key, fromHere + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.live--;
      const n = (this.perAddress.get(key) ?? 1) - 1;
      if (n > 0) this.perAddress.set(key, n);
      else this.perAddress.delete(key);
    };
  }

  /** Count and (rate-limited) log a refusal decided elsewhere (the iSCSI per-initiator cap). */
  refuse(reason: RefusalReason, fields: Record<string, unknown>): void {
    this.refusedBy[reason]++;
    this.refusals.note({ reason, ...fields }, reason);
  }

  /** Connections counted now. */
  get active(): number {
    return this.live;
  }

  /** Source addresses with at least one counted connection. */
  get addresses(): number {
    return this.perAddress.size;
  }

  /** Refusals since start, by reason. */
  refused(): Record<RefusalReason, number> {
    return { ...this.refusedBy };
  }

  /** Write the pending summary line (server closing). */
  flushLog(): void {
    this.refusals.flush();
  }
}
