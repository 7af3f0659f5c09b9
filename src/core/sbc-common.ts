// Shared pieces of the SBC-3 command handlers: CDB field decoding, the limits
// the device server publishes in the Block Limits VPD page (0xB0), the LBA
// range check, and backstore error mapping.

import type { CommandContext, CommandOutcome, FieldPointer } from './command.js';
import { errnoToSense, type BackstoreOp } from './errno.js';
import type { SenseReason } from './sense-reasons.js';

// ---------------------------------------------------------------------------
// Limits (SBC-3 §6.5.3 Block Limits VPD page). CORE's VPD 0xB0 reads them
// through sbcBlockLimits() so the page and the handlers agree.

/** Largest READ/WRITE/VERIFY transfer, bytes (MAXIMUM TRANSFER LENGTH = this / block size). */
// 32 MiB: 65536 blocks of 512 bytes, what libiscsi's writesame16_unmap moves
// in one WRITE(16)/READ(16). The iSCSI layer holds a whole command's data, so
// this is also the per-command memory bound.
export const MAX_TRANSFER_BYTES = 32 * 1024 * 1024;
/** OPTIMAL TRANSFER LENGTH, bytes. */
export const OPTIMAL_TRANSFER_BYTES = 1024 * 1024;
/** MAXIMUM WRITE SAME LENGTH, bytes (the block count depends on the block size). */
export const MAX_WRITE_SAME_BYTES = 64 * 1024 * 1024;
/** MAXIMUM UNMAP LBA COUNT (libiscsi insists on <= 1 Mi when not unlimited). */
export const MAX_UNMAP_LBA_COUNT = 0x100000;
/** MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT. */
export const MAX_UNMAP_DESCRIPTORS = 256;
/** MAXIMUM COMPARE AND WRITE LENGTH (a one-byte field; NUMBER OF LOGICAL BLOCKS above it is refused). */
export const MAX_COMPARE_AND_WRITE_BLOCKS = 255;
/**
 * LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT reported by READ CAPACITY(16).
 * 0: every logical block is a physical block. libiscsi's
 * get_lba_status_unmap_single expects descriptors at LBA i + 2^exp, which only
 * holds for exponent 0.
 */
export const LOGICAL_BLOCKS_PER_PHYSICAL_EXPONENT = 0;
/** ANC_SUP in VPD 0xB2: WRITE SAME and UNMAP accept ANCHOR (anchored = zeroed and allocated). */
export const ANCHOR_SUPPORTED = true;
/** WSNZ in VPD 0xB0: false, a WRITE SAME of 0 blocks writes to the end of the medium. */
export const WRITE_SAME_NON_ZERO = false;
/**
 * MAXIMUM ATOMIC TRANSFER LENGTH, bytes (SBC-4 §6.6.4). A WRITE ATOMIC(16)
 * holds its LBA range lock for the whole write, so it is kept well below
 * MAX_TRANSFER_BYTES; the block count is also capped by the CDB's 16-bit
 * TRANSFER LENGTH field. libiscsi's writeatomic16 tests write up to 256
 * blocks, so this must cover 256 blocks of the largest block size (4096).
 */
export const MAX_ATOMIC_TRANSFER_BYTES = 4 * 1024 * 1024;
/** PRE-FETCH answers CONDITION MET when the range fits this much "cache" (bytes). */
export const PREFETCH_CACHE_BYTES = 64 * 1024 * 1024;

export interface SbcBlockLimits {
  /** MAXIMUM TRANSFER LENGTH, blocks. */
  maxTransferLength: number;
  /** OPTIMAL TRANSFER LENGTH, blocks. */
  optimalTransferLength: number;
  /** OPTIMAL TRANSFER LENGTH GRANULARITY, blocks. */
  optimalTransferGranularity: number;
  maxWriteSameLength: number;
  maxUnmapLbaCount: number;
  maxUnmapDescriptorCount: number;
  /** OPTIMAL UNMAP GRANULARITY, blocks (4 KiB: the file system's hole unit). */
  optimalUnmapGranularity: number;
  unmapGranularityAlignment: number;
  maxCompareAndWriteLength: number;
  wsnz: boolean;
  ancSup: boolean;
  logicalBlocksPerPhysicalExponent: number;
  /** MAXIMUM ATOMIC TRANSFER LENGTH, blocks (reported only when WRITE ATOMIC(16) is in the table). */
  maxAtomicTransferLength: number;
  /** ATOMIC ALIGNMENT, blocks; 0: an atomic write may start at any LBA. */
  atomicAlignment: number;
  /** ATOMIC TRANSFER LENGTH GRANULARITY, blocks; 0: any length up to the maximum. */
  atomicTransferLengthGranularity: number;
  /** MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY; 0: the ATOMIC BOUNDARY field is unsupported. */
  maxAtomicTransferLengthWithBoundary: number;
  /** MAXIMUM ATOMIC BOUNDARY SIZE; 0 with the field above: no atomic boundaries. */
  maxAtomicBoundarySize: number;
}

export function sbcBlockLimits(blockSize: number): SbcBlockLimits {
  return {
    maxTransferLength: MAX_TRANSFER_BYTES / blockSize,
    optimalTransferLength: OPTIMAL_TRANSFER_BYTES / blockSize,
    optimalTransferGranularity: Math.max(1, 4096 / blockSize),
    maxWriteSameLength: MAX_WRITE_SAME_BYTES / blockSize,
    maxUnmapLbaCount: MAX_UNMAP_LBA_COUNT,
    maxUnmapDescriptorCount: MAX_UNMAP_DESCRIPTORS,
    optimalUnmapGranularity: Math.max(1, 4096 / blockSize),
    unmapGranularityAlignment: 0,
    maxCompareAndWriteLength: MAX_COMPARE_AND_WRITE_BLOCKS,
    wsnz: WRITE_SAME_NON_ZERO,
    ancSup: ANCHOR_SUPPORTED,
    logicalBlocksPerPhysicalExponent: LOGICAL_BLOCKS_PER_PHYSICAL_EXPONENT,
    maxAtomicTransferLength: Math.min(MAX_ATOMIC_TRANSFER_BYTES / blockSize, MAX_TRANSFER_BYTES / blockSize, 0xffff),
    atomicAlignment: 0,
    atomicTransferLengthGranularity: 0,
    maxAtomicTransferLengthWithBoundary: 0,
    maxAtomicBoundarySize: 0,
  };
}

// ---------------------------------------------------------------------------
// CDB usage maps: the last byte is the CONTROL byte; we implement neither
// NACA nor linked commands, so no bit of it may be set.

export const CONTROL_USAGE = 0x00;

// ---------------------------------------------------------------------------
// Field decoding (SBC-3 §5: READ(6) 21-bit LBA; 10/12-byte 32-bit LBA; 16-byte 64-bit LBA).

export interface LbaAndLength {
  lba: bigint;
  blocks: number;
}

export function lbaLen6(cdb: Buffer): LbaAndLength {
  const lba = ((cdb[1] & 0x1f) << 16) | (cdb[2] << 8) | cdb[3];
  // SBC-3 §5.15/§5.38: TRANSFER LENGTH 0 in a 6-byte CDB means 256 blocks.
  return { lba: BigInt(lba), blocks: cdb[4] === 0 ? 256 : cdb[4] };
}

export function lbaLen10(cdb: Buffer): LbaAndLength {
  return { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt16BE(7) };
}

export function lbaLen12(cdb: Buffer): LbaAndLength {
  return { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt32BE(6) };
}

export function lbaLen16(cdb: Buffer): LbaAndLength {
  return { lba: cdb.readBigUInt64BE(2), blocks: cdb.readUInt32BE(10) };
}

export type LbaDecoder = (cdb: Buffer) => LbaAndLength;

/** The decoder for a CDB of the given length. */
export function decoderFor(cdbLength: 6 | 10 | 12 | 16): LbaDecoder {
  switch (cdbLength) {
    case 6:
      return lbaLen6;
    case 10:
      return lbaLen10;
    case 12:
      return lbaLen12;
    case 16:
      return lbaLen16;
  }
}

// ---------------------------------------------------------------------------
// Outcomes

export const GOOD: CommandOutcome = Object.freeze({ kind: 'good' });

export function check(reason: SenseReason, field?: FieldPointer, info?: bigint | number): CommandOutcome {
  const out: { kind: 'check'; reason: SenseReason; field?: FieldPointer; info?: bigint | number } = {
    kind: 'check',
    reason,
  };
  if (field) out.field = field;
  if (info !== undefined) out.info = info;
  return out;
}

export function invalidCdbField(byte: number, bit?: number): CommandOutcome {
  return check('INVALID_FIELD_IN_CDB', bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit });
}

export function invalidParamField(byte: number, bit?: number): CommandOutcome {
  return check(
    'INVALID_FIELD_IN_PARAMETER_LIST',
    bit === undefined ? { inCdb: false, byte } : { inCdb: false, byte, bit },
  );
}

/**
 * SBC-3 §4.5: LBA OUT OF RANGE when LBA + number of blocks exceeds the
 * capacity. Computed in bigint, so a 64-bit LBA near 2^64 cannot wrap.
 */
export function outOfRange(ctx: CommandContext, lba: bigint, blocks: number | bigint): boolean {
  return lba + BigInt(blocks) > ctx.device.blockCount;
}

export function lbaOutOfRange(): CommandOutcome {
  return check('LBA_OUT_OF_RANGE');
}

/** Map a thrown backstore error to a CHECK CONDITION, INFORMATION = the LBA involved. */
export function backstoreFailure(err: unknown, op: BackstoreOp, lba?: bigint): CommandOutcome {
  return check(errnoToSense(err, op), undefined, lba);
}

/** Byte offset of an LBA (safe: LBAs were range-checked against the capacity). */
export function byteOffset(ctx: CommandContext, lba: bigint): number {
  return Number(lba) * ctx.device.blockSize;
}

/** Index of the first differing byte of a and b (same length), or -1. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  // Narrow down with block-sized compares before the byte loop.
  const step = 512;
  let base = 0;
  while (base + step <= a.length && a.subarray(base, base + step).equals(b.subarray(base, base + step))) base += step;
  for (let i = base; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const ZEROES = Buffer.alloc(64 * 1024);

/** true when every byte of buf is zero. */
export function isAllZero(buf: Buffer): boolean {
  for (let pos = 0; pos < buf.length; pos += ZEROES.length) {
    const piece = buf.subarray(pos, Math.min(buf.length, pos + ZEROES.length));
    if (!piece.equals(ZEROES.subarray(0, piece.length))) return false;
  }
  return true;
}
