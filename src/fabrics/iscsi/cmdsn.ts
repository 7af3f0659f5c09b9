// The command numbering window of a session (RFC 7143 §3.2.2.1, §4.2.2.1).
//
// Non-immediate commands carry CmdSN and are delivered to the SCSI layer in
// CmdSN order. A command with CmdSN outside [ExpCmdSN, MaxCmdSN] is dropped
// silently (the initiator's fault; libiscsi's CmdSnTooLow/TooHigh tests expect
// no answer). A command inside the window but ahead of ExpCmdSN waits until
// the gap is filled. Immediate commands bypass the window and do not advance
// ExpCmdSN.
//
// MaxCmdSN: the window holds `depth` commands; every command delivered but not
// yet completed takes one slot, which gives the initiator back-pressure. It
// never moves backwards: an initiator may already use a value we announced.

import { seqAdd, seqGt, seqLt, seqLte, seqGte, seqDiff } from '../../protocols/iscsi/seq.js';

export type WindowVerdict = 'deliver' | 'queued' | 'drop';

export class CmdSnWindow<T> {
  private exp: number;
  private max: number;
  private readonly pending = new Map<number, T>();
  private active = 0;

  private depth: number;

  constructor(initialCmdSN: number, depth: number) {
    this.depth = Math.max(1, depth);
    this.exp = initialCmdSN >>> 0;
    this.max = seqAdd(this.exp, Math.max(1, depth) - 1);
  }

  get expCmdSN(): number {
    return this.exp;
  }

  get maxCmdSN(): number {
    return this.max;
  }

  /** Commands delivered and not yet completed. */
  get inFlight(): number {
    return this.active;
  }

  /** Commands waiting for a CmdSN gap to close. */
  get queued(): number {
    return this.pending.size;
  }

  /**
   * Change the window depth of a live session. A larger depth opens the
   * window at once; a smaller one takes effect as commands complete, since
   * MaxCmdSN never moves back (§4.2.2.1).
   */
  setDepth(depth: number): void {
    this.depth = Math.max(1, depth);
    this.refresh();
  }

  /** Is cmdSN inside [ExpCmdSN, MaxCmdSN]? */
  inWindow(cmdSN: number): boolean {
    return seqGte(cmdSN, this.exp) && seqLte(cmdSN, this.max);
  }

  /**
   * Offer a non-immediate command. Returns the items now deliverable, in
   * CmdSN order (possibly empty when queued or dropped), plus the verdict for
   * this one.
   */
  offer(cmdSN: number, item: T): { verdict: WindowVerdict; ready: T[] } {
    cmdSN >>>= 0;
    if (!this.inWindow(cmdSN) || this.pending.has(cmdSN)) return { verdict: 'drop', ready: [] };
    if (cmdSN !== this.exp) {
      this.pending.set(cmdSN, item);
      return { verdict: 'queued', ready: [] };
    }
    const ready: T[] = [item];
    this.exp = seqAdd(this.exp, 1);
    for (;;) {
      const next = this.pending.get(this.exp);
      if (next === undefined) break;
      this.pending.delete(this.exp);
      ready.push(next);
      this.exp = seqAdd(this.exp, 1);
    }
    return { verdict: 'deliver', ready };
  }

  /**
   * RFC 7143 §11.5.1 b): a TMF referring to a command never received whose
   * RefCmdSN is inside the window and before the TMF's own CmdSN.
   */
  refCmdSnPending(refCmdSN: number, tmfCmdSN: number): boolean {
    return seqGte(refCmdSN, this.exp) && seqLte(refCmdSN, this.max) && seqLt(refCmdSN, tmfCmdSN);
  }

  /** A delivered command (or an immediate one) starts occupying a slot. */
  started(): void {
    this.active++;
  }

  /** A command completed (answered or aborted): its slot frees up. */
  finished(): void {
    if (this.active > 0) this.active--;
    this.refresh();
  }

  /** Recompute MaxCmdSN; it only moves forward. */
  refresh(): number {
    const free = Math.max(0, this.depth - this.active);
    // exp + free - 1: with free == 0 this is exp - 1, an empty window.
    const candidate = seqAdd(this.exp, free - 1);
    if (seqGt(candidate, this.max)) this.max = candidate;
    return this.max;
  }

  /** Drop queued commands (session end); returns them. */
  clear(): T[] {
    const out = [...this.pending.values()];
    this.pending.clear();
    return out;
  }

  /** For diagnostics: how far MaxCmdSN is ahead of ExpCmdSN. */
  windowSize(): number {
    return seqDiff(this.exp, this.max) + 1;
  }
}
