// The file system a FUSE mount shows: one flat directory in which every
// export is a regular file of its LUN's size. Every read, write and fsync on
// such a file is a block operation on this mount's one nexus through the
// core's block door (core/block-nexus.ts), so reservations, write protection
// and statistics apply as they do over iSCSI and NBD; a failure comes back as
// a reason that the one map (core/errno.ts) turns into the errno the kernel
// hands to the program. Size and protection are read from the door's
// geometry, so a resized LU shows its new size at the next stat.
//
// Kept apart from the fuse-native binding so the handlers are unit-tested
// with a fake core and no kernel mount.

import type { FuseOps, FuseStat, FuseStatfs } from 'fuse-native';
import {
  Errno,
  reasonToErrno,
  type BlockFailure,
  type BlockNexus,
  type FabricOps,
  type LunMap,
  type LunMapping,
  type NexusHandle,
  type NexusIdentity,
  type ScsiDeviceHandle,
} from '../../core/index.js';
import { LunkitError } from '../../protocols/errors.js';

/** The block door operations a mount uses (BlockNexus satisfies it). */
export type FuseBlockDoor = Pick<BlockNexus, 'nexus' | 'geometry' | 'read' | 'write' | 'flush'>;

/** What the fabric needs of the SCSI core (ScsiCore satisfies it). */
export interface FuseCore {
  openBlockNexus(identity: NexusIdentity, fabric: FabricOps): FuseBlockDoor;
  closeNexus(nexus: NexusHandle): void;
}

/** SPC-4 table 444: 0x0f "no specific protocol"; FUSE has no identifier of its own. */
export const FUSE_PROTOCOL_ID = 0x0f;

/** Split very large requests well below the core's 32 MiB MAXIMUM TRANSFER LENGTH. */
const MAX_CHUNK = 8 * 1024 * 1024;
const O_ACCMODE = 3;
const O_RDONLY = 0;

export interface ExportOptions {
  device: ScsiDeviceHandle;
  /** Mapped read-only for this mount (file mode 0444, writes fail with EROFS). */
  readOnly?: boolean;
}

/** A snapshot of one export as `list()` reports it. */
export interface ExportInfo {
  name: string;
  lun: number;
  device: string;
  size: number;
  blockSize: number;
  readOnly: boolean;
}

/** Per-mount I/O counters (bytes and operations as the kernel asked for them). */
export interface FuseStats {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  syncs: number;
  errors: number;
}

interface Entry {
  name: string;
  lun: number;
  mapping: LunMapping;
  size: number;
  blockSize: number;
  /** The LU itself reports WP in MODE SENSE (a read-only backstore). */
  writeProtected: boolean;
  ino: number;
  ctime: Date;
  removed: boolean;
  /** Serialises read-modify-write of partial blocks (unaligned direct I/O). */
  rmw: Promise<void>;
}

/** Throws unless name can be a file name in the mount's directory. */
export function validateExportName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..' || /[/\0]/.test(name) || Buffer.byteLength(name) > 255) {
    throw new LunkitError('ERR_FUSE_BAD_NAME', `invalid FUSE export name ${JSON.stringify(name)}: a file name without "/"`);
  }
}

export interface VolumeOptions {
  /** Owner of the directory and files (default: this process's uid/gid). */
  uid?: number;
  gid?: number;
}

export class FuseVolume implements LunMap {
  readonly nexus: NexusHandle;
  private readonly blocks: FuseBlockDoor;
  readonly stats: FuseStats = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, syncs: 0, errors: 0 };
  private readonly byName = new Map<string, Entry>();
  private readonly byLun = new Map<number, Entry>();
  private readonly handles = new Map<number, Entry>();
  private nextFh = 1;
  private nextIno = 2;
  private readonly uid: number;
  private readonly gid: number;
  private readonly started = new Date();

  constructor(
    private readonly core: FuseCore,
    identity: Omit<NexusIdentity, 'luns'>,
    fabric: FabricOps,
    opts: VolumeOptions = {},
  ) {
    this.uid = opts.uid ?? process.getuid?.() ?? 0;
    this.gid = opts.gid ?? process.getgid?.() ?? 0;
    this.blocks = core.openBlockNexus({ ...identity, luns: this }, fabric);
    this.nexus = this.blocks.nexus;
  }

  // --- LunMap (the nexus's view of the exports) ----------------------------------

  get(lun: number): LunMapping | undefined {
    return this.byLun.get(lun)?.mapping;
  }

  list(): number[] {
    return [...this.byLun.keys()].sort((a, b) => a - b);
  }

  // --- Exports --------------------------------------------------------------------

  /**
   * Adds (or replaces) the file `name` for a device. Reads size, block size
   * and write protection from the door first; the file appears only when the
   * LU has a geometry to offer.
   */
  async setExport(name: string, opts: ExportOptions): Promise<ExportInfo> {
    validateExportName(name);
    const old = this.byName.get(name);
    const lun = old?.lun ?? this.freeLun();
    const entry: Entry = {
      name,
      lun,
      mapping: { device: opts.device, readOnly: opts.readOnly ?? false },
      size: 0,
      blockSize: 512,
      writeProtected: false,
      ino: this.nextIno++,
      ctime: new Date(),
      removed: false,
      rmw: Promise.resolve(),
    };
    // The LUN must be in the map while probing: the core resolves it through us.
    this.byLun.set(lun, entry);
    try {
      this.probe(entry);
    } catch (e) {
      if (old) this.byLun.set(lun, old);
      else this.byLun.delete(lun);
      throw e;
    }
    if (old) old.removed = true;
    this.byName.set(name, entry);
    return this.info(entry);
  }

  /** Removes the file; open handles on it fail with EIO from now on. */
  deleteExport(name: string): boolean {
    const e = this.byName.get(name);
    if (!e) return false;
    e.removed = true;
    this.byName.delete(name);
    this.byLun.delete(e.lun);
    return true;
  }

  exports(): ExportInfo[] {
    return [...this.byName.values()].map((e) => this.info(e));
  }

  close(): void {
    for (const name of [...this.byName.keys()]) this.deleteExport(name);
    this.core.closeNexus(this.nexus);
  }

  private info(e: Entry): ExportInfo {
    return { name: e.name, lun: e.lun, device: e.mapping.device.name, size: e.size, blockSize: e.blockSize, readOnly: this.isReadOnly(e) };
  }

  private freeLun(): number {
    let lun = 0;
    while (this.byLun.has(lun)) lun++;
    return lun;
  }

  private isReadOnly(e: Entry): boolean {
    return e.mapping.readOnly || e.writeProtected;
  }

  /** Reads the LU's geometry into the entry (throws when there is none). */
  private probe(e: Entry): void {
    const geo = this.blocks.geometry(e.lun);
    if (typeof geo === 'string') {
      throw new LunkitError('ERR_FUSE_PROBE', `${e.mapping.device.name} has no geometry to offer: ${geo}`);
    }
    e.size = geo.size;
    e.blockSize = geo.blockSize;
    e.writeProtected = geo.writeProtected && !e.mapping.readOnly;
  }

  /** Size and protection as they are now (a resize or SWP change shows at once). */
  private refresh(e: Entry): void {
    if (e.removed) return;
    const geo = this.blocks.geometry(e.lun);
    if (typeof geo === 'string') return;
    e.size = geo.size;
    e.writeProtected = geo.writeProtected && !e.mapping.readOnly;
  }

  // --- Block I/O in bytes -----------------------------------------------------------

  /**
   * Reads [pos, pos+dst.length) of the LU into dst; pos and length
   * block-aligned. dst is offered to the door as the buffer to read into,
   * so the backstore reads straight into the FUSE reply buffer (no 128 KiB
   * allocation and no copy per READ; docs/fuse.md "Performance"). That is
   * safe past our reply too: fuse-native detaches the buffer when the
   * request is answered, so a late write into it lands nowhere.
   */
  private async readAligned(e: Entry, dst: Buffer, pos: number): Promise<number> {
    for (let done = 0; done < dst.length; ) {
      const n = Math.min(MAX_CHUNK, dst.length - done);
      const into = dst.subarray(done, done + n);
      const res = await this.blocks.read(e.lun, pos + done, n, into);
      if (typeof res === 'string') return this.errno(res, false);
      // The door answers with a view of `into` when it used it; anything else is copied.
      if (res.buffer !== into.buffer || res.byteOffset !== into.byteOffset) res.copy(dst, done, 0, n);
      done += n;
    }
    return 0;
  }

  /** Writes src at pos; pos and length block-aligned. src is handed to the door as is (no copy). */
  private async writeAligned(e: Entry, src: Buffer, pos: number): Promise<number> {
    for (let done = 0; done < src.length; ) {
      const n = Math.min(MAX_CHUNK, src.length - done);
      const failure = await this.blocks.write(e.lun, pos + done, src.subarray(done, done + n));
      if (failure !== undefined) return this.errno(failure, true);
      done += n;
    }
    return 0;
  }

  /** The one reason-to-errno map (core/errno.ts). */
  private errno(failure: BlockFailure, isWrite: boolean): number {
    return reasonToErrno(failure, isWrite);
  }

  /** Returns bytes read (0 at end of file) or a negative errno. */
  async read(e: Entry, buf: Buffer, len: number, pos: number): Promise<number> {
    this.refresh(e);
    if (pos >= e.size || len <= 0) return 0;
    const n = Math.min(len, buf.length, e.size - pos);
    const bs = e.blockSize;
    let errno: number;
    if (pos % bs === 0 && n % bs === 0) {
      errno = await this.readAligned(e, buf.subarray(0, n), pos);
    } else {
      const a0 = pos - (pos % bs);
      const a1 = Math.ceil((pos + n) / bs) * bs;
      const tmp = Buffer.allocUnsafe(a1 - a0);
      errno = await this.readAligned(e, tmp, a0);
      if (errno === 0) tmp.copy(buf, 0, pos - a0, pos - a0 + n);
    }
    if (errno !== 0) {
      this.stats.errors++;
      return -errno;
    }
    this.stats.reads++;
    this.stats.bytesRead += n;
    return n;
  }

  /** Returns bytes written or a negative errno; a fixed-size file never grows (ENOSPC past the end). */
  async write(e: Entry, buf: Buffer, len: number, pos: number): Promise<number> {
    this.refresh(e);
    if (this.isReadOnly(e)) return -Errno.EROFS;
    if (len <= 0) return 0;
    if (pos >= e.size) return -Errno.ENOSPC;
    const n = Math.min(len, buf.length, e.size - pos);
    const bs = e.blockSize;
    let errno: number;
    if (pos % bs === 0 && n % bs === 0) {
      errno = await this.writeAligned(e, buf.subarray(0, n), pos);
    } else {
      // Partial blocks: read-modify-write, one at a time per export so two
      // unaligned writes into the same block cannot lose each other's bytes.
      const prev = e.rmw;
      let release!: () => void;
      e.rmw = new Promise((r) => (release = r));
      await prev;
      try {
        const a0 = pos - (pos % bs);
        const a1 = Math.ceil((pos + n) / bs) * bs;
        const tmp = Buffer.allocUnsafe(a1 - a0);
        errno = 0;
        if (a0 < pos) errno = await this.readAligned(e, tmp.subarray(0, bs), a0);
        // When head and tail are the same block this reads it twice: harmless.
        if (errno === 0 && pos + n < a1) {
          errno = await this.readAligned(e, tmp.subarray(tmp.length - bs), a1 - bs);
        }
        if (errno === 0) {
          buf.copy(tmp, pos - a0, 0, n);
          errno = await this.writeAligned(e, tmp, a0);
        }
      } finally {
        release();
      }
    }
    if (errno !== 0) {
      this.stats.errors++;
      return -errno;
    }
    this.stats.writes++;
    this.stats.bytesWritten += n;
    return n;
  }

  async fsync(e: Entry): Promise<number> {
    const failure = await this.blocks.flush(e.lun);
    const errno = failure === undefined ? 0 : this.errno(failure, true);
    this.stats.syncs++;
    if (errno === 0) return 0;
    this.stats.errors++;
    return -errno;
  }

  // --- The fuse-native operations -------------------------------------------------------

  private entryOf(path: string): Entry | undefined {
    return path.startsWith('/') ? this.byName.get(path.slice(1)) : undefined;
  }

  private statOf(e: Entry): FuseStat {
    this.refresh(e);
    const ro = this.isReadOnly(e);
    return {
      mode: 0o100000 | (ro ? 0o444 : 0o644),
      uid: this.uid,
      gid: this.gid,
      size: e.size,
      nlink: 1,
      ino: e.ino,
      blksize: Math.max(4096, e.blockSize),
      blocks: Math.ceil(e.size / 512),
      atime: e.ctime,
      mtime: e.ctime,
      ctime: e.ctime,
    };
  }

  private rootStat(): FuseStat {
    return {
      mode: 0o040755,
      uid: this.uid,
      gid: this.gid,
      size: 4096,
      nlink: 2,
      ino: 1,
      atime: this.started,
      mtime: this.started,
      ctime: this.started,
    };
  }

  /** Resolves a handle (or, without one, the path) to a live export. */
  private target(path: string, fd: number): Entry | undefined {
    const byFd = fd > 0 ? this.handles.get(fd) : undefined;
    return byFd ?? this.entryOf(path);
  }

  /** The callbacks fuse-native registers with libfuse. Each completes asynchronously; many run at once. */
  ops(): FuseOps {
    const refuse = (code: number) => (...args: unknown[]) => {
      const cb = args[args.length - 1] as (c: number) => void;
      cb(-code);
    };
    const settle = (p: Promise<number>, cb: (r: number) => void): void => {
      p.then(cb, () => {
        this.stats.errors++;
        cb(-Errno.EIO);
      });
    };
    return {
      getattr: (path, cb) => {
        if (path === '/') return cb(0, this.rootStat());
        const e = this.entryOf(path);
        if (!e) return cb(-Errno.ENOENT);
        cb(0, this.statOf(e));
      },
      fgetattr: (path, fd, cb) => {
        if (path === '/') return cb(0, this.rootStat());
        const e = this.target(path, fd);
        if (!e || e.removed) return cb(-Errno.ENOENT);
        cb(0, this.statOf(e));
      },
      readdir: (path, cb) => {
        if (path !== '/') return cb(this.entryOf(path) ? -20 /* ENOTDIR */ : -Errno.ENOENT);
        const entries = [...this.byName.values()];
        cb(0, ['.', '..', ...entries.map((e) => e.name)], [this.rootStat(), this.rootStat(), ...entries.map((e) => this.statOf(e))]);
      },
      open: (path, flags, cb) => {
        if (path === '/') return cb(-Errno.EISDIR);
        const e = this.entryOf(path);
        if (!e) return cb(-Errno.ENOENT);
        if ((flags & O_ACCMODE) !== O_RDONLY && this.isReadOnly(e)) return cb(-Errno.EROFS);
        const fh = this.nextFh;
        this.nextFh = (this.nextFh % 0x7ffffff0) + 1;
        this.handles.set(fh, e);
        cb(0, fh);
      },
      release: (_path, fd, cb) => {
        this.handles.delete(fd);
        cb(0);
      },
      read: (path, fd, buf, len, pos, cb) => {
        const e = this.target(path, fd);
        if (!e || e.removed) return cb(-Errno.EIO);
        settle(this.read(e, buf, len, pos), cb);
      },
      write: (path, fd, buf, len, pos, cb) => {
        const e = this.target(path, fd);
        if (!e || e.removed) return cb(-Errno.EIO);
        settle(this.write(e, buf, len, pos), cb);
      },
      fsync: (path, _datasync, fd, cb) => {
        const e = this.target(path, fd);
        if (!e || e.removed) return cb(-Errno.EIO);
        settle(this.fsync(e), cb);
      },
      // close(2) of one descriptor: data is already in the LU (no fabric cache); fsync is the barrier.
      flush: (_path, _fd, cb) => cb(0),
      statfs: (_path, cb) => cb(0, this.statfs()),
      truncate: (path, size, cb) => cb(this.truncateResult(this.entryOf(path), size)),
      ftruncate: (path, fd, size, cb) => cb(this.truncateResult(this.target(path, fd), size)),
      // Timestamps are not stored; accepting them lets touch(1) and cp -p work.
      utimens: (path, _a, _m, cb) => cb(path === '/' || this.entryOf(path) ? 0 : -Errno.ENOENT),
      chmod: refuse(Errno.EPERM),
      chown: refuse(Errno.EPERM),
      create: refuse(Errno.EACCES),
      mknod: refuse(Errno.EACCES),
      mkdir: refuse(Errno.EACCES),
      unlink: refuse(Errno.EPERM),
      rmdir: refuse(Errno.EPERM),
      rename: refuse(Errno.EPERM),
      link: refuse(Errno.EPERM),
      symlink: refuse(Errno.EACCES),
    };
  }

  /** A LUN's size is fixed: truncating to its current size is a no-op (dd, cp), anything else EPERM. */
  private truncateResult(e: Entry | undefined, size: number): number {
    if (!e || e.removed) return -Errno.ENOENT;
    if (size === e.size) return 0;
    return this.isReadOnly(e) ? -Errno.EROFS : -Errno.EPERM;
  }

  statfs(): FuseStatfs {
    let total = 0;
    for (const e of this.byName.values()) total += e.size;
    return {
      bsize: 4096,
      frsize: 4096,
      blocks: Math.ceil(total / 4096),
      bfree: 0,
      bavail: 0,
      files: this.byName.size + 1,
      ffree: 0,
      favail: 0,
      fsid: 0,
      flag: 0,
      namemax: 255,
    };
  }
}
