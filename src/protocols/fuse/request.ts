// FUSE request decoding: one read(2) of /dev/fuse in, one typed request out.
// Layouts are the kernel's include/uapi/linux/fuse.h, little-endian (the
// kernel writes host order and lunkit runs on little-endian hosts only).
//
// Decoding never throws on wire input. A request is either decoded or refused
// with the errno to answer it with and, when the 40-byte header was readable,
// the unique to answer it under: EIO for a broken frame (short header, len
// that is not the read length, extensions longer than the request), EINVAL
// for a body that does not fit its opcode's struct. Opcodes without a decoder
// here come back as `{ opcode: 'other', code }`; the dispatcher answers ENOSYS.
//
// Protocol minor >= 28 only: the kernel sends the struct sizes of the minor
// negotiated at INIT, and every struct below has had its present size since
// 7.28 or earlier. The dispatcher refuses an INIT below FUSE_MIN_SUPPORTED_MINOR.
// INIT itself is sent before any negotiation, in the kernel's own size: 16
// bytes before 7.36, 64 bytes (with flags2) from 7.36 on.
//
// Payloads (WRITE data, names) are subarray views of the read buffer: the
// caller must not reuse that buffer until it is done with the request.

import { FUSE_NAME_MAX, FuseErrno, FuseOpcode, FuseSize } from './constants.js';

/** struct fuse_in_header (40 bytes). */
export interface FuseInHeader {
  len: number;
  /** Numeric opcode as sent. */
  code: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
  /** Length of the extensions after the body, in 8-byte units (7.38). */
  totalExtlen: number;
}

interface Req<K extends string> {
  opcode: K;
  header: FuseInHeader;
}

/** struct fuse_init_in. */
export interface FuseInitRequest extends Req<'init'> {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  /** INIT flags 32..63; 0 when the body is the 16-byte pre-7.36 struct. */
  flags2: number;
}
/** Name of the entry to look up in header.nodeid (a directory). */
export interface FuseLookupRequest extends Req<'lookup'> {
  name: string;
  /** The name's bytes without the NUL (a view); names need not be UTF-8. */
  nameBytes: Buffer;
}
/** struct fuse_forget_in; header.nodeid is the inode. No reply. */
export interface FuseForgetRequest extends Req<'forget'> {
  nlookup: bigint;
}
/** struct fuse_forget_one. */
export interface FuseForgetOne {
  nodeid: bigint;
  nlookup: bigint;
}
/** struct fuse_batch_forget_in + count fuse_forget_one. No reply. */
export interface FuseBatchForgetRequest extends Req<'batch_forget'> {
  forgets: FuseForgetOne[];
}
/** struct fuse_getattr_in. */
export interface FuseGetattrRequest extends Req<'getattr'> {
  /** FUSE_GETATTR_FH: fh is valid. */
  getattrFlags: number;
  fh: bigint;
}
/** struct fuse_setattr_in; `valid` (FATTR_*) says which fields apply. */
export interface FuseSetattrRequest extends Req<'setattr'> {
  valid: number;
  fh: bigint;
  size: bigint;
  lockOwner: bigint;
  /** Seconds; signed (the kernel stores a time64_t in the u64). */
  atime: bigint;
  mtime: bigint;
  ctime: bigint;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  mode: number;
  uid: number;
  gid: number;
}
/** struct fuse_open_in, for OPEN and OPENDIR. */
export interface FuseOpenRequest extends Req<'open' | 'opendir'> {
  /** open(2) flags (O_RDWR, O_TRUNC, ...; O_CREAT/O_EXCL/O_NOCTTY removed). */
  flags: number;
  /** FUSE_OPEN_* flags. */
  openFlags: number;
}
/** struct fuse_release_in, for RELEASE and RELEASEDIR. */
export interface FuseReleaseRequest extends Req<'release' | 'releasedir'> {
  fh: bigint;
  flags: number;
  releaseFlags: number;
  lockOwner: bigint;
}
/** struct fuse_read_in, for READ, READDIR and READDIRPLUS. */
export interface FuseReadRequest extends Req<'read' | 'readdir' | 'readdirplus'> {
  fh: bigint;
  offset: bigint;
  size: number;
  readFlags: number;
  lockOwner: bigint;
  flags: number;
}
/** struct fuse_write_in followed by `size` bytes of data. */
export interface FuseWriteRequest extends Req<'write'> {
  fh: bigint;
  offset: bigint;
  size: number;
  writeFlags: number;
  lockOwner: bigint;
  flags: number;
  /** View of the payload in the read buffer (no copy); length === size. */
  data: Buffer;
}
/** struct fuse_flush_in. */
export interface FuseFlushRequest extends Req<'flush'> {
  fh: bigint;
  lockOwner: bigint;
}
/** struct fuse_fsync_in, for FSYNC and FSYNCDIR. */
export interface FuseFsyncRequest extends Req<'fsync' | 'fsyncdir'> {
  fh: bigint;
  /** FUSE_FSYNC_FDATASYNC. */
  fsyncFlags: number;
}
/** struct fuse_access_in. */
export interface FuseAccessRequest extends Req<'access'> {
  /** R_OK 4, W_OK 2, X_OK 1; F_OK 0. */
  mask: number;
}
/** struct fuse_fallocate_in. */
export interface FuseFallocateRequest extends Req<'fallocate'> {
  fh: bigint;
  offset: bigint;
  length: bigint;
  /** FALLOC_FL_* bits. */
  mode: number;
}
/** struct fuse_lseek_in. */
export interface FuseLseekRequest extends Req<'lseek'> {
  fh: bigint;
  offset: bigint;
  /** SEEK_DATA 3 or SEEK_HOLE 4 (the kernel handles the others itself). */
  whence: number;
}
/**
 * struct fuse_interrupt_in. header.unique is the target's unique | 1
 * (FUSE_INT_REQ_BIT); do not answer except with EAGAIN or ENOSYS.
 */
export interface FuseInterruptRequest extends Req<'interrupt'> {
  interruptedUnique: bigint;
}
/** Requests with no body of interest. */
export type FuseBodilessRequest = Req<'statfs'> | Req<'destroy'>;
/** An opcode this codec does not decode: answer ENOSYS (if it takes a reply). */
export interface FuseOtherRequest extends Req<'other'> {
  code: number;
  /** The body after the header, extensions excluded (a view). */
  body: Buffer;
}

export type FuseRequest =
  | FuseInitRequest
  | FuseLookupRequest
  | FuseForgetRequest
  | FuseBatchForgetRequest
  | FuseGetattrRequest
  | FuseSetattrRequest
  | FuseOpenRequest
  | FuseReleaseRequest
  | FuseReadRequest
  | FuseWriteRequest
  | FuseFlushRequest
  | FuseFsyncRequest
  | FuseAccessRequest
  | FuseFallocateRequest
  | FuseLseekRequest
  | FuseInterruptRequest
  | FuseBodilessRequest
  | FuseOtherRequest;

export type FuseDecodeResult =
  | { ok: true; req: FuseRequest }
  | {
      ok: false;
      /** Set when the header was readable: answer under it (unless the opcode takes no reply). */
      unique: bigint | undefined;
      /** Numeric opcode when the header was readable. */
      code: number | undefined;
      /** Positive errno to answer with: EIO or EINVAL. */
      error: number;
      reason: string;
    };

/** Reads the 40-byte fuse_in_header at offset 0; the caller checks the length. */
export function decodeInHeader(buf: Buffer): FuseInHeader {
  return {
    len: buf.readUInt32LE(0),
    code: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: buf.readBigUInt64LE(16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    totalExtlen: buf.readUInt16LE(36),
    // 38..39: padding
  };
}

class BodyError {
  constructor(
    readonly error: number,
    readonly reason: string,
  ) {}
}

/** Fails with EINVAL unless the body holds at least `size` bytes of `what`. */
function need(body: Buffer, size: number, what: string): BodyError | null {
  return body.length < size ? new BodyError(FuseErrno.EINVAL, `${what}: body of ${body.length} bytes, need ${size}`) : null;
}

/** A NUL-terminated name filling the body (fuse_lookup_name: name.len + 1 bytes). */
function decodeName(body: Buffer, what: string): { name: string; nameBytes: Buffer } | BodyError {
  const nul = body.indexOf(0);
  if (nul < 0) return new BodyError(FuseErrno.EINVAL, `${what}: name not NUL-terminated`);
  if (nul === 0) return new BodyError(FuseErrno.EINVAL, `${what}: empty name`);
  if (nul > FUSE_NAME_MAX) return new BodyError(FuseErrno.EINVAL, `${what}: name of ${nul} bytes exceeds ${FUSE_NAME_MAX}`);
  if (nul !== body.length - 1) return new BodyError(FuseErrno.EINVAL, `${what}: ${body.length - 1 - nul} bytes after the name`);
  const nameBytes = body.subarray(0, nul);
  return { name: nameBytes.toString('utf8'), nameBytes };
}

function decodeRead(header: FuseInHeader, body: Buffer, opcode: FuseReadRequest['opcode']): FuseReadRequest | BodyError {
  return (
    need(body, FuseSize.READ_IN, opcode) ?? {
      opcode,
      header,
      fh: body.readBigUInt64LE(0),
      offset: body.readBigUInt64LE(8),
      size: body.readUInt32LE(16),
      readFlags: body.readUInt32LE(20),
      lockOwner: body.readBigUInt64LE(24),
      flags: body.readUInt32LE(32),
    }
  );
}

/** Decodes the body of a known opcode; bodies longer than the struct are accepted (newer kernels). */
function decodeBody(header: FuseInHeader, body: Buffer): FuseRequest | BodyError {
  switch (header.code) {
    case FuseOpcode.INIT: {
      const short = need(body, FuseSize.INIT_IN_COMPAT, 'INIT');
      if (short) return short;
      return {
        opcode: 'init',
        header,
        major: body.readUInt32LE(0),
        minor: body.readUInt32LE(4),
        maxReadahead: body.readUInt32LE(8),
        flags: body.readUInt32LE(12),
        flags2: body.length >= FuseSize.INIT_IN ? body.readUInt32LE(16) : 0,
      };
    }
    case FuseOpcode.LOOKUP: {
      const name = decodeName(body, 'LOOKUP');
      return name instanceof BodyError ? name : { opcode: 'lookup', header, ...name };
    }
    case FuseOpcode.FORGET:
      return need(body, FuseSize.FORGET_IN, 'FORGET') ?? { opcode: 'forget', header, nlookup: body.readBigUInt64LE(0) };
    case FuseOpcode.BATCH_FORGET: {
      const short = need(body, FuseSize.BATCH_FORGET_IN, 'BATCH_FORGET');
      if (short) return short;
      const count = body.readUInt32LE(0);
      // Checked against the body before allocating: count comes off the wire.
      const tooShort = need(body, FuseSize.BATCH_FORGET_IN + count * FuseSize.FORGET_ONE, `BATCH_FORGET of ${count}`);
      if (tooShort) return tooShort;
      const forgets: FuseForgetOne[] = [];
      for (let i = 0, pos = FuseSize.BATCH_FORGET_IN; i < count; i++, pos += FuseSize.FORGET_ONE) {
        forgets.push({ nodeid: body.readBigUInt64LE(pos), nlookup: body.readBigUInt64LE(pos + 8) });
      }
      return { opcode: 'batch_forget', header, forgets };
    }
    case FuseOpcode.GETATTR:
      return (
        need(body, FuseSize.GETATTR_IN, 'GETATTR') ?? {
          opcode: 'getattr',
          header,
          getattrFlags: body.readUInt32LE(0),
          fh: body.readBigUInt64LE(8),
        }
      );
    case FuseOpcode.SETATTR:
      return (
        need(body, FuseSize.SETATTR_IN, 'SETATTR') ?? {
          opcode: 'setattr',
          header,
          valid: body.readUInt32LE(0),
          fh: body.readBigUInt64LE(8),
          size: body.readBigUInt64LE(16),
          lockOwner: body.readBigUInt64LE(24),
          atime: body.readBigInt64LE(32),
          mtime: body.readBigInt64LE(40),
          ctime: body.readBigInt64LE(48),
          atimensec: body.readUInt32LE(56),
          mtimensec: body.readUInt32LE(60),
          ctimensec: body.readUInt32LE(64),
          mode: body.readUInt32LE(68),
          // 72: unused4
          uid: body.readUInt32LE(76),
          gid: body.readUInt32LE(80),
        }
      );
    case FuseOpcode.OPEN:
    case FuseOpcode.OPENDIR: {
      const opcode = header.code === FuseOpcode.OPEN ? 'open' : 'opendir';
      return (
        need(body, FuseSize.OPEN_IN, opcode) ?? { opcode, header, flags: body.readUInt32LE(0), openFlags: body.readUInt32LE(4) }
      );
    }
    case FuseOpcode.RELEASE:
    case FuseOpcode.RELEASEDIR: {
      const opcode = header.code === FuseOpcode.RELEASE ? 'release' : 'releasedir';
      return (
        need(body, FuseSize.RELEASE_IN, opcode) ?? {
          opcode,
          header,
          fh: body.readBigUInt64LE(0),
          flags: body.readUInt32LE(8),
          releaseFlags: body.readUInt32LE(12),
          lockOwner: body.readBigUInt64LE(16),
        }
      );
    }
    case FuseOpcode.READ:
      return decodeRead(header, body, 'read');
    case FuseOpcode.READDIR:
      return decodeRead(header, body, 'readdir');
    case FuseOpcode.READDIRPLUS:
      return decodeRead(header, body, 'readdirplus');
    case FuseOpcode.WRITE: {
      const short = need(body, FuseSize.WRITE_IN, 'WRITE');
      if (short) return short;
      const size = body.readUInt32LE(16);
      const data = body.subarray(FuseSize.WRITE_IN);
      if (data.length !== size) {
        return new BodyError(FuseErrno.EINVAL, `WRITE: size ${size} but ${data.length} bytes of data`);
      }
      return {
        opcode: 'write',
        header,
        fh: body.readBigUInt64LE(0),
        offset: body.readBigUInt64LE(8),
        size,
        writeFlags: body.readUInt32LE(20),
        lockOwner: body.readBigUInt64LE(24),
        flags: body.readUInt32LE(32),
        data,
      };
    }
    case FuseOpcode.FLUSH:
      return (
        need(body, FuseSize.FLUSH_IN, 'FLUSH') ?? {
          opcode: 'flush',
          header,
          fh: body.readBigUInt64LE(0),
          lockOwner: body.readBigUInt64LE(16),
        }
      );
    case FuseOpcode.FSYNC:
    case FuseOpcode.FSYNCDIR: {
      const opcode = header.code === FuseOpcode.FSYNC ? 'fsync' : 'fsyncdir';
      return (
        need(body, FuseSize.FSYNC_IN, opcode) ?? { opcode, header, fh: body.readBigUInt64LE(0), fsyncFlags: body.readUInt32LE(8) }
      );
    }
    case FuseOpcode.STATFS:
      return { opcode: 'statfs', header };
    case FuseOpcode.DESTROY:
      return { opcode: 'destroy', header };
    case FuseOpcode.ACCESS:
      return need(body, FuseSize.ACCESS_IN, 'ACCESS') ?? { opcode: 'access', header, mask: body.readUInt32LE(0) };
    case FuseOpcode.FALLOCATE:
      return (
        need(body, FuseSize.FALLOCATE_IN, 'FALLOCATE') ?? {
          opcode: 'fallocate',
          header,
          fh: body.readBigUInt64LE(0),
          offset: body.readBigUInt64LE(8),
          length: body.readBigUInt64LE(16),
          mode: body.readUInt32LE(24),
        }
      );
    case FuseOpcode.LSEEK:
      return (
        need(body, FuseSize.LSEEK_IN, 'LSEEK') ?? {
          opcode: 'lseek',
          header,
          fh: body.readBigUInt64LE(0),
          offset: body.readBigUInt64LE(8),
          whence: body.readUInt32LE(16),
        }
      );
    case FuseOpcode.INTERRUPT:
      return (
        need(body, FuseSize.INTERRUPT_IN, 'INTERRUPT') ?? {
          opcode: 'interrupt',
          header,
          interruptedUnique: body.readBigUInt64LE(0),
        }
      );
    default:
      return { opcode: 'other', header, code: header.code, body };
  }
}

/**
 * Decodes one request. `buf` must be exactly what one read(2) of /dev/fuse
 * returned: fuse_in_header.len must equal buf.length.
 */
export function decodeRequest(buf: Buffer): FuseDecodeResult {
  if (buf.length < FuseSize.IN_HEADER) {
    return { ok: false, unique: undefined, code: undefined, error: FuseErrno.EIO, reason: `read of ${buf.length} bytes is shorter than fuse_in_header` };
  }
  const header = decodeInHeader(buf);
  const fail = (error: number, reason: string): FuseDecodeResult => ({ ok: false, unique: header.unique, code: header.code, error, reason });
  if (header.len !== buf.length) return fail(FuseErrno.EIO, `header len ${header.len} but read ${buf.length} bytes`);
  const extBytes = header.totalExtlen * 8;
  if (FuseSize.IN_HEADER + extBytes > buf.length) {
    return fail(FuseErrno.EIO, `extensions of ${extBytes} bytes exceed the ${buf.length - FuseSize.IN_HEADER}-byte body`);
  }
  const body = buf.subarray(FuseSize.IN_HEADER, buf.length - extBytes);
  const req = decodeBody(header, body);
  return req instanceof BodyError ? fail(req.error, req.reason) : { ok: true, req };
}
