// File I/O and ordering helpers for the qcow2 engine: whole-buffer
// pread/pwrite on a raw fd (callback fs API, as the file backstore measured
// cheaper than FileHandle), a coalescing fdatasync, a mutex and a keyed lock.
//
// On a memory file system (tmpfs, ramfs) the I/O runs on the event loop
// instead (`sync`), as the file backstore's syncIo does: its data never waits
// for a device, and handing a 64 KiB copy to a pool thread costs more than the
// copy (the pool hop showed as 20% of the event loop's time in fs.write's
// binding, profiled with fio over NBD). Requests above SYNC_IO_MAX_BYTES still
// go to the pool so one large request cannot stall every connection for long.

import fs from 'node:fs';
import { markSyncFailure } from '../../core/errno.js';

/** Larger transfers go to the thread pool even when `sync` (as the file backstore). */
export const SYNC_IO_MAX_BYTES = 1 << 20;

const RESOLVED: Promise<void> = Promise.resolve();

/** statfs f_type of memory file systems (linux/magic.h). */
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** True when `path` lives on tmpfs or ramfs (false when unknown): its I/O may run on the event loop. */
export function onMemoryFileSystem(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    fs.statfs(path, (err, st) => resolve(!err && (st.type === TMPFS_MAGIC || st.type === RAMFS_MAGIC)));
  });
}

/**
 * Read exactly buf.length bytes at pos; bytes past the end of the file read as
 * zeroes. `sync`: on the event loop (memory file systems), still returning a promise.
 */
export function preadFull(fd: number, buf: Buffer, pos: number, sync = false): Promise<void> {
  if (!sync || buf.length > SYNC_IO_MAX_BYTES) return preadPool(fd, buf, pos);
  try {
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, pos + done);
      if (n === 0) {
        buf.fill(0, done);
        break;
      }
      done += n;
    }
    return RESOLVED;
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

async function preadPool(fd: number, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(fd, buf, done, buf.length - done, pos + done, (err, got) => (err ? reject(err) : resolve(got)));
    });
    if (n === 0) {
      buf.fill(0, done);
      return;
    }
    done += n;
  }
}

/** Write all of buf at pos. `sync`: on the event loop (memory file systems), still returning a promise. */
export function pwriteFull(fd: number, buf: Buffer, pos: number, sync = false): Promise<void> {
  if (!sync || buf.length > SYNC_IO_MAX_BYTES) return pwritePool(fd, buf, pos);
  try {
    let done = 0;
    while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
    return RESOLVED;
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

async function pwritePool(fd: number, buf: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    done += await new Promise<number>((resolve, reject) => {
      fs.write(fd, buf, done, buf.length - done, pos + done, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }
}

/**
 * Write the buffers back to back at pos (one pwritev: a new cluster run's
 * copied head, the guest data and its copied tail, without joining them).
 * `sync`: on the event loop (memory file systems).
 */
export function pwritevFull(fd: number, bufs: Buffer[], pos: number, sync = false): Promise<void> {
  if (bufs.length === 1) return pwriteFull(fd, bufs[0], pos, sync);
  let total = 0;
  for (const b of bufs) total += b.length;
  if (!sync || total > SYNC_IO_MAX_BYTES) return pwritevPool(fd, bufs, pos, total);
  try {
    let done = 0;
    let rest = bufs;
    while (done < total) {
      const n = fs.writevSync(fd, rest, pos + done);
      done += n;
      if (done < total) rest = skipBytes(rest, n);
    }
    return RESOLVED;
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

async function pwritevPool(fd: number, bufs: Buffer[], pos: number, total: number): Promise<void> {
  let done = 0;
  let rest = bufs;
  while (done < total) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.writev(fd, rest, pos + done, (err, wrote) => (err ? reject(err) : resolve(wrote)));
    });
    done += n;
    if (done < total) rest = skipBytes(rest, n);
  }
}

/** The buffers after their first n bytes (a short writev). */
function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}

/** fdatasync; `sync`: on the event loop (a memory file system has nothing to write back). */
export function fdatasync(fd: number, sync = false): Promise<void> {
  // Failures are marked: the LU latches them like a failed flush (core/io-guard.ts).
  if (sync) {
    try {
      fs.fdatasyncSync(fd);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(markSyncFailure(err as Error));
    }
  }
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(markSyncFailure(err)) : resolve())));
}

export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st.size))));
}

/** `mode` applies only when O_CREAT creates the file: images and overlays are the owner's alone (0600). */
export function openFd(path: string, flags: number, mode = 0o600): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/**
 * fdatasync with coalescing: sync() resolves once an fdatasync that started
 * after the call has completed, so it covers every write completed before the
 * call. Callers that arrive while one runs share the next one.
 */
export class Syncer {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;

  /** `before` runs ahead of each fdatasync (the refcount updates waiting to be written). */
  constructor(
    private readonly fd: () => number,
    private readonly before: () => Promise<void> = () => Promise.resolve(),
    /** fdatasync on the event loop (io.ts: memory file systems). */
    private readonly syncIo = false,
  ) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    if (!this.next) {
      this.next = this.running.then(
        () => this.startQueued(),
        () => this.startQueued(),
      );
    }
    return this.next;
  }

  private startQueued(): Promise<void> {
    this.next = undefined;
    return this.start();
  }

  private start(): Promise<void> {
    const p = this.before()
      .then(() => fdatasync(this.fd(), this.syncIo))
      .finally(() => {
        if (this.running === p) this.running = undefined;
      });
    this.running = p;
    return p;
  }
}

/** A FIFO mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Run fn alone; later callers wait for it. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** One mutex per key, dropped when idle (the per-guest-cluster allocation lock). */
export class KeyedLock {
  private readonly tails = new Map<number, Promise<void>>();

  async run<T>(key: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /**
   * Run fn holding keys first .. first+count-1, taken in ascending order (so
   * two such callers never wait for each other in a cycle).
   */
  runMany<T>(first: number, count: number, fn: () => Promise<T>): Promise<T> {
    if (count <= 1) return this.run(first, fn);
    return this.run(first, () => this.runMany(first + 1, count - 1, fn));
  }

  /** True when some caller holds or waits for the key. */
  busy(key: number): boolean {
    return this.tails.has(key);
  }
}
