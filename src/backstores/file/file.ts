// The file backstore: a regular file (sparse by default) or a block device.
//
// I/O goes straight to a raw fd with fs.read/fs.write at explicit positions
// (pread/pwrite on libuv's thread pool), so any number of commands can be in
// flight; the pool size is set by bin/lunkit.js (one thread per core by
// default, measured best for cached data on small machines). A raw fd with
// callback calls was measured cheaper than fs.promises FileHandle (see
// README.md), which allocates a promise and a request wrapper per call.
//
// A file on a memory file system (tmpfs, ramfs) is read and written on the
// event loop instead (syncIo): its data never waits for a device, and handing
// a 4 KiB copy to a pool thread costs more than the copy. Measured with
// bench/nbd (fio over NBD, 2 cores): server CPU per request went from 36 to
// 17 us (4 KiB random read), 65 to 20 us (4 KiB random write) and about 235 to
// 200 us (128 KiB sequential read); see bench/README.md. Requests above
// SYNC_IO_MAX_BYTES still go to the pool so one large request cannot stall
// every connection for long.
//
// Thin provisioning uses the optional native addon: PUNCH_HOLE for UNMAP,
// ZERO_RANGE for zeroing, SEEK_DATA/SEEK_HOLE for GET LBA STATUS. Without the
// addon the backstore still works: it writes zeroes and reports the whole
// medium as mapped.

import fs from 'node:fs';
import type { BackstoreCaps, BackstoreOps, Extent } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import { markSyncFailure } from '../../core/errno.js';
import { hideUncappedMethods } from '../caps.js';
import { checkGeometry } from '../geometry.js';
import { nativeFileOps, type NativeFileOps } from './native.js';

export interface FileBackstoreOptions {
  name: string;
  /** Regular file or block device. */
  path: string;
  /** Size in bytes (multiple of blockSize). Required to create a file; default: the file's size. */
  size?: number;
  /** Create the file when it does not exist (default true when size is given). */
  create?: boolean;
  /** Keep the file sparse (default true); false preallocates the whole size. */
  sparse?: boolean;
  /** Write cache (default true). false: every write is followed by fdatasync. */
  writeCache?: boolean;
  /** Open read-only. A file that cannot be opened for writing is opened read-only anyway. */
  readOnly?: boolean;
  blockSize: 512 | 4096;
  /**
   * Read and write (up to SYNC_IO_MAX_BYTES per request) on the event loop
   * rather than libuv's pool. Default: on for a regular file on tmpfs/ramfs.
   */
  syncIo?: boolean;
}

/** Larger requests go to the thread pool even with syncIo (about 0.1 ms of copying). */
export const SYNC_IO_MAX_BYTES = 1 << 20;

/** statfs f_type of memory file systems (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** True when `path` lives on tmpfs or ramfs (false when unknown). */
export function onMemoryFileSystem(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    fs.statfs(path, (err, st) => resolve(!err && (st.type === TMPFS_MAGIC || st.type === RAMFS_MAGIC)));
  });
}

/** Zero source for the zero-writing fallbacks; never written to. */
const ZERO_CHUNK = Buffer.alloc(1 << 20);

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function unsupported(err: unknown): boolean {
  const code = errCode(err);
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EINVAL';
}

// Promise wrappers over the callback API (no FileHandle: see the header).
function pread(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function pwrite(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** A failure is marked as a sync failure: the LU latches it (core/io-guard.ts, "fsyncgate"). */
function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fdatasync(fd, (err) => (err ? reject(markSyncFailure(err)) : resolve()));
  });
}

// 0600: a LUN's data is the initiator's, not every local user's (issue 17);
// the mode only applies when O_CREAT creates the file (thin or thick alike).
function openFd(path: string, flags: number, mode = 0o600): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
}

function fstat(fd: number): Promise<fs.Stats> {
  return new Promise((resolve, reject) => {
    fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st)));
  });
}

function ftruncate(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.ftruncate(fd, len, (err) => (err ? reject(err) : resolve()));
  });
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.close(fd, (err) => (err ? reject(err) : resolve()));
  });
}

export class FileBackstore implements BackstoreOps {
  readonly kind = 'file';
  readonly name: string;
  readonly path: string;
  readonly blockSize: 512 | 4096;
  readonly caps: BackstoreCaps;
  readonly isBlockDevice: boolean;
  readonly writeCache: boolean;
  /** Reads and writes up to SYNC_IO_MAX_BYTES run on the event loop (see the header). */
  readonly syncIo: boolean;
  private _size: number;
  private fd: number;
  private readonly native: NativeFileOps | undefined;
  /** Set after the file system refused PUNCH_HOLE / ZERO_RANGE once. */
  private punchUnsupported = false;
  private zeroRangeUnsupported = false;
  private closed = false;

  private constructor(
    opts: FileBackstoreOptions,
    fd: number,
    size: number,
    isBlockDevice: boolean,
    writable: boolean,
    native: NativeFileOps | undefined,
    syncIo: boolean,
  ) {
    this.syncIo = syncIo;
    this.name = opts.name;
    this.path = opts.path;
    this.blockSize = opts.blockSize;
    this.fd = fd;
    this._size = size;
    this.isBlockDevice = isBlockDevice;
    this.native = native;
    this.writeCache = opts.writeCache ?? true;
    const sparse = opts.sparse ?? true;
    this.caps = Object.freeze({
      canWrite: writable,
      canFlush: true,
      canFua: true,
      canUnmap: writable && native !== undefined,
      canWriteZeroes: writable,
      canExtents: !isBlockDevice && native !== undefined,
      unmapReadsZero: true,
      thin: writable && sparse && !isBlockDevice && native !== undefined,
      // Unknown for a file: 0 = "not reported" in VPD 0xB1.
      rotationRate: 0,
      // One fd in this process: fdatasync covers every write made through it.
      canMultiConn: true,
    });
    // A read-only file offers no unmap or writeZeroes; no addon, no extents (caps.ts).
    hideUncappedMethods(this);
  }

  /** Open (and if needed create) the file or device. */
  static async open(opts: FileBackstoreOptions): Promise<FileBackstore> {
    const native = nativeFileOps();
    const create = opts.create ?? opts.size !== undefined;
    let writable = !opts.readOnly;
    let fd: number;
    if (!writable) {
      fd = await openFd(opts.path, fs.constants.O_RDONLY);
    } else {
      try {
        fd = await openFd(opts.path, fs.constants.O_RDWR | (create ? fs.constants.O_CREAT : 0));
      } catch (err) {
        const code = errCode(err);
        if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw err;
        fd = await openFd(opts.path, fs.constants.O_RDONLY);
        writable = false;
      }
    }
    try {
      const st = await fstat(fd);
      const isBlockDevice = st.isBlockDevice();
      if (!isBlockDevice && !st.isFile()) {
        throw new LunkitError('EINVAL', `${opts.path} is neither a regular file nor a block device`);
      }
      let size: number;
      if (isBlockDevice) {
        const devSize = native ? await native.lseek(fd, 0, native.SEEK_END) : undefined;
        size = opts.size ?? devSize ?? 0;
        if (devSize !== undefined && size > devSize) {
          throw new LunkitError('EINVAL', `size ${size} exceeds the device size ${devSize}`);
        }
      } else {
        size = opts.size ?? st.size - (st.size % opts.blockSize);
        if (st.size < size) {
          if (!writable) {
            throw new LunkitError('EROFS', `${opts.path} is smaller than ${size} bytes and read-only`);
          }
          await ftruncate(fd, size);
        }
        if (opts.sparse === false && writable && native) {
          // Preallocate; a file system without fallocate stays sparse.
          await native.fallocate(fd, 0, 0, size).catch((err: unknown) => {
            if (!unsupported(err)) throw err;
          });
        }
      }
      checkGeometry(size, opts.blockSize);
      // A block device is never memory-backed here (devtmpfs reports TMPFS_MAGIC for /dev).
      const syncIo = opts.syncIo ?? (!isBlockDevice && (await onMemoryFileSystem(opts.path)));
      return new FileBackstore(opts, fd, size, isBlockDevice, writable, native, syncIo);
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  get size(): number {
    return this._size;
  }

  async read(buf: Buffer, offset: number): Promise<void> {
    const sync = this.syncIo && buf.length <= SYNC_IO_MAX_BYTES;
    let done = 0;
    while (done < buf.length) {
      // A thrown fs error rejects this async function, like the callback path.
      const n = sync
        ? fs.readSync(this.fd, buf, done, buf.length - done, offset + done)
        : await pread(this.fd, buf, done, buf.length - done, offset + done);
      if (n === 0) {
        // Past the end of a file shorter than the LU: reads as zeroes.
        buf.fill(0, done);
        return;
      }
      done += n;
    }
  }

  async write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    const sync = this.syncIo && buf.length <= SYNC_IO_MAX_BYTES;
    let done = 0;
    while (done < buf.length) {
      done += sync
        ? fs.writeSync(this.fd, buf, done, buf.length - done, offset + done)
        : await pwrite(this.fd, buf, done, buf.length - done, offset + done);
    }
    if (opts?.fua || !this.writeCache) await fdatasync(this.fd);
  }

  flush(): Promise<void> {
    return fdatasync(this.fd);
  }

  /**
   * Deallocate (punch a hole); reads return zeroes afterwards either way.
   * Present when caps.canUnmap: writable, native addon loaded.
   */
  unmap(offset: number, length: number): Promise<void> {
    return this.punch(offset, length);
  }

  /** Present when caps.canWriteZeroes: writable. */
  async writeZeroes(offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void> {
    if (length > 0) {
      if (opts?.mayUnmap) await this.punch(offset, length);
      else await this.zeroAllocated(offset, length);
    }
    if (opts?.fua || !this.writeCache) await fdatasync(this.fd);
  }

  /** Present when caps.canExtents: a regular file, native addon loaded (SEEK_DATA/SEEK_HOLE). */
  async extents(offset: number, length: number): Promise<Extent[]> {
    const end = offset + length;
    const n = this.native;
    if (!n || this.isBlockDevice || length === 0) return length === 0 ? [] : [{ offset, length, hole: false }];
    const out: Extent[] = [];
    const push = (from: number, to: number, hole: boolean): void => {
      if (to <= from) return;
      const last = out[out.length - 1];
      if (last && last.hole === hole && last.offset + last.length === from) last.length += to - from;
      else out.push({ offset: from, length: to - from, hole });
    };
    let pos = offset;
    while (pos < end) {
      let data: number;
      try {
        data = await n.lseek(this.fd, pos, n.SEEK_DATA);
      } catch (err) {
        // ENXIO: no data at or after pos (also past the end of the file).
        if (errCode(err) === 'ENXIO') {
          push(pos, end, true);
          break;
        }
        if (!unsupported(err)) throw err;
        push(pos, end, false);
        break;
      }
      push(pos, Math.min(data, end), true);
      if (data >= end) break;
      const hole = await n.lseek(this.fd, data, n.SEEK_HOLE);
      push(data, Math.min(hole, end), false);
      pos = hole;
    }
    return out;
  }

  /** Behind `unmap`, and `writeZeroes` when it may deallocate. */
  private async punch(offset: number, length: number): Promise<void> {
    if (length === 0) return;
    if (this.native && !this.punchUnsupported) {
      const n = this.native;
      try {
        await n.fallocate(this.fd, n.FALLOC_FL_PUNCH_HOLE | n.FALLOC_FL_KEEP_SIZE, offset, length);
        return;
      } catch (err) {
        if (!unsupported(err)) throw err;
        this.punchUnsupported = true;
      }
    }
    await this.writeZeroChunks(offset, length);
  }

  async resize(size: number): Promise<void> {
    checkGeometry(size, this.blockSize);
    if (this.isBlockDevice) {
      throw new LunkitError('EINVAL', 'a block device backstore cannot be resized');
    }
    await ftruncate(this.fd, size);
    this._size = size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.caps.canWrite) await fdatasync(this.fd);
    } finally {
      await closeFd(this.fd);
      this.fd = -1;
    }
  }

  /** Zero a range and keep it allocated (SBC-3 mapped/anchored). */
  private async zeroAllocated(offset: number, length: number): Promise<void> {
    const n = this.native;
    if (n && !this.zeroRangeUnsupported) {
      try {
        await n.fallocate(this.fd, n.FALLOC_FL_ZERO_RANGE | n.FALLOC_FL_KEEP_SIZE, offset, length);
        return;
      } catch (err) {
        if (!unsupported(err)) throw err;
        this.zeroRangeUnsupported = true;
      }
    }
    if (n && !this.punchUnsupported && !this.isBlockDevice) {
      // tmpfs has no ZERO_RANGE: punch, then allocate again; the caller holds
      // the LBA range lock, so nobody sees the gap.
      let punched = false;
      try {
        await n.fallocate(this.fd, n.FALLOC_FL_PUNCH_HOLE | n.FALLOC_FL_KEEP_SIZE, offset, length);
        punched = true;
      } catch (err) {
        if (!unsupported(err)) throw err;
        this.punchUnsupported = true;
      }
      if (punched) {
        // Reallocation is best effort: the range already reads as zeroes.
        await n.fallocate(this.fd, n.FALLOC_FL_KEEP_SIZE, offset, length).catch((err: unknown) => {
          if (!unsupported(err)) throw err;
        });
        return;
      }
    }
    await this.writeZeroChunks(offset, length);
  }

  private async writeZeroChunks(offset: number, length: number): Promise<void> {
    let done = 0;
    while (done < length) {
      const len = Math.min(ZERO_CHUNK.length, length - done);
      done += await pwrite(this.fd, ZERO_CHUNK, 0, len, offset + done);
    }
  }
}
