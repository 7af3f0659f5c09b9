// Write data budgets (issue 17; docs/security.md): how many bytes of write
// data (immediate, unsolicited, solicited) one session, and all sessions
// together, may make the target hold (limits.sessionWriteBytes,
// limits.totalWriteBytes).
//
// Two ways bytes get held:
// - reserve(): a command delivered in CmdSN order and accepted by the core's
//   prepare step asks for the buffer its data lands in. Over budget it does
//   not fail: it waits (no buffer, no R2T) in its session's FIFO until
//   enough is released, then goes on. A command larger than a budget is let
//   through when nothing else is held at that level, so it cannot wait
//   forever (bound: one MAX_TRANSFER_BYTES command).
// - charge(): data that has already arrived (immediate or unsolicited data of
//   a command still waiting behind a CmdSN gap or for budget) is counted as
//   it is, possibly over the budget. When a session's early data alone is
//   over its budget, its connections stop reading (connection.ts) until
//   bytes are released. Only early data stops reading: solicited data lands
//   in buffers already reserved, and the Data-Out that lets a reserved
//   command finish must still be read. Nor does the total stop a session's
//   reading: one session's early data must not stall the others.

/** Bytes held at one level (a session, or the whole server). */
export class WriteLedger {
  held = 0;
  /** High-water of `held` (stats). */
  peak = 0;

  add(n: number): void {
    this.held += n;
    if (this.held > this.peak) this.peak = this.held;
  }

  sub(n: number): void {
    this.held = Math.max(0, this.held - n);
  }
}

/** Limits the budgets read, live (setLimits() may change them). */
export interface WriteLimits {
  readonly sessionWriteBytes: number;
  readonly totalWriteBytes: number;
}

/** A command waiting for budget. */
export interface BudgetWaiter {
  /** Bytes still to reserve; 0: nothing more (go on now); -1: the command ended meanwhile (dropped from the queue). */
  wantedBytes(): number;
  /** What the command already counts against the budget (its early data). */
  readonly chargedBytes: number;
  /** `n` bytes were reserved (counted) for it: go on (allocate, send R2Ts). */
  granted(n: number): void;
}

/**
 * The server-wide side: total held bytes, the sessions with waiting
 * commands, and callbacks of connections that stopped reading for budget.
 */
export class ServerWriteBudget {
  readonly total = new WriteLedger();
  /** Sessions with commands waiting, in the order they started waiting. */
  private readonly waiting = new Set<SessionWriteBudget>();
  /** Connections paused for budget; each is told when bytes are released. */
  private readonly paused = new Set<() => void>();
  private pumping = false;
  private again = false;

  constructor(readonly limits: () => WriteLimits) {}

  /** Is the server over its total budget now? */
  get over(): boolean {
    return this.total.held > this.limits().totalWriteBytes;
  }

  sessionWaiting(s: SessionWriteBudget): void {
    this.waiting.add(s);
  }

  sessionIdle(s: SessionWriteBudget): void {
    this.waiting.delete(s);
  }

  /** `resume` runs (once) after the next release. */
  onRelease(resume: () => void): void {
    this.paused.add(resume);
  }

  cancelOnRelease(resume: () => void): void {
    this.paused.delete(resume);
  }

  /** Bytes were released somewhere: waiting commands may go on, paused connections may read. */
  released(): void {
    // The usual case (nobody waits, nobody paused) costs two size checks per released write.
    if (this.waiting.size === 0 && this.paused.size === 0) return;
    // A grant can release bytes again (a command refused at once); pump once more then, not recursively.
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        for (const s of [...this.waiting]) s.pump();
      } while (this.again);
    } finally {
      this.pumping = false;
    }
    if (this.paused.size === 0) return;
    const resumes = [...this.paused];
    this.paused.clear();
    for (const r of resumes) r();
  }
}

/** One session's side: its ledger and FIFO of commands waiting for budget. */
export class SessionWriteBudget {
  readonly ledger = new WriteLedger();
  private readonly queue: BudgetWaiter[] = [];

  constructor(readonly server: ServerWriteBudget) {}

  /** Commands waiting for budget now. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Early data (arrived before its command had a buffer) held now. */
  earlyBytes = 0;

  /** Is the session's early data over its budget? Its connections stop reading then. */
  get over(): boolean {
    return this.earlyBytes > this.server.limits().sessionWriteBytes;
  }

  /** Count early data, already in memory (no check). */
  charge(n: number): void {
    if (n <= 0) return;
    this.earlyBytes += n;
    this.ledger.add(n);
    this.server.total.add(n);
  }

  /** `n` bytes of early data were copied into their command's buffer: counted as reserved from now on. */
  settle(n: number): void {
    this.earlyBytes = Math.max(0, this.earlyBytes - n);
  }

  /** Give `n` bytes back, `early` of them early data (a command's data reached the backstore, or the command ended). */
  release(n: number, early = 0): void {
    if (n <= 0) return;
    this.earlyBytes = Math.max(0, this.earlyBytes - early);
    this.ledger.sub(n);
    this.server.total.sub(n);
    this.server.released();
  }

  /**
   * Reserve `n` more bytes for a command, or queue `waiter` (FIFO: a later
   * command never overtakes one already waiting in this session). True when
   * reserved now.
   */
  reserve(n: number, waiter: BudgetWaiter): boolean {
    if (this.queue.length === 0 && this.tryTake(n, waiter.chargedBytes)) return true;
    this.queue.push(waiter);
    this.server.sessionWaiting(this);
    return false;
  }

  /** Grant waiting commands in order while they fit. */
  pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const n = head.wantedBytes();
      if (n > 0 && !this.tryTake(n, head.chargedBytes)) break;
      this.queue.shift();
      if (n >= 0) head.granted(n);
    }
    if (this.queue.length === 0) this.server.sessionIdle(this);
  }

  /** Session end: waiting commands are forgotten (their tasks end with the session). */
  close(): void {
    this.queue.length = 0;
    this.server.sessionIdle(this);
  }

  /** Count `n` more bytes if they fit; `own`: what the asking command already holds itself. */
  private tryTake(n: number, own: number): boolean {
    const limits = this.server.limits();
    const s = this.ledger.held;
    const t = this.server.total.held;
    // Over the budget only when nothing but the command's own early data is
    // held at that level (one oversized command at a time, never stuck on itself).
    const sessionFits = s + n <= limits.sessionWriteBytes || s <= own;
    const totalFits = t + n <= limits.totalWriteBytes || t <= own;
    if (!sessionFits || !totalFits) return false;
    this.ledger.add(n);
    this.server.total.add(n);
    return true;
  }
}

/** One ServerWriteBudget per server (keyed by the object its connections see), made on first use. */
const perServer = new WeakMap<object, ServerWriteBudget>();

export function serverWriteBudget(server: { limits(): WriteLimits }): ServerWriteBudget {
  let b = perServer.get(server);
  if (b === undefined) {
    b = new ServerWriteBudget(() => server.limits());
    perServer.set(server, b);
  }
  return b;
}
