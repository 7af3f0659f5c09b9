// FUSE reply encoding: fuse_out_header plus the opcode's out struct, laid
// out as in include/uapi/linux/fuse.h, little-endian. A reply is one write(2)
// to /dev/fuse. Small replies come back as fresh Buffers; bulk data is never
// copied: READ gets a 16-byte header for writev([header, data]), and
// DirentWriter builds READDIR/READDIRPLUS replies in one buffer that already
// holds room for the header.
//
// Encoders throw RangeError on programmer errors (an errno outside 1..511, a
// dirent name the kernel would refuse); they never see wire input.

import { FUSE_MAX_ERRNO, FUSE_NAME_MAX, FuseSize } from './constants.js';

/** A u64 field: bigint, or a non-negative safe integer. */
export type U64 = bigint | number;

const u64 = (v: U64): bigint => BigInt.asUintN(64, BigInt(v));

function writeU64(out: Buffer, pos: number, v: U64): void {
  out.writeBigUInt64LE(u64(v), pos);
}

/**
 * A cache timeout in seconds (fractions allowed) as the u64 seconds + u32
 * nanoseconds pair of fuse_entry_out / fuse_attr_out.
 */
function writeValid(out: Buffer, secPos: number, nsecPos: number, seconds: number): void {
  if (!(seconds >= 0) || !Number.isFinite(seconds)) throw new RangeError(`cache timeout ${seconds} is not a finite non-negative number`);
  let sec = Math.floor(seconds);
  let nsec = Math.round((seconds - sec) * 1e9);
  if (nsec >= 1e9) {
    sec += 1;
    nsec -= 1e9;
  }
  out.writeBigUInt64LE(BigInt(sec), secPos);
  out.writeUInt32LE(nsec, nsecPos);
}

/**
 * Writes struct fuse_out_header (16 bytes: len, error, unique) at `offset`.
 * `error` is 0 or a negative errno (-1..-511). Returns the offset after it.
 */
export function replyHeader(out: Buffer, len: number, error: number, unique: bigint, offset = 0): number {
  if (!Number.isInteger(error) || error > 0 || error < -FUSE_MAX_ERRNO) {
    throw new RangeError(`fuse_out_header.error must be 0 or -1..-${FUSE_MAX_ERRNO}, got ${error}`);
  }
  out.writeUInt32LE(len, offset);
  out.writeInt32LE(error, offset + 4);
  out.writeBigUInt64LE(BigInt.asUintN(64, unique), offset + 8);
  return offset + FuseSize.OUT_HEADER;
}

/** A reply of header + `bodySize` bytes, header written, body zeroed. */
function reply(unique: bigint, bodySize: number): Buffer {
  const out = Buffer.alloc(FuseSize.OUT_HEADER + bodySize);
  replyHeader(out, out.length, 0, unique);
  return out;
}

/** An error reply: the header alone (the kernel refuses an error reply with a body). */
export function encodeError(unique: bigint, errno: number): Buffer {
  if (!Number.isInteger(errno) || errno < 1 || errno > FUSE_MAX_ERRNO) {
    throw new RangeError(`errno must be 1..${FUSE_MAX_ERRNO}, got ${errno}`);
  }
  const out = Buffer.alloc(FuseSize.OUT_HEADER);
  replyHeader(out, out.length, -errno, unique);
  return out;
}

/** Success with no body: FLUSH, RELEASE(DIR), FSYNC(DIR), ACCESS, FALLOCATE, DESTROY. */
export function encodeOk(unique: bigint): Buffer {
  return reply(unique, 0);
}

/** struct fuse_init_out (64 bytes since 7.23; 7.28+ is all this codec speaks). */
export interface FuseInitReply {
  unique: bigint;
  major: number;
  minor: number;
  maxReadahead: number;
  /** INIT flags 0..31 (FuseInitFlag). */
  flags: number;
  /** INIT flags 32..63 (FuseInitFlag2); only read when flags has INIT_EXT. */
  flags2: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  /** Timestamp granularity in ns (1 = full nanoseconds); a power of 10 up to 1e9. */
  timeGran: number;
  /** Pages per request (with FUSE_MAX_PAGES); the kernel caps it at its own limit. */
  maxPages: number;
  mapAlignment: number;
  /** With FUSE_PASSTHROUGH (7.40). */
  maxStackDepth?: number;
  /** Seconds, with FUSE_REQUEST_TIMEOUT (7.43). */
  requestTimeout?: number;
}

export function encodeInitReply(r: FuseInitReply): Buffer {
  const out = reply(r.unique, FuseSize.INIT_OUT);
  const b = FuseSize.OUT_HEADER;
  out.writeUInt32LE(r.major, b + 0);
  out.writeUInt32LE(r.minor, b + 4);
  out.writeUInt32LE(r.maxReadahead, b + 8);
  out.writeUInt32LE(r.flags >>> 0, b + 12);
  out.writeUInt16LE(r.maxBackground, b + 16);
  out.writeUInt16LE(r.congestionThreshold, b + 18);
  out.writeUInt32LE(r.maxWrite, b + 20);
  out.writeUInt32LE(r.timeGran, b + 24);
  out.writeUInt16LE(r.maxPages, b + 28);
  out.writeUInt16LE(r.mapAlignment, b + 30);
  out.writeUInt32LE(r.flags2 >>> 0, b + 32);
  out.writeUInt32LE(r.maxStackDepth ?? 0, b + 36);
  out.writeUInt16LE(r.requestTimeout ?? 0, b + 40);
  // 42..63: unused[11]
  return out;
}

/** struct fuse_attr (88 bytes). Times are signed seconds plus nanoseconds. */
export interface FuseAttr {
  ino: U64;
  size: U64;
  /** 512-byte blocks allocated. */
  blocks?: U64;
  atime: U64;
  mtime: U64;
  ctime: U64;
  atimensec?: number;
  mtimensec?: number;
  ctimensec?: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  blksize?: number;
  /** FUSE_ATTR_* flags. */
  flags?: number;
}

/** Writes struct fuse_attr at `pos`; returns the offset after it. */
export function writeAttr(out: Buffer, pos: number, a: FuseAttr): number {
  writeU64(out, pos + 0, a.ino);
  writeU64(out, pos + 8, a.size);
  writeU64(out, pos + 16, a.blocks ?? 0);
  writeU64(out, pos + 24, a.atime);
  writeU64(out, pos + 32, a.mtime);
  writeU64(out, pos + 40, a.ctime);
  out.writeUInt32LE(a.atimensec ?? 0, pos + 48);
  out.writeUInt32LE(a.mtimensec ?? 0, pos + 52);
  out.writeUInt32LE(a.ctimensec ?? 0, pos + 56);
  out.writeUInt32LE(a.mode, pos + 60);
  out.writeUInt32LE(a.nlink, pos + 64);
  out.writeUInt32LE(a.uid, pos + 68);
  out.writeUInt32LE(a.gid, pos + 72);
  out.writeUInt32LE(a.rdev ?? 0, pos + 76);
  out.writeUInt32LE(a.blksize ?? 0, pos + 80);
  out.writeUInt32LE(a.flags ?? 0, pos + 84);
  return pos + FuseSize.ATTR;
}

/** struct fuse_entry_out. Timeouts are seconds (fractions become the nsec fields). */
export interface FuseEntry {
  /** 0 for a negative entry (ENOENT that the kernel may cache for entryValid). */
  nodeid: U64;
  generation: U64;
  entryValid: number;
  attrValid: number;
  attr: FuseAttr;
}

/** Writes struct fuse_entry_out (128 bytes) at `pos`; returns the offset after it. */
export function writeEntryOut(out: Buffer, pos: number, e: FuseEntry): number {
  writeU64(out, pos + 0, e.nodeid);
  writeU64(out, pos + 8, e.generation);
  writeValid(out, pos + 16, pos + 32, e.entryValid);
  writeValid(out, pos + 24, pos + 36, e.attrValid);
  return writeAttr(out, pos + 40, e.attr);
}

/** LOOKUP (and MKNOD, MKDIR, SYMLINK, LINK) reply. */
export function encodeEntry(unique: bigint, e: FuseEntry): Buffer {
  const out = reply(unique, FuseSize.ENTRY_OUT);
  writeEntryOut(out, FuseSize.OUT_HEADER, e);
  return out;
}

/** GETATTR and SETATTR reply: struct fuse_attr_out (104 bytes). */
export function encodeAttr(unique: bigint, a: { attrValid: number; attr: FuseAttr }): Buffer {
  const out = reply(unique, FuseSize.ATTR_OUT);
  const b = FuseSize.OUT_HEADER;
  writeValid(out, b + 0, b + 8, a.attrValid);
  // b + 12: dummy
  writeAttr(out, b + 16, a.attr);
  return out;
}

/** OPEN and OPENDIR reply: struct fuse_open_out (16 bytes). */
export function encodeOpen(unique: bigint, o: { fh: U64; openFlags: number; backingId?: number }): Buffer {
  const out = reply(unique, FuseSize.OPEN_OUT);
  const b = FuseSize.OUT_HEADER;
  writeU64(out, b + 0, o.fh);
  out.writeUInt32LE(o.openFlags >>> 0, b + 8);
  out.writeInt32LE(o.backingId ?? 0, b + 12);
  return out;
}

/** WRITE reply: struct fuse_write_out (bytes written, 8 bytes). */
export function encodeWrite(unique: bigint, size: number): Buffer {
  const out = reply(unique, FuseSize.WRITE_OUT);
  out.writeUInt32LE(size, FuseSize.OUT_HEADER);
  return out;
}

/** struct fuse_kstatfs. */
export interface FuseStatfs {
  blocks: U64;
  bfree: U64;
  bavail: U64;
  files: U64;
  ffree: U64;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** STATFS reply: struct fuse_statfs_out = fuse_kstatfs (80 bytes). */
export function encodeStatfs(unique: bigint, s: FuseStatfs): Buffer {
  const out = reply(unique, FuseSize.KSTATFS);
  const b = FuseSize.OUT_HEADER;
  writeU64(out, b + 0, s.blocks);
  writeU64(out, b + 8, s.bfree);
  writeU64(out, b + 16, s.bavail);
  writeU64(out, b + 24, s.files);
  writeU64(out, b + 32, s.ffree);
  out.writeUInt32LE(s.bsize, b + 40);
  out.writeUInt32LE(s.namelen, b + 44);
  out.writeUInt32LE(s.frsize, b + 48);
  // b + 52: padding, b + 56..79: spare[6]
  return out;
}

/** LSEEK reply: struct fuse_lseek_out (the resulting offset). */
export function encodeLseek(unique: bigint, offset: U64): Buffer {
  const out = reply(unique, FuseSize.LSEEK_OUT);
  writeU64(out, FuseSize.OUT_HEADER, offset);
  return out;
}

/**
 * READ reply header: 16 bytes whose len covers `dataLength` bytes that the
 * caller writes after it in the same writev(2), so the data is not copied.
 * A short read (dataLength < the requested size) means end of file.
 */
export function readReplyHeader(unique: bigint, dataLength: number): Buffer {
  const out = Buffer.alloc(FuseSize.OUT_HEADER);
  replyHeader(out, FuseSize.OUT_HEADER + dataLength, 0, unique);
  return out;
}

// --- READDIR / READDIRPLUS -------------------------------------------------------

/** FUSE_DIRENT_ALIGN: records are padded to 8 bytes. */
export const direntAlign = (n: number): number => (n + 7) & ~7;

/** One directory entry. */
export interface FuseDirent {
  ino: U64;
  /** The offset of the *next* entry: what READDIR sends back to continue after this one. */
  off: U64;
  /** d_type (DirentType). */
  type: number;
  /** 1..1024 bytes, no '/' or NUL (the kernel answers EIO to others: fuse_parse_dirfile). */
  name: string | Buffer;
}

/** One READDIRPLUS entry: the dirent and the LOOKUP reply for it. */
export interface FuseDirentPlus extends FuseDirent {
  /**
   * A nodeid other than 0 counts as a LOOKUP, to be balanced by FORGET,
   * except for "." and ".." (fs/fuse/readdir.c fuse_direntplus_link).
   */
  entry: FuseEntry;
}

/** Default cap on one READDIR reply's payload, whatever size the request asks. */
export const FUSE_DIRENT_MAX_SIZE = 1 << 20;

function nameBytes(name: string | Buffer): Buffer {
  const b = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  if (b.length === 0 || b.length > FUSE_NAME_MAX) throw new RangeError(`dirent name of ${b.length} bytes (1..${FUSE_NAME_MAX})`);
  if (b.includes(0x2f) || b.includes(0)) throw new RangeError(`dirent name ${JSON.stringify(b.toString())} contains '/' or NUL`);
  return b;
}

/**
 * Builds a READDIR (fuse_dirent records) or READDIRPLUS (fuse_direntplus
 * records) reply of at most `size` bytes of payload, the size the request
 * asked for (capped at `maxSize`). Room for the fuse_out_header is reserved in
 * front, so finish() returns the whole reply without copying.
 */
export class DirentWriter {
  private readonly buf: Buffer;
  private readonly limit: number;
  private pos: number = FuseSize.OUT_HEADER;
  private full = false;

  constructor(
    readonly plus: boolean,
    size: number,
    maxSize: number = FUSE_DIRENT_MAX_SIZE,
  ) {
    this.limit = Math.max(0, Math.min(size, maxSize));
    // Zeroed so padding and unused fields never leak old memory.
    this.buf = Buffer.alloc(FuseSize.OUT_HEADER + this.limit);
  }

  /** Payload bytes written so far. */
  get length(): number {
    return this.pos - FuseSize.OUT_HEADER;
  }

  /** True once an entry did not fit: the reply is as full as this request allows. */
  get overflowed(): boolean {
    return this.full;
  }

  /**
   * Appends one entry; false (and nothing written) when it does not fit. A
   * READDIRPLUS writer needs FuseDirentPlus entries.
   */
  add(entry: FuseDirent | FuseDirentPlus): boolean {
    const name = nameBytes(entry.name);
    const fixed = this.plus ? FuseSize.DIRENTPLUS : FuseSize.DIRENT;
    const recLen = direntAlign(fixed + name.length);
    if (this.full || this.pos + recLen > this.buf.length) {
      this.full = true;
      return false;
    }
    let p = this.pos;
    if (this.plus) {
      if (!('entry' in entry)) throw new TypeError('READDIRPLUS entries need an entry (fuse_entry_out)');
      p = writeEntryOut(this.buf, p, entry.entry);
    }
    writeU64(this.buf, p + 0, entry.ino);
    writeU64(this.buf, p + 8, entry.off);
    this.buf.writeUInt32LE(name.length, p + 16);
    this.buf.writeUInt32LE(entry.type, p + 20);
    name.copy(this.buf, p + 24);
    this.pos += recLen;
    return true;
  }

  /** The reply (header + records), a view of the writer's buffer. */
  finish(unique: bigint): Buffer {
    replyHeader(this.buf, this.pos, 0, unique);
    return this.buf.subarray(0, this.pos);
  }
}
