// base:allocation (proto.md "Metadata querying", "base:allocation context"):
// which meta context queries select it, and how the SCSI answer to GET LBA
// STATUS (SBC-3 §5.6) becomes NBD block status descriptors. Pure, so the
// translation is tested without sockets.

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

/** Descriptors asked for per GET LBA STATUS: plenty for one NBD reply. */
export const LBA_STATUS_DESCRIPTORS = 1024;

/** GET LBA STATUS: SERVICE ACTION IN(16) 0x9e / 0x12, LBA at 2, allocation length at 10. */
export function getLbaStatus16(lba: bigint, allocationLength = 8 + 16 * LBA_STATUS_DESCRIPTORS): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x12;
  cdb.writeBigUInt64BE(lba, 2);
  cdb.writeUInt32BE(allocationLength, 10);
  return cdb;
}

/** SBC-3 table 50 PROVISIONING STATUS: DEALLOCATED (mapped is 0, anchored 2). */
const DEALLOCATED = 1;

/** What the LU says about provisioning, for one reply. */
export interface AllocationQuery {
  /** Byte offset the client asked about. */
  offset: bigint;
  /** Byte length the client asked about (descriptors never go past it). */
  length: number;
  blockSize: number;
  /** LBPRZ: deallocated blocks read as zeroes, so they may be flagged NBD_STATE_ZERO. */
  unmapReadsZero: boolean;
  /** NBD_CMD_FLAG_REQ_ONE: exactly one descriptor. */
  reqOne: boolean;
}

/**
 * Turns GET LBA STATUS parameter data (8-byte header, then 16-byte
 * descriptors: LBA(8), blocks(4), status(low nibble of byte 12)) into NBD
 * descriptors starting at q.offset. Mapped is flags 0; deallocated is HOLE,
 * plus ZERO when LBPRZ; anchored blocks hold resources, so they count as
 * data. Runs with equal flags merge; lengths are capped so their sum never
 * exceeds q.length. Returns at least one descriptor (all data if the LU
 * described nothing usable).
 */
export function lbaStatusToExtents(data: Buffer, q: AllocationQuery): BlockDescriptor[] {
  const out: BlockDescriptor[] = [];
  const bs = BigInt(q.blockSize);
  const end = q.offset + BigInt(q.length);
  let at = q.offset;
  const declared = data.length >= 4 ? data.readUInt32BE(0) + 4 : 0;
  const usable = Math.min(data.length, declared);
  for (let p = 8; p + 16 <= usable && at < end; p += 16) {
    const start = data.readBigUInt64BE(p) * bs;
    const stop = start + BigInt(data.readUInt32BE(p + 8)) * bs;
    // Descriptors must be contiguous from where we are; a gap means we stop.
    if (start > at || stop <= at) break;
    const status = data[p + 12] & 0x0f;
    const flags = status === DEALLOCATED ? NbdState.HOLE | (q.unmapReadsZero ? NbdState.ZERO : 0) : 0;
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
