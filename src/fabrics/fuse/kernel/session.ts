// One FUSE mount's conversation with the kernel: requests decoded from
// /dev/fuse (protocols/fuse), answered from the volume (../volume.ts), replies
// written back on the fd the request came from (channel.ts). This replaces
// libfuse: no thread hop per request (the channel's reader threads hand
// buffers to this event loop), 1 MiB requests (FUSE_MAX_PAGES), many in
// flight, WRITE data handed to the core from the request buffer and READ data
// read by the backstore straight into the reply buffer.
//
// The file system is one directory (node id 1) of regular files, one per
// export; a file's node id is its inode number. Node lookups are not counted:
// an export's node id stays valid until the export goes, and the kernel's
// FORGETs need no answer.

import {
  DirentType,
  DirentWriter,
  FUSE_GETATTR_FH,
  FUSE_MIN_SUPPORTED_MINOR,
  FuseErrno,
  FuseInitFlag,
  FuseOpcode,
  FuseOpenOutFlag,
  FuseSetattrValid,
  SeekWhence,
  decodeRequest,
  encodeAttr,
  encodeEntry,
  encodeError,
  encodeInitReply,
  encodeLseek,
  encodeOk,
  encodeOpen,
  encodeStatfs,
  encodeWrite,
  fuseOpcodeHasReply,
  replyHeader,
  type FuseAttr,
  type FuseInitRequest,
  type FuseRequest,
} from '../../../protocols/fuse/index.js';
import type { Logger } from '../../../util/log.js';
import type { Entry, FuseVolume, VolumeAttr } from '../volume.js';

/**
 * The protocol minor we answer with (or the kernel's, if older): 7.28 is the
 * oldest layout the codecs read; FOPEN_PARALLEL_DIRECT_WRITES is a 7.37 flag
 * an older kernel ignores.
 */
const OUR_MINOR = 38;
/** Largest READ and WRITE the kernel sends us (FUSE_MAX_PAGES: 256 pages). */
export const FUSE_MAX_IO = 1024 * 1024;
/** How long the kernel may cache a file's attributes and its name: sizes change only on resize. */
const ATTR_VALID_S = 1;
const ENTRY_VALID_S = 1;
/** READ reply buffers kept for reuse (one per request in flight is the most ever needed). */
const MAX_POOLED_READ_BUFFERS = 64;

/** The INIT flags we want, when the kernel offers them. */
const WANTED_FLAGS =
  FuseInitFlag.ASYNC_READ |
  FuseInitFlag.BIG_WRITES |
  FuseInitFlag.MAX_PAGES |
  FuseInitFlag.PARALLEL_DIROPS |
  FuseInitFlag.ASYNC_DIO |
  FuseInitFlag.AUTO_INVAL_DATA |
  FuseInitFlag.ATOMIC_O_TRUNC;

export interface SessionOptions {
  /** Open files with FOPEN_DIRECT_IO: no page cache, every read(2)/write(2) reaches the LU. */
  directIo: boolean;
  logger: Logger;
  /** Writes one reply to the fd the request came from; false when the kernel no longer waits for it. */
  reply(fdIndex: number, parts: Buffer[]): boolean;
}

/** Where a request came from and how to give its buffer back. */
interface Origin {
  fdIndex: number;
  release: () => void;
}

export class FuseKernelSession {
  private initDone = false;
  private readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  /** Reply buffers for READ, reused (a request's reply is written before its buffer returns). */
  private readonly readBuffers: Buffer[] = [];
  private readonly header = Buffer.alloc(16);
  /** Requests answered and refused (for tests and stats). */
  readonly counters = { requests: 0, refused: 0, malformed: 0 };

  constructor(
    private readonly volume: FuseVolume,
    private readonly opts: SessionOptions,
  ) {
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    // A mount that fails before INIT must not leave an unhandled rejection behind.
    this.ready.catch(() => undefined);
  }

  /** Resolves once INIT is answered (the mount is usable), rejects if the kernel's protocol is too old. */
  initialized(): Promise<void> {
    return this.ready;
  }

  /** The channel's request callback: never throws (a failing handler answers EIO). */
  handle(request: Buffer, release: () => void, fdIndex: number): void {
    this.counters.requests++;
    const origin = { fdIndex, release };
    const dec = decodeRequest(request);
    if (!dec.ok) {
      this.counters.malformed++;
      this.opts.logger.warn('FUSE: malformed request from the kernel', { reason: dec.reason, opcode: dec.code });
      if (dec.unique !== undefined && (dec.code === undefined || fuseOpcodeHasReply(dec.code))) this.send(origin, encodeError(dec.unique, dec.error));
      release();
      return;
    }
    const req = dec.req;
    try {
      const pending = this.dispatch(req, origin);
      if (pending) {
        pending.catch((e: unknown) => {
          this.opts.logger.error('FUSE request failed', { opcode: req.opcode, err: e });
          this.send(origin, encodeError(req.header.unique, FuseErrno.EIO));
          origin.release();
        });
      }
    } catch (e) {
      this.opts.logger.error('FUSE request failed', { opcode: req.opcode, err: e });
      this.send(origin, encodeError(req.header.unique, FuseErrno.EIO));
      release();
    }
  }

  private send(origin: Origin, reply: Buffer): void {
    this.opts.reply(origin.fdIndex, [reply]);
  }

  /** Answers and releases at once (requests that keep nothing of their buffer). */
  private answer(origin: Origin, reply: Buffer): undefined {
    origin.release();
    this.send(origin, reply);
    return undefined;
  }

  private refuse(origin: Origin, unique: bigint, errno: number): undefined {
    this.counters.refused++;
    return this.answer(origin, encodeError(unique, errno));
  }

  /** Handles one request; a promise for those that finish later (READ, WRITE, FSYNC, ...). */
  private dispatch(req: FuseRequest, origin: Origin): Promise<void> | undefined {
    const u = req.header.unique;
    if (!this.initDone && req.opcode !== 'init') return this.refuse(origin, u, FuseErrno.EIO);
    switch (req.opcode) {
      case 'init':
        return this.init(req, origin);
      case 'lookup': {
        if (req.header.nodeid !== 1n) return this.refuse(origin, u, FuseErrno.ENOTDIR);
        const e = this.volume.lookup(req.name);
        if (!e) return this.refuse(origin, u, FuseErrno.ENOENT);
        return this.answer(origin, encodeEntry(u, { nodeid: e.ino, generation: 0, entryValid: ENTRY_VALID_S, attrValid: ATTR_VALID_S, attr: fuseAttr(this.volume.attrOf(e)) }));
      }
      case 'forget':
      case 'batch_forget':
      case 'interrupt':
        // No reply. An interrupted READ or WRITE finishes anyway: its reply then finds no waiter.
        origin.release();
        return undefined;
      case 'getattr': {
        const attr = this.attrOfNode(req.header.nodeid, (req.getattrFlags & FUSE_GETATTR_FH) !== 0 ? req.fh : undefined);
        if (!attr) return this.refuse(origin, u, FuseErrno.ENOENT);
        return this.answer(origin, encodeAttr(u, { attrValid: ATTR_VALID_S, attr: fuseAttr(attr) }));
      }
      case 'setattr':
        return this.setattr(req, origin);
      case 'open': {
        const e = this.node(req.header.nodeid);
        if (!e) return this.refuse(origin, u, req.header.nodeid === 1n ? FuseErrno.EISDIR : FuseErrno.ENOENT);
        const fh = this.volume.open(e, req.flags);
        if (fh < 0) return this.refuse(origin, u, -fh);
        // Parallel direct writes: without it the kernel holds the inode lock across each O_DIRECT write.
        const flags = FuseOpenOutFlag.PARALLEL_DIRECT_WRITES | (this.opts.directIo ? FuseOpenOutFlag.DIRECT_IO : 0);
        return this.answer(origin, encodeOpen(u, { fh, openFlags: flags }));
      }
      case 'opendir':
        if (req.header.nodeid !== 1n) return this.refuse(origin, u, FuseErrno.ENOTDIR);
        return this.answer(origin, encodeOpen(u, { fh: 0, openFlags: 0 }));
      case 'release':
        this.volume.release(Number(req.fh));
        return this.answer(origin, encodeOk(u));
      case 'releasedir':
      case 'fsyncdir':
      case 'flush':
      case 'access':
      case 'destroy':
        // close(2) of one descriptor: the data is in the LU already (no fabric cache); fsync is the barrier.
        return this.answer(origin, encodeOk(u));
      case 'read':
        return this.read(req.fh, req.offset, req.size, u, origin);
      case 'readdir':
        return this.readdir(req.offset, req.size, u, origin);
      case 'readdirplus':
        // Not offered at INIT (DO_READDIRPLUS): a kernel that sends it anyway gets ENOSYS and falls back.
        return this.refuse(origin, u, FuseErrno.ENOSYS);
      case 'write':
        return this.write(req.fh, req.offset, req.data, u, origin);
      case 'fsync':
        return this.withFile(req.fh, u, origin, async (e) => this.volume.fsync(e), () => encodeOk(u));
      case 'statfs': {
        const s = this.volume.statfs();
        return this.answer(origin, encodeStatfs(u, { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, namelen: s.namelen, frsize: s.frsize }));
      }
      case 'fallocate':
        return this.withFile(req.fh, u, origin, (e) => this.volume.fallocate(e, Number(req.offset), Number(req.length), req.mode), () => encodeOk(u));
      case 'lseek': {
        if (req.whence !== SeekWhence.DATA && req.whence !== SeekWhence.HOLE) return this.refuse(origin, u, FuseErrno.EINVAL);
        const whence = req.whence === SeekWhence.DATA ? 'data' : 'hole';
        return this.withFile(req.fh, u, origin, (e) => this.volume.seek(e, Number(req.offset), whence), (pos) => encodeLseek(u, pos));
      }
      case 'other':
        return this.refuse(origin, u, refusalOf(req.code));
    }
  }

  private init(req: FuseInitRequest, origin: Origin): undefined {
    const u = req.header.unique;
    if (req.major !== 7 || req.minor < FUSE_MIN_SUPPORTED_MINOR) {
      this.rejectReady(new Error(`the kernel speaks FUSE ${req.major}.${req.minor}; lunkit needs 7.${FUSE_MIN_SUPPORTED_MINOR} or later`));
      return this.refuse(origin, u, FuseErrno.EPROTO);
    }
    const flags = req.flags & WANTED_FLAGS;
    this.answer(
      origin,
      encodeInitReply({
        unique: u,
        major: 7,
        minor: Math.min(req.minor, OUR_MINOR),
        maxReadahead: Math.min(req.maxReadahead, FUSE_MAX_IO),
        flags,
        flags2: 0,
        // Background (readahead, async direct I/O) requests the kernel keeps in flight.
        maxBackground: 64,
        congestionThreshold: 48,
        maxWrite: FUSE_MAX_IO,
        timeGran: 1,
        maxPages: FUSE_MAX_IO / 4096,
        mapAlignment: 0,
      }),
    );
    this.initDone = true;
    this.opts.logger.debug('FUSE INIT', { kernel: `${req.major}.${req.minor}`, flags: flags.toString(16) });
    this.resolveReady();
    return undefined;
  }

  private node(nodeid: bigint): Entry | undefined {
    return nodeid === 1n ? undefined : this.volume.byInode(Number(nodeid));
  }

  private attrOfNode(nodeid: bigint, fh: bigint | undefined): VolumeAttr | undefined {
    if (nodeid === 1n) return this.volume.rootAttr();
    const e = (fh !== undefined ? this.volume.handle(Number(fh)) : undefined) ?? this.node(nodeid);
    return e && !e.removed ? this.volume.attrOf(e) : undefined;
  }

  private setattr(req: Extract<FuseRequest, { opcode: 'setattr' }>, origin: Origin): undefined {
    const u = req.header.unique;
    if (req.header.nodeid === 1n) {
      if (req.valid & (FuseSetattrValid.MODE | FuseSetattrValid.UID | FuseSetattrValid.GID | FuseSetattrValid.SIZE)) return this.refuse(origin, u, FuseErrno.EPERM);
      return this.answer(origin, encodeAttr(u, { attrValid: ATTR_VALID_S, attr: fuseAttr(this.volume.rootAttr()) }));
    }
    const e = ((req.valid & FuseSetattrValid.FH) !== 0 ? this.volume.handle(Number(req.fh)) : undefined) ?? this.node(req.header.nodeid);
    if (!e || e.removed) return this.refuse(origin, u, FuseErrno.ENOENT);
    if (req.valid & (FuseSetattrValid.MODE | FuseSetattrValid.UID | FuseSetattrValid.GID)) return this.refuse(origin, u, FuseErrno.EPERM);
    if (req.valid & FuseSetattrValid.SIZE) {
      const r = this.volume.truncate(e, Number(req.size));
      if (r < 0) return this.refuse(origin, u, -r);
    }
    // Timestamps are not stored; accepting them lets touch(1) and cp -p work.
    return this.answer(origin, encodeAttr(u, { attrValid: ATTR_VALID_S, attr: fuseAttr(this.volume.attrOf(e)) }));
  }

  /** Runs an operation on an open file; its result (>= 0) becomes the reply, a negative errno an error. */
  private withFile(fh: bigint, u: bigint, origin: Origin, op: (e: Entry) => Promise<number>, ok: (r: number) => Buffer): Promise<void> | undefined {
    const e = this.volume.handle(Number(fh));
    if (!e || e.removed) return this.refuse(origin, u, FuseErrno.EIO);
    origin.release();
    return op(e).then((r) => this.send(origin, r < 0 ? this.errorReply(u, -r) : ok(r)));
  }

  private errorReply(u: bigint, errno: number): Buffer {
    this.counters.refused++;
    return encodeError(u, errno > 0 && errno < 512 ? errno : FuseErrno.EIO);
  }

  private read(fh: bigint, offset: bigint, size: number, u: bigint, origin: Origin): Promise<void> | undefined {
    const e = this.volume.handle(Number(fh));
    if (!e || e.removed) return this.refuse(origin, u, FuseErrno.EIO);
    origin.release();
    const buf = this.readBuffers.pop() ?? Buffer.allocUnsafe(FUSE_MAX_IO);
    const want = Math.min(size, buf.length);
    return this.volume.read(e, buf, want, Number(offset)).then(
      (n) => {
        // A failed read's buffer is dropped, not reused: its backstore might still write into it.
        if (n < 0) return this.send(origin, this.errorReply(u, -n));
        // The reply is written synchronously: the header and buffer are free again right after.
        replyHeader(this.header, 16 + n, 0, u);
        this.opts.reply(origin.fdIndex, n > 0 ? [this.header, buf.subarray(0, n)] : [this.header]);
        if (this.readBuffers.length < MAX_POOLED_READ_BUFFERS) this.readBuffers.push(buf);
      },
    );
  }

  private write(fh: bigint, offset: bigint, data: Buffer, u: bigint, origin: Origin): Promise<void> | undefined {
    const e = this.volume.handle(Number(fh));
    if (!e || e.removed) return this.refuse(origin, u, FuseErrno.EIO);
    // The data stays in the request buffer until the backstore has it: release after.
    return this.volume.write(e, data, data.length, Number(offset)).then((n) => {
      origin.release();
      this.send(origin, n < 0 ? this.errorReply(u, -n) : encodeWrite(u, n));
    });
  }

  private readdir(offset: bigint, size: number, u: bigint, origin: Origin): undefined {
    const all = [
      { ino: 1, name: '.', type: DirentType.DIR },
      { ino: 1, name: '..', type: DirentType.DIR },
      ...this.volume.entries().map((e) => ({ ino: e.ino, name: e.name, type: DirentType.REG })),
    ];
    const w = new DirentWriter(false, size);
    for (let i = Number(offset); i < all.length; i++) {
      if (!w.add({ ino: all[i].ino, off: i + 1, type: all[i].type, name: all[i].name })) break;
    }
    return this.answer(origin, w.finish(u));
  }
}

/** The directory is fixed: making or removing names is refused as a read-only directory would (not ENOSYS). */
function refusalOf(code: number): number {
  switch (code) {
    case FuseOpcode.MKNOD:
    case FuseOpcode.MKDIR:
    case FuseOpcode.SYMLINK:
    case FuseOpcode.CREATE:
      return FuseErrno.EACCES;
    case FuseOpcode.UNLINK:
    case FuseOpcode.RMDIR:
    case FuseOpcode.RENAME:
    case FuseOpcode.RENAME2:
    case FuseOpcode.LINK:
      return FuseErrno.EPERM;
    default:
      return FuseErrno.ENOSYS;
  }
}

/** The volume's stat fields in the kernel's struct. */
export function fuseAttr(a: VolumeAttr): FuseAttr {
  const sec = Math.floor(a.timeMs / 1000);
  const nsec = (a.timeMs % 1000) * 1e6;
  return {
    ino: a.ino,
    size: a.size,
    blocks: a.blocks,
    atime: sec,
    mtime: sec,
    ctime: sec,
    atimensec: nsec,
    mtimensec: nsec,
    ctimensec: nsec,
    mode: a.mode,
    nlink: a.nlink,
    uid: a.uid,
    gid: a.gid,
    blksize: a.blksize,
  };
}
