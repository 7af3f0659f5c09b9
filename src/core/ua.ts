// Unit attention conditions (SPC-4 §5.14 / SAM-5 §5.14): kept per I_T nexus
// per logical unit, reported once by the first command that is not exempt
// (INQUIRY, REPORT LUNS, REQUEST SENSE) and then cleared.

import { SenseReasons, type SenseReason } from './sense-reasons.js';

/** Bounded so a nexus that never issues a command cannot grow it forever. */
const MAX_PENDING = 16;

/**
 * Pending unit attentions of one I_T_L nexus, oldest first. A POWER ON /
 * RESET class condition (ASC 29h) supersedes everything queued before it
 * (SPC-4 §5.14: "a reset clears the other unit attention conditions").
 */
export class UnitAttentionQueue {
  private pending: SenseReason[] = [];

  get size(): number {
    return this.pending.length;
  }

  has(reason: SenseReason): boolean {
    return this.pending.includes(reason);
  }

  add(reason: SenseReason): void {
    const asc = SenseReasons[reason].asc;
    if (asc === 0x29) {
      // A newer reset replaces all pending conditions, including older resets.
      this.pending = [reason];
      return;
    }
    if (this.pending.includes(reason)) return;
    if (this.pending.length >= MAX_PENDING) return;
    this.pending.push(reason);
  }

  /** Remove and return the oldest pending condition. */
  take(): SenseReason | undefined {
    return this.pending.shift();
  }

  peek(): SenseReason | undefined {
    return this.pending[0];
  }

  clear(): void {
    this.pending = [];
  }
}

/**
 * The unit attention queues of one logical unit, keyed by nexus id. A nexus
 * the device has not seen yet starts with POWER ON, RESET, OR BUS DEVICE
 * RESET OCCURRED (SAM-5 §6.3.2: an I_T nexus is new to the LU).
 */
export class DeviceUnitAttentions {
  private readonly byNexus = new Map<number, UnitAttentionQueue>();

  /** The queue of a nexus, created with the power-on condition on first use. */
  queueFor(nexusId: number): UnitAttentionQueue {
    let q = this.byNexus.get(nexusId);
    if (!q) {
      q = new UnitAttentionQueue();
      q.add('UA_POWER_ON_RESET');
      this.byNexus.set(nexusId, q);
    }
    return q;
  }

  /** Queue for one nexus (which will also see power-on if it is new). */
  add(nexusId: number, reason: SenseReason): void {
    this.queueFor(nexusId).add(reason);
  }

  /** Queue for every nexus already known to this LU, except `except`. */
  addAll(reason: SenseReason, except?: number): number[] {
    const hit: number[] = [];
    for (const [id, q] of this.byNexus) {
      if (id === except) continue;
      q.add(reason);
      hit.push(id);
    }
    return hit;
  }

  knows(nexusId: number): boolean {
    return this.byNexus.has(nexusId);
  }

  knownNexuses(): IterableIterator<number> {
    return this.byNexus.keys();
  }

  forget(nexusId: number): void {
    this.byNexus.delete(nexusId);
  }
}
