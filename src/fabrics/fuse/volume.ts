// The file system a FUSE mount shows: one flat directory in which every
// export is a regular file of its LUN's size. Every read, write and fsync on
// such a file is a block operation on this mount's one nexus through the
// core's block door (core/block-nexus.ts), so reservations, write protection
// and statistics apply as they do over iSCSI and NBD; a failure comes back as
// a reason that the one map (core/errno.ts) turns into the errno the kernel
// hands to the program. Size and protection are read from the door's
// geometry, so a resized LU shows its new size at the next stat.
//
// Kept apart from the kernel session (kernel/session.ts) so the handlers are
// unit-tested with a fake core and no kernel mount.

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
export type FuseBlockDoor = Pick<BlockNexus, 'nexus' | 'geometry' | 'read' | 'write' | 'flush' | 'trim' | 'zeroes' | 'extents'>;

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
/** fallocate(2) modes (include/uapi/linux/falloc.h). */
const FALLOC_KEEP_SIZE = 0x01;
const FALLOC_PUNCH_HOLE = 0x02;
const FALLOC_ZERO_RANGE = 0x10;

/** An export's file (or the directory) as stat(2) shows it. */
export interface VolumeAttr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  blksize: number;
  /** atime = mtime = ctime: when the export appeared (timestamps are not stored). */
  timeMs: number;
}

export interface VolumeStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
}

export interface ExportOptions {
  device: ScsiDeviceHandle;
  /** Mapped read-only for this mount (file mode 0400, writes fail with EROFS). */
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

/** One export's state (the session holds these by node id). */
export interface Entry {
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
   * so the backstore reads straight into the FUSE reply buffer (no
   * allocation and no copy per READ; docs/fuse.md "Performance"). The
   * session reuses that buffer only after a successful read (a failed one
   * might still be written late by its backstore).
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

  // --- What the kernel session (kernel/session.ts) asks -----------------------------

  /** The live export named `name` in the mount's one directory. */
  lookup(name: string): Entry | undefined {
    return this.byName.get(name);
  }

  /** The live export whose inode number is `ino` (the FUSE node id; 1 is the directory). */
  byInode(ino: number): Entry | undefined {
    for (const e of this.byName.values()) if (e.ino === ino) return e;
    return undefined;
  }

  /** Every live export, in the order they were added. */
  entries(): Entry[] {
    return [...this.byName.values()];
  }

  /** What stat(2) shows for an export's file. */
  attrOf(e: Entry): VolumeAttr {
    this.refresh(e);
    const ro = this.isReadOnly(e);
    return {
      ino: e.ino,
      // The mounting user's alone (issue 17): with allow_other the kernel
      // checks these bits (the mount has default_permissions), so another
      // local user cannot open a LUN at all; read-only has no write bit.
      mode: 0o100000 | (ro ? 0o400 : 0o600),
      nlink: 1,
      uid: this.uid,
      gid: this.gid,
      size: e.size,
      blocks: Math.ceil(e.size / 512),
      blksize: Math.max(4096, e.blockSize),
      timeMs: e.ctime.getTime(),
    };
  }

  /** What stat(2) shows for the mount's directory. */
  rootAttr(): VolumeAttr {
    return { ino: 1, mode: 0o040755, nlink: 2, uid: this.uid, gid: this.gid, size: 4096, blocks: 8, blksize: 4096, timeMs: this.started.getTime() };
  }

  /** open(2): a handle number, or a negative errno (EROFS for writing a read-only file). */
  open(e: Entry, flags: number): number {
    if ((flags & O_ACCMODE) !== O_RDONLY && this.isReadOnly(e)) return -Errno.EROFS;
    const fh = this.nextFh;
    this.nextFh = (this.nextFh % 0x7ffffff0) + 1;
    this.handles.set(fh, e);
    return fh;
  }

  /** The export an open handle refers to (also after deleteExport: then `removed`). */
  handle(fh: number): Entry | undefined {
    return this.handles.get(fh);
  }

  release(fh: number): void {
    this.handles.delete(fh);
  }

  /** A LUN's size is fixed: truncating to its current size is a no-op (dd, cp), anything else EPERM. */
  truncate(e: Entry, size: number): number {
    if (e.removed) return -Errno.ENOENT;
    this.refresh(e);
    if (size === e.size) return 0;
    return this.isReadOnly(e) ? -Errno.EROFS : -Errno.EPERM;
  }

  /**
   * fallocate(2): PUNCH_HOLE (with KEEP_SIZE) deallocates through the door
   * (a thin backstore frees the space; advisory on a thick one), ZERO_RANGE
   * writes zeroes (deallocating where the LU reads holes as zeroes), mode 0
   * inside the file succeeds (a LU is allocated as its backstore decides).
   */
  async fallocate(e: Entry, offset: number, length: number, mode: number): Promise<number> {
    this.refresh(e);
    if (e.removed) return -Errno.EIO;
    const punch = (mode & FALLOC_PUNCH_HOLE) !== 0;
    const zero = (mode & FALLOC_ZERO_RANGE) !== 0;
    if ((mode & ~(FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE | FALLOC_ZERO_RANGE)) !== 0 || (punch && zero)) return -Errno.EOPNOTSUPP;
    if (punch && (mode & FALLOC_KEEP_SIZE) === 0) return -Errno.EOPNOTSUPP;
    if (offset + length > e.size) return (mode & FALLOC_KEEP_SIZE) !== 0 && offset < e.size ? this.fallocate(e, offset, e.size - offset, mode) : -Errno.EFBIG;
    if (!punch && !zero) return 0;
    if (this.isReadOnly(e)) return -Errno.EROFS;
    // The door works in whole blocks: the partial edges of a punch stay
    // allocated (as on most file systems); zeroing writes them.
    const bs = e.blockSize;
    const a0 = Math.ceil(offset / bs) * bs;
    const a1 = Math.floor((offset + length) / bs) * bs;
    if (zero) {
      const head = Math.min(a0, offset + length) - offset;
      if (head > 0 && (await this.write(e, Buffer.alloc(head), head, offset)) < 0) return -Errno.EIO;
      if (a1 > a0) {
        const f = await this.blocks.zeroes(e.lun, a0, a1 - a0, { mayTrim: true });
        if (f !== undefined) return -this.errno(f, true);
      }
      const tail = offset + length - Math.max(a1, a0);
      if (tail > 0 && a1 >= a0 && (await this.write(e, Buffer.alloc(tail), tail, Math.max(a1, a0))) < 0) return -Errno.EIO;
      return 0;
    }
    if (a1 <= a0) return 0;
    const f = await this.blocks.trim(e.lun, a0, a1 - a0);
    return f === undefined ? 0 : -this.errno(f, true);
  }

  /**
   * lseek(2) SEEK_DATA / SEEK_HOLE from the LU's extents (GET LBA STATUS):
   * the offset found, or -ENXIO past the last data (SEEK_DATA) or past the end.
   */
  async seek(e: Entry, offset: number, whence: 'data' | 'hole'): Promise<number> {
    this.refresh(e);
    if (offset >= e.size) return -Errno.ENXIO;
    let pos = offset - (offset % e.blockSize);
    while (pos < e.size) {
      const ext = await this.blocks.extents(e.lun, pos, e.size - pos);
      if (typeof ext === 'string') return -this.errno(ext, false);
      if (ext.length === 0) break;
      for (const x of ext) {
        const end = Math.min(x.offset + x.length, e.size);
        if (end <= offset) continue;
        if (x.hole === (whence === 'hole')) return Math.max(offset, x.offset);
      }
      const last = ext[ext.length - 1];
      const next = last.offset + last.length;
      if (next <= pos) break;
      pos = next;
    }
    // Every file ends in an implicit hole (lseek(2)).
    return whence === 'hole' ? e.size : -Errno.ENXIO;
  }

  statfs(): VolumeStatfs {
    let total = 0;
    for (const e of this.byName.values()) total += e.size;
    return { bsize: 4096, frsize: 4096, blocks: Math.ceil(total / 4096), bfree: 0, bavail: 0, files: this.byName.size + 1, ffree: 0, namelen: 255 };
  }
}
