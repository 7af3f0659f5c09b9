// ERL 1 on the initiator side (RFC 7143 §6.1.4, §7.8, §11.16): sequence-gap
// tracking for DataSN (per task) and StatSN (per connection), and the SNACK
// PDUs that ask the target to resend what was lost. Pure: the tracker only
// says which numbers are missing; the session decides whether to SNACK
// (ERL >= 1) or to treat a gap as a protocol error (ERL 0).

import { RESERVED_TAG, SnackType } from '../protocols/iscsi/constants.js';
import type { EncodablePdu } from '../protocols/iscsi/pdu-encode.js';
import { Opcode } from '../protocols/iscsi/pdu-types.js';
import { seqAdd, seqDiff, seqGte, seqLt } from '../protocols/iscsi/seq.js';
import { IscsiInitiatorError } from './errors.js';

/** The largest hole a tracker accepts (more is a protocol error). */
export const MAX_GAP = 65536;

/** A run of missing sequence numbers [begRun, begRun + runLength). */
export interface SnRun {
  begRun: number;
  runLength: number;
}

/** What accept() made of one sequence number. */
export interface SnAccept {
  /** True if this number had not been seen before (process the PDU). */
  fresh: boolean;
  /** Numbers skipped by this one (a gap that opened now), if any. */
  gap: SnRun | undefined;
}

/** The empty set trackers share until they need one (never added to: see own()). */
const NONE: Set<number> = new Set();

/**
 * Tracks a sequence (serial arithmetic, §4.2.2): `next` is one past the
 * highest number seen, `missing` the numbers below it not received yet.
 * `expected` (the lowest missing, else `next`) is what the initiator
 * acknowledges: ExpStatSN for StatSN, ExpDataSN for TASK REASSIGN.
 */
export class SeqTracker {
  private nextSn: number;
  // One tracker per task and per connection: the sets start as the shared
  // empty NONE and are made on the first add (own()), since a clean run
  // (every ERL 0 command) never adds anything.
  private missing: Set<number> = NONE;
  /** Numbers whose recovery is already under way (not to be SNACKed again). */
  private recovering: Set<number> = NONE;
  /** Received but not to be acknowledged yet (a status whose task still misses Data-In, §6.1.4.2). */
  private held: Set<number> = NONE;
  private owned = false;

  constructor(start = 0) {
    this.nextSn = start >>> 0;
  }

  get next(): number {
    return this.nextSn;
  }

  /** The lowest number not received yet (or received but held back). */
  get expected(): number {
    let low = this.nextSn;
    for (const sn of this.missing) if (seqLt(sn, low)) low = sn;
    for (const sn of this.held) if (seqLt(sn, low)) low = sn;
    return low;
  }

  /** Keep `expected` at or below `sn` until release(sn) (the target must keep that status). */
  hold(sn: number): void {
    this.own();
    this.held.add(sn >>> 0);
  }

  release(sn: number): void {
    this.held.delete(sn >>> 0);
  }

  /** No holes below `next`. */
  get complete(): boolean {
    return this.missing.size === 0;
  }

  get missingCount(): number {
    return this.missing.size;
  }

  /** Take number `sn`. A number above `next` opens a gap; one below fills a hole or is a duplicate. */
  accept(sn: number): SnAccept {
    sn >>>= 0;
    if (sn === this.nextSn) {
      this.nextSn = seqAdd(sn, 1);
      return { fresh: true, gap: undefined };
    }
    if (seqLt(sn, this.nextSn)) {
      const fresh = this.missing.delete(sn);
      this.recovering.delete(sn);
      return { fresh, gap: undefined };
    }
    const begRun = this.nextSn;
    const runLength = seqDiff(begRun, sn);
    // Bounded: a wild jump is a broken peer, not 2^31 lost PDUs.
    if (runLength > MAX_GAP) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `sequence number ${sn} jumps ${runLength} past ${begRun}`);
    this.own();
    for (let i = 0; i < runLength; i++) this.missing.add(seqAdd(begRun, i));
    this.nextSn = seqAdd(sn, 1);
    return { fresh: true, gap: { begRun, runLength } };
  }

  /**
   * Number `sn` arrived but had to be discarded (data digest error): it is
   * missing, and its recovery is under way (the caller SNACKs exactly it).
   * Returns false for a discarded duplicate of something already received.
   */
  discard(sn: number): boolean {
    sn >>>= 0;
    if (seqGte(sn, this.nextSn)) {
      this.accept(sn); // numbers skipped before it become missing too
    } else if (!this.missing.has(sn)) {
      return false;
    }
    this.own();
    this.missing.add(sn);
    this.recovering.add(sn);
    this.snackedAt = Date.now();
    return true;
  }

  /** When runs were last handed out for SNACKs (ms). */
  private snackedAt = 0;

  /**
   * Holes still open `afterMs` after their SNACK (the SNACK or its answer
   * was lost too): hand them out again.
   */
  overdue(now: number, afterMs: number): SnRun[] {
    if (this.missing.size === 0 || now - this.snackedAt < afterMs) return [];
    this.recovering.clear();
    return this.takeUnrecovered(now);
  }

  /** Missing numbers not yet being recovered, as runs (for SNACKs), and mark them recovering. */
  takeUnrecovered(now = Date.now()): SnRun[] {
    const todo = [...this.missing].filter((sn) => !this.recovering.has(sn)).sort((a, b) => (a === b ? 0 : seqLt(a, b) ? -1 : 1));
    const runs: SnRun[] = [];
    for (const sn of todo) {
      this.recovering.add(sn);
      const last = runs[runs.length - 1];
      if (last !== undefined && seqAdd(last.begRun, last.runLength) === sn) last.runLength++;
      else runs.push({ begRun: sn, runLength: 1 });
    }
    if (runs.length > 0) this.snackedAt = now;
    return runs;
  }

  /** Replace the shared empty sets with sets of our own before the first add. */
  private own(): void {
    if (this.owned) return;
    this.owned = true;
    this.missing = new Set();
    this.recovering = new Set();
    this.held = new Set();
  }

  /** Forget the holes (ERL 0 has no SNACK; a fresh start after TASK REASSIGN). */
  resetTo(next: number): void {
    this.nextSn = next >>> 0;
    if (!this.owned) return;
    this.missing.clear();
    this.recovering.clear();
    this.held.clear();
  }

  /** Forget that recovery of the missing numbers is under way (resend the SNACKs). */
  retryAll(): void {
    this.recovering.clear();
  }
}

/** Data/R2T SNACK for task `itt` (§11.16: Type 0, BegRun = first DataSN to resend). */
export function dataSnack(itt: number, lun: number, run: SnRun, expStatSN: number): EncodablePdu {
  return {
    opcode: Opcode.SNACK_REQUEST,
    immediate: false,
    final: true,
    type: SnackType.DATA_R2T,
    lun,
    itt,
    targetTransferTag: RESERVED_TAG,
    expStatSN,
    begRun: run.begRun,
    runLength: run.runLength,
  };
}

/** Status SNACK (§11.16: Type 1, ITT reserved, BegRun = first StatSN to resend). */
export function statusSnack(run: SnRun, expStatSN: number): EncodablePdu {
  return {
    opcode: Opcode.SNACK_REQUEST,
    immediate: false,
    final: true,
    type: SnackType.STATUS,
    lun: 0,
    itt: RESERVED_TAG,
    targetTransferTag: RESERVED_TAG,
    expStatSN,
    begRun: run.begRun,
    runLength: run.runLength,
  };
}

/** DataACK (§11.16.3: Type 2, TTT of the Data-In with the A bit, BegRun = next DataSN expected). */
export function dataAck(itt: number, lun: number, ttt: number, nextDataSN: number, expStatSN: number): EncodablePdu {
  return {
    opcode: Opcode.SNACK_REQUEST,
    immediate: false,
    final: true,
    type: SnackType.DATA_ACK,
    lun,
    itt,
    targetTransferTag: ttt,
    expStatSN,
    begRun: nextDataSN,
    runLength: 0,
  };
}
