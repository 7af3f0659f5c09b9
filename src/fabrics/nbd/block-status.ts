// base:allocation (proto.md "Metadata querying", "base:allocation context"):
// which meta context queries select it, and how the block door's extents
// become NBD block status descriptors. Pure, so the translation is tested
// without sockets.

import type { Extent } from '../../core/index.js';
import { BASE_ALLOCATION, NbdState, type BlockDescriptor } from '../../protocols/nbd/index.js';

/** The id we give base:allocation; any 32-bit value works, it only has to be stable per connection. */
export const BASE_ALLOCATION_ID = 1;

/**
 * Whether a LIST/SET query names base:allocation. proto.md: a query of just
 * "namespace:" means every context of that namespace, but only for LIST;
 * SET selects full context names.
 */
export function queryMatchesBaseAllocation(query: string, list: boolean): boolean {
  return query === BASE_ALLOCATION || (list && query === 'base:');
}

/** What the LU says about provisioning, for one reply. */
export interface AllocationQuery {
  /** Byte offset the client asked about. */
  offset: bigint;
  /** Byte length the client asked about (descriptors never go past it). */
  length: number;
  /** LBPRZ: deallocated blocks read as zeroes, so they may be flagged NBD_STATE_ZERO. */
  unmapReadsZero: boolean;
  /** NBD_CMD_FLAG_REQ_ONE: exactly one descriptor. */
  reqOne: boolean;
}

/**
 * Turns the block door's extents (core/block-nexus.ts: byte extents in
 * order, block-rounded, from a block boundary at or before q.offset) into
 * NBD descriptors starting at q.offset. Data is flags 0; a hole is HOLE,
 * plus ZERO when LBPRZ. Runs with equal flags merge; lengths are capped so
 * their sum never exceeds q.length. Returns at least one descriptor (all
 * data if the LU described nothing usable).
 */
export function extentsToBlockStatus(extents: readonly Extent[], q: AllocationQuery): BlockDescriptor[] {
  const out: BlockDescriptor[] = [];
  const end = q.offset + BigInt(q.length);
  let at = q.offset;
  for (const e of extents) {
    if (at >= end) break;
    const start = BigInt(e.offset);
    const stop = start + BigInt(e.length);
    // Extents must be contiguous from where we are; a gap means we stop.
    if (start > at || stop <= at) {
      if (stop <= at) continue;
      break;
    }
    const flags = e.hole ? NbdState.HOLE | (q.unmapReadsZero ? NbdState.ZERO : 0) : 0;
    const to = stop < end ? stop : end;
    const len = Number(to - at);
    const last = out[out.length - 1];
    if (last && last.flags === flags) last.length += len;
    else out.push({ length: len, flags });
    at = to;
  }
  if (out.length === 0) return [{ length: q.length, flags: 0 }];
  return q.reqOne ? out.slice(0, 1) : out;
}
