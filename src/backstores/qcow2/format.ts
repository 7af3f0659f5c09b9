// qcow2 on-disk format: constants and pure codecs over Buffers (STYLE.md §10).
// Written from QEMU's docs/interop/qcow2.txt; section names below are that
// document's ("== Header ==", "== Cluster mapping ==", ...).

import { LunkitError } from '../../protocols/errors.js';

/** "QFI\xfb" (== Header ==, bytes 0-3). */
export const QCOW2_MAGIC = 0x514649fb;

export const V2_HEADER_LENGTH = 72;
export const V3_HEADER_LENGTH = 104;

/** Header extension types (=== Header extensions ===). */
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_NAMES = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** incompatible_features bits (header bytes 72-79). */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/** compatible_features bit 0. */
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

/** Header byte offsets we rewrite in place. */
export const HDR_INCOMPAT_OFFSET = 72;
export const HDR_AUTOCLEAR_OFFSET = 88;
export const HDR_REFTABLE_OFFSET = 48; // refcount_table_offset (8) + refcount_table_clusters (4)

/** L1/L2/refcount-table entry bits (== Cluster mapping ==). */
export const OFLAG_COPIED = 1n << 63n;
export const OFLAG_COMPRESSED = 1n << 62n;
export const OFLAG_ZERO = 1n;
/** Bits 9-55: a cluster-aligned host offset in an L1 or standard L2 entry. */
export const OFFSET_MASK = 0x00fffffffffffe00n;
/** Bits 1-8 and 56-61 of a standard L2 entry are reserved. */
const L2_STANDARD_RESERVED = 0x3f000000000001fen;
const L1_RESERVED = 0x7f000000000001ffn;

export interface FeatureName {
  type: number; // 0 incompatible, 1 compatible, 2 autoclear
  bit: number;
  name: string;
}

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatible: bigint;
  compatible: bigint;
  autoclear: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  /** Header extensions. */
  backingFormat?: string;
  featureNames: FeatureName[];
  hasDataFileExt: boolean;
  backingFile?: string;
}

function invalid(path: string, what: string): LunkitError {
  return new LunkitError('ERR_QCOW2_INVALID', `${path}: not a valid qcow2 image: ${what}`);
}

function unsupported(path: string, what: string): LunkitError {
  return new LunkitError('ERR_QCOW2_UNSUPPORTED', `${path}: ${what} is not supported by lunkit's qcow2 backstore`);
}

/** A 64-bit field as a Number; offsets past 2^53 are refused (no real image has them). */
function u64(buf: Buffer, at: number, path: string, field: string): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(path, `${field} ${v} out of range`);
  return Number(v);
}

/** The names of the set bits of one feature bitmap, from the feature name table when it has them. */
export function featureBitNames(bits: bigint, type: number, table: FeatureName[]): string[] {
  const out: string[] = [];
  for (let b = 0; b < 64; b++) {
    if ((bits >> BigInt(b)) & 1n) {
      const named = table.find((f) => f.type === type && f.bit === b);
      out.push(named ? `"${named.name}" (bit ${b})` : `bit ${b}`);
    }
  }
  return out;
}

/**
 * Parse the first cluster of an image (or at least its header and extension
 * area). Checks what can be checked without the file size; the opener checks
 * offsets against the file.
 */
export function parseHeader(buf: Buffer, path: string): Qcow2Header {
  if (buf.length < V2_HEADER_LENGTH) throw invalid(path, `file too short for a header (${buf.length} bytes)`);
  if (buf.readUInt32BE(0) !== QCOW2_MAGIC) throw invalid(path, 'bad magic (not QFI\\xfb)');
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw unsupported(path, `qcow2 version ${version}`);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw invalid(path, `cluster_bits ${clusterBits} outside 9..21`);
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(buf, 8, path, 'backing_file_offset'),
    backingFileSize: buf.readUInt32BE(16),
    clusterBits,
    size: u64(buf, 24, path, 'size'),
    cryptMethod: buf.readUInt32BE(32),
    l1Size: buf.readUInt32BE(36),
    l1TableOffset: u64(buf, 40, path, 'l1_table_offset'),
    refcountTableOffset: u64(buf, 48, path, 'refcount_table_offset'),
    refcountTableClusters: buf.readUInt32BE(56),
    nbSnapshots: buf.readUInt32BE(60),
    snapshotsOffset: u64(buf, 64, path, 'snapshots_offset'),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
    featureNames: [],
    hasDataFileExt: false,
  };
  if (version === 3) {
    if (buf.length < V3_HEADER_LENGTH) throw invalid(path, 'file too short for a version 3 header');
    h.incompatible = buf.readBigUInt64BE(72);
    h.compatible = buf.readBigUInt64BE(80);
    h.autoclear = buf.readBigUInt64BE(88);
    h.refcountOrder = buf.readUInt32BE(96);
    h.headerLength = buf.readUInt32BE(100);
    if (h.headerLength < V3_HEADER_LENGTH || h.headerLength % 8 !== 0) {
      throw invalid(path, `header_length ${h.headerLength} (must be >= 104 and a multiple of 8)`);
    }
    if (h.headerLength > buf.length) throw invalid(path, `header_length ${h.headerLength} past the first cluster`);
    if (h.headerLength > 104) h.compressionType = buf.readUInt8(104);
    if (h.refcountOrder > 6) throw invalid(path, `refcount_order ${h.refcountOrder} above 6`);
  }
  parseExtensions(buf, h, path);
  checkFeatures(h, path);
  if (h.backingFileOffset !== 0) {
    if (h.backingFileSize === 0 || h.backingFileSize > 1023) throw invalid(path, `backing_file_size ${h.backingFileSize}`);
    if (h.backingFileOffset + h.backingFileSize > buf.length) {
      throw invalid(path, 'backing file name outside the first cluster');
    }
    h.backingFile = buf.toString('utf8', h.backingFileOffset, h.backingFileOffset + h.backingFileSize);
  }
  return h;
}

function parseExtensions(buf: Buffer, h: Qcow2Header, path: string): void {
  let at = h.headerLength;
  // The extension area ends at an EXT_END, or where the backing file name starts.
  const limit = h.backingFileOffset > 0 ? Math.min(h.backingFileOffset, buf.length) : buf.length;
  while (at + 8 <= limit) {
    const type = buf.readUInt32BE(at);
    const len = buf.readUInt32BE(at + 4);
    if (type === EXT_END) return;
    const data = at + 8;
    if (data + len > limit) throw invalid(path, `header extension 0x${type.toString(16)} runs past the header cluster`);
    if (type === EXT_BACKING_FORMAT) {
      h.backingFormat = buf.toString('utf8', data, data + len);
    } else if (type === EXT_FEATURE_NAMES) {
      for (let e = data; e + 48 <= data + len; e += 48) {
        const raw = buf.subarray(e + 2, e + 48);
        const nul = raw.indexOf(0);
        h.featureNames.push({ type: buf[e], bit: buf[e + 1], name: raw.toString('utf8', 0, nul < 0 ? raw.length : nul) });
      }
    } else if (type === EXT_DATA_FILE) {
      h.hasDataFileExt = true;
    }
    // Other types (bitmaps, crypto header, unknown) are skipped.
    at = data + Math.ceil(len / 8) * 8;
  }
}

function checkFeatures(h: Qcow2Header, path: string): void {
  const unknown = h.incompatible & ~INCOMPAT_KNOWN;
  if (unknown !== 0n) {
    throw unsupported(path, `incompatible feature ${featureBitNames(unknown, 0, h.featureNames).join(', ')}`);
  }
  if (h.cryptMethod !== 0) throw unsupported(path, `encryption (crypt_method ${h.cryptMethod === 1 ? 'AES' : h.cryptMethod === 2 ? 'LUKS' : h.cryptMethod})`);
  if (h.incompatible & INCOMPAT_DATA_FILE) throw unsupported(path, 'an external data file (incompatible feature bit 2)');
  if (h.incompatible & INCOMPAT_EXTL2) throw unsupported(path, 'extended L2 entries (incompatible feature bit 4)');
  if (h.incompatible & INCOMPAT_COMPRESSION || h.compressionType !== 0) {
    const name = h.compressionType === 1 ? 'zstd' : `type ${h.compressionType}`;
    throw unsupported(path, `compression ${name} (only deflate/zlib is)`);
  }
}

// ---------------------------------------------------------------------------
// L1 and L2 entries.

export type L2Entry =
  | { kind: 'unallocated' }
  | { kind: 'zero'; offset: number } // offset: a preallocation (0 if none); reads as zeroes
  | { kind: 'normal'; offset: number; copied: boolean }
  | { kind: 'compressed'; offset: number; bytes: number };

/** The L2 table offset of an L1 entry (0: no table); throws EIO when reserved bits or alignment are wrong. */
export function l1Offset(entry: bigint, clusterSize: number, where: string): number {
  if (entry & L1_RESERVED) throw corruptIo(`${where}: L1 entry 0x${entry.toString(16)} has reserved bits set`);
  const off = Number(entry & OFFSET_MASK);
  if (off % clusterSize !== 0) throw corruptIo(`${where}: L2 table offset 0x${off.toString(16)} is not cluster-aligned`);
  return off;
}

/** Decode a standard (non-extended) L2 entry (== Cluster mapping ==). */
export function decodeL2(entry: bigint, clusterBits: number, where: string): L2Entry {
  if (entry === 0n) return { kind: 'unallocated' };
  if (entry & OFLAG_COMPRESSED) {
    // Compressed Clusters Descriptor: x = 62 - (cluster_bits - 8).
    const x = BigInt(62 - (clusterBits - 8));
    const offset = Number(entry & ((1n << x) - 1n));
    const sectors = Number((entry >> x) & ((1n << (62n - x)) - 1n)) + 1;
    return { kind: 'compressed', offset, bytes: sectors * 512 - (offset % 512) };
  }
  if (entry & L2_STANDARD_RESERVED) throw corruptIo(`${where}: L2 entry 0x${entry.toString(16)} has reserved bits set`);
  const offset = Number(entry & OFFSET_MASK);
  const clusterSize = 2 ** clusterBits;
  if (offset % clusterSize !== 0) throw corruptIo(`${where}: data cluster offset 0x${offset.toString(16)} is not cluster-aligned`);
  if (entry & OFLAG_ZERO) return { kind: 'zero', offset };
  if (offset === 0) throw corruptIo(`${where}: L2 entry 0x${entry.toString(16)} points at offset 0`);
  return { kind: 'normal', offset, copied: (entry & OFLAG_COPIED) !== 0n };
}

/** The host clusters a compressed cluster's bytes touch: [first, last] cluster-aligned offsets. */
export function compressedSpan(offset: number, bytes: number, clusterSize: number): [number, number] {
  const first = offset - (offset % clusterSize);
  const end = offset + bytes - 1;
  return [first, end - (end % clusterSize)];
}

/** A corruption found during I/O: EIO so the core reports a MEDIUM ERROR, with the problem named. */
export function corruptIo(message: string): LunkitError {
  return new LunkitError('EIO', `qcow2 metadata corrupt: ${message}`);
}

// ---------------------------------------------------------------------------
// Refcount block entries: refcount_bits = 1 << refcount_order, bit 0 = LSB.

export function readRefcount(block: Buffer, index: number, order: number): number {
  switch (order) {
    case 4:
      return block.readUInt16BE(index * 2);
    case 5:
      return block.readUInt32BE(index * 4);
    case 6: {
      const v = block.readBigUInt64BE(index * 8);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    }
    case 3:
      return block[index];
    default: {
      const bits = 1 << order;
      const bitPos = index * bits;
      return (block[bitPos >> 3] >> (bitPos & 7)) & ((1 << bits) - 1);
    }
  }
}

export function writeRefcount(block: Buffer, index: number, order: number, value: number): void {
  switch (order) {
    case 4:
      block.writeUInt16BE(value, index * 2);
      return;
    case 5:
      block.writeUInt32BE(value, index * 4);
      return;
    case 6:
      block.writeBigUInt64BE(BigInt(value), index * 8);
      return;
    case 3:
      block[index] = value;
      return;
    default: {
      const bits = 1 << order;
      const bitPos = index * bits;
      const mask = ((1 << bits) - 1) << (bitPos & 7);
      block[bitPos >> 3] = (block[bitPos >> 3] & ~mask) | ((value << (bitPos & 7)) & mask);
    }
  }
}

/** The largest refcount an entry of this order holds. */
export function maxRefcount(order: number): number {
  return order >= 6 ? Number.MAX_SAFE_INTEGER : 2 ** (1 << order) - 1;
}

/** Byte range [start, end) of refcount entry `index` within its block. */
export function refcountByteRange(index: number, order: number): [number, number] {
  const bits = 1 << order;
  const start = Math.floor((index * bits) / 8);
  return [start, start + Math.max(1, bits / 8)];
}
