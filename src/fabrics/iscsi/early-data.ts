// The write data one SCSI task holds before and after its landing buffer
// exists, and what it counts against its session's write budget
// (write-budget.ts). scsi-command.ts owns the task; this keeps its books.
//
// Early data: immediate data, and unsolicited Data-Out that comes before the
// prepare step has run (the command waits behind a CmdSN gap) or while the
// command waits for budget. The command's own immediate data starts as a
// view of the framer's memory (scratch or a socket chunk); anything kept
// past its PDU becomes a copy of its own and is counted as early data (a
// session over budget on early data stops reading). Once the landing buffer
// exists the early data is copied into it and the task's count becomes the
// buffer's size, reserved.

import type { BudgetWaiter, SessionWriteBudget } from './write-budget.js';

/** Write data received before the landing buffer, as the framer delivered it (or copied). */
export interface EarlyData {
  offset: number;
  data: Buffer;
  /** In the connection's scratch memory (valid until the next PDU). */
  transient: boolean;
  /** A copy of our own, counted against the write budget (else a view of the framer's memory). */
  owned: boolean;
}

export class TaskWriteData {
  private entries: EarlyData[] | undefined;
  /** Bytes counted against the session's budget. */
  private charged = 0;
  /** The part of `charged` that is early data. */
  private earlyCharged = 0;

  /** `budget`: the session's budget, read on each use (undefined: nothing is counted). */
  constructor(private readonly budget: () => SessionWriteBudget | undefined) {}

  get chargedBytes(): number {
    return this.charged;
  }

  /** The command's immediate data, a view of the framer's memory (not counted until kept). */
  immediate(data: Buffer, transient: boolean): void {
    this.entries = [{ offset: 0, data, transient, owned: false }];
  }

  /** Data that came before the landing buffer: kept as a copy of its own, counted. */
  stash(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    (this.entries ??= []).push({ offset, data: Buffer.from(data), transient: false, owned: true });
    this.chargeEarly(data.length);
  }

  /**
   * The command outlives its PDU without a landing buffer: views of the
   * framer's memory become copies (the socket chunk around a view is not
   * kept alive, and the count is honest).
   */
  keep(): void {
    if (this.entries === undefined) return;
    for (const e of this.entries) {
      if (e.owned) continue;
      e.data = Buffer.from(e.data);
      e.transient = false;
      e.owned = true;
      this.chargeEarly(e.data.length);
    }
  }

  /** Reserve `n` more bytes for the landing buffer, or queue `waiter` (write-budget.ts). True when reserved (or unbudgeted). */
  reserve(n: number, waiter: BudgetWaiter): boolean {
    const budget = this.budget();
    if (budget === undefined || n <= 0) return true;
    if (!budget.reserve(n, waiter)) return false;
    this.charged += n;
    return true;
  }

  /** The budget granted `n` bytes to the waiting command. */
  granted(n: number): void {
    this.charged += n;
  }

  /**
   * The landing buffer of `keep` bytes is being made: the early data goes
   * into it (returned, to copy), and the task holds exactly `keep` bytes.
   */
  take(keep: number): EarlyData[] | undefined {
    const early = this.entries;
    this.entries = undefined;
    this.budget()?.settle(this.earlyCharged);
    this.earlyCharged = 0;
    if (this.charged > keep) this.uncharge(this.charged - keep);
    return early;
  }

  /** Nothing is kept any more (refused, submitted, ended): every counted byte goes back. */
  releaseAll(): void {
    this.entries = undefined;
    this.uncharge(this.charged);
  }

  private chargeEarly(n: number): void {
    const budget = this.budget();
    if (budget === undefined || n <= 0) return;
    budget.charge(n);
    this.charged += n;
    this.earlyCharged += n;
  }

  /** Give `n` counted bytes back (early data first). */
  private uncharge(n: number): void {
    if (n <= 0) return;
    const early = Math.min(n, this.earlyCharged);
    this.charged -= n;
    this.earlyCharged -= early;
    this.budget()?.release(n, early);
  }
}

/**
 * Copy `data` to `dst` at `offset`, cut at the end of `dst` (bytes beyond
 * what the core uses are dropped). Nothing to do when the framer already
 * assembled the data in place (ScsiTask.dataOutTarget).
 */
export function copyKept(data: Buffer, dst: Buffer, offset: number): void {
  if (offset >= dst.length || data.length === 0) return;
  if (data.buffer === dst.buffer && data.byteOffset === dst.byteOffset + offset) return;
  const n = Math.min(data.length, dst.length - offset);
  data.copy(dst, offset, 0, n);
}
