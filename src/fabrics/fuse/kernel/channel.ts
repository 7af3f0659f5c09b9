// The /dev/fuse transport of lunkit's own FUSE server (issue 16): mounts,
// hands each kernel request to JS as a view of a reusable buffer, writes
// replies with one writev. What the bytes mean is for src/protocols/fuse and
// the session; this file only moves them.
//
// The work is in the lunkit_native addon, in one of two modes. 'poll'
// (native/src/fuse_poll.c, the default): the event loop watches the mount's
// fd with a uv_poll and reads requests itself, no threads, no hop between
// threads. 'threads' (native/src/fuse_channel.c): one reader thread per fd
// (the mount's fd and FUSE_DEV_IOC_CLONE clones of it), so the kernel's
// copy of a 1 MiB WRITE into our buffer happens off the event loop, and each
// request reaches the loop through a threadsafe function. In both, requests
// land in buffers this class allocates and the number of buffers bounds both
// memory and requests in flight (with none free, nothing is read).
//
// Order of shutdown: unmount() first. The kernel then ends the connection,
// every reader gets ENODEV and exits, and `closed` resolves. close() after
// that releases the fds. stop()/close() on a live mount also end the readers
// (an eventfd wakes the threads; the polls are closed), but then the mount is
// left without a server: once the fds are closed every access to it fails
// with ENOTCONN until someone unmounts it.

import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LunkitError } from '../../../protocols/errors.js';

/** The kernel refuses a read buffer smaller than this (FUSE_MIN_READ_BUFFER, include/uapi/linux/fuse.h). */
export const FUSE_MIN_READ_BUFFER = 8192;
/** Default buffer: a 1 MiB WRITE's data plus its headers (the kernel wants >= max_write + 80 bytes), rounded up. */
export const FUSE_DEFAULT_BUFFER_SIZE = 1024 * 1024 + 8192;

export interface FuseMountOptions {
  /** The mount's source, shown by mount(8) and /proc/self/mountinfo. */
  fsname: string;
  /** The type is "fuse.<subtype>". */
  subtype: string;
  /** Mode of the root directory, with the file type bits (0o40755). Default 0o40755. */
  rootMode?: number;
  /** The mounting user, who alone may use the mount unless allowOther. Default 0. */
  uid?: number;
  gid?: number;
  allowOther?: boolean;
  /** The kernel checks permissions from the modes we report (otherwise the server must). */
  defaultPermissions?: boolean;
  /** Caps the size of READ requests (the kernel also caps them at max_pages). */
  maxRead?: number;
  readOnly?: boolean;
}

/**
 * One kernel request. `request` is a view of exactly the bytes read (fuse_in_header
 * first) into a buffer the channel reuses: call release() once nothing refers to it
 * any more (for a WRITE, after the backstore has written the data). Until then the
 * buffer is out of circulation. Reply with channel.reply(fdIndex, ...).
 * The handler must not throw; if it does, the error is rethrown as an uncaught exception.
 */
export type FuseRequestHandler = (request: Buffer, release: () => void, fdIndex: number) => void;

export interface FuseChannelOptions {
  onRequest: FuseRequestHandler;
  /**
   * A reader thread ended: code null after stop(), 'ENODEV' after unmount or
   * an abort through /sys/fs/fuse/connections/N/abort ('ECONNABORTED' for an
   * abort when INIT negotiated FUSE_ABORT_ERROR), anything else is a read
   * error (reported once; that thread is gone, the others go on).
   */
  onReaderExit?: (fdIndex: number, code: string | null) => void;
  /**
   * Where /dev/fuse is read: 'threads', one reader thread per fd handing
   * requests to the event loop, or 'poll', on the event loop itself
   * (uv_poll, no threads). Default: see DEFAULT_CHANNEL_MODE.
   */
  mode?: FuseChannelMode;
  /**
   * fds read: the mount's and threads - 1 clones. In 'threads' mode one
   * thread each, default 2; in 'poll' mode all polled by the event loop,
   * default 1 (clones give one loop nothing: they share the kernel's queue).
   */
  threads?: number;
  /** Request buffers shared by all threads: the most requests in flight. Default 16. */
  buffers?: number;
  /** Bytes per buffer, at least max_write + 80 and 8192. Default 1 MiB + 8 KiB. */
  bufferSize?: number;
}

export type FuseChannelMode = 'threads' | 'poll';

/**
 * 'poll', measured (src/tools/bench-fuse-modes.ts: FuseFabric over a 1 GiB
 * ramdisk in one process, fio --direct=1, 5 s jobs, medians of 3 rounds on a
 * shared 2-core VM; CPU is the whole process's per fio I/O):
 *
 *   job                       threads (2 fds)   threads (1 fd)    poll (1 fd)
 *   4K randread psync qd1     15.0k IOPS 42 us  14.5k IOPS 43 us  16.3k IOPS 31 us
 *   4K randread libaio qd32   62k IOPS   19 us  72k IOPS   15 us  101k IOPS  10 us
 *   1M seq read psync         4.1 GB/s  211 us  3.9 GB/s  223 us  3.9 GB/s  213 us
 *   1M seq write libaio qd8   5.1 GB/s  290 us  6.9 GB/s  239 us  4.3 GB/s  243 us
 *
 * Small requests cost a quarter to a half less CPU on the event loop (no
 * uv_async wakeup, no futex, no thread switch per request) and go faster;
 * 1 MiB reads are even. What poll gives up is 1 MiB writes at depth: their
 * data is copied into our buffer by read(2) on the event loop, which the
 * threads do on the other core, so threads keep ~1.5x the write bandwidth
 * there at the same CPU per I/O. That is above what any networked backstore
 * delivers (nbdfuse over nbdkit memory: 2.4 GB/s), so CPU per request decides.
 * Polling a clone as well (2 fds) measured the same as one (16.6k / 99k IOPS,
 * 31 / 10 us): clones share the kernel's input queue, so one loop gains nothing.
 */
export const DEFAULT_CHANNEL_MODE: FuseChannelMode = 'poll';

/** The part of the addon this file uses (native/src/fuse_channel.c has the details). */
interface NativeFuse {
  fuseMount(mountpoint: string, opts: Required<Omit<FuseMountOptions, 'maxRead'>> & { maxRead: number }): number;
  fuseUnmount(mountpoint: string, lazy: boolean): void;
  fuseClone(fd: number): number;
  /** Bytes written, or -2 (-ENOENT) when the request was interrupted or aborted. */
  fuseWrite(fd: number, parts: readonly Uint8Array[]): number;
  fuseReaderStart(
    fds: readonly number[],
    buffers: readonly Buffer[],
    onRequest: (bufIndex: number, length: number, fdIndex: number) => void,
    onExit: (fdIndex: number, code: string | null) => void,
  ): ReaderHandle;
  /** The same contract as fuseReaderStart, reading on the event loop (native/src/fuse_poll.c). */
  fuseReaderStartPoll: NativeFuse['fuseReaderStart'];
  /** Either kind of handle. Throws EINVAL on a double release. */
  fuseReaderRelease(handle: ReaderHandle, bufIndex: number): void;
  /** Resolves once every thread has exited and the buffers are let go. */
  fuseReaderStop(handle: ReaderHandle): Promise<void>;
  fuseReaderRef(handle: ReaderHandle, ref: boolean): void;
}

declare const readerHandle: unique symbol;
type ReaderHandle = { readonly [readerHandle]: true };

let cached: NativeFuse | undefined;
let loadError: unknown;

/** The package root from src/ (tsx, vitest) and from dist/src/ (built). */
function candidates(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const rel = path.join('native', 'build', 'Release', 'lunkit_native.node');
  return [path.resolve(here, '../../../..', rel), path.resolve(here, '../../../../..', rel)];
}

/** The addon, loaded on first use; throws ERR_FUSE_MOUNT naming the fix when it is missing or too old. */
function nativeFuse(): NativeFuse {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  for (const file of candidates()) {
    try {
      const mod: unknown = require(file);
      if (typeof mod === 'object' && mod !== null && typeof (mod as Record<string, unknown>).fuseReaderStartPoll === 'function') {
        cached = mod as NativeFuse;
        return cached;
      }
      loadError = new Error(`${file} has no fuseReaderStartPoll`);
    } catch (err) {
      loadError = err;
    }
  }
  throw new LunkitError('ERR_FUSE_MOUNT', 'the FUSE transport needs the lunkit_native addon: build it with `npm run install` (node-gyp)', {
    cause: loadError,
  });
}

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new LunkitError('ERR_FUSE_MOUNT', `FUSE channel: ${name} must be an integer in ${min}..${max}, got ${v}`);
  }
}

function errnoCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

export class FuseChannel {
  /** Resolves when every reader thread has exited (after unmount, abort or stop). */
  readonly closed: Promise<void>;
  /** Where requests are read (FuseChannelOptions.mode). */
  readonly mode: FuseChannelMode;
  /** Each reader's exit code, by fd index (see onReaderExit); undefined while it runs. */
  readonly exitCodes: (string | null | undefined)[];
  private readonly native: NativeFuse;
  private readonly buffers: Buffer[];
  private readonly handle: ReaderHandle;
  private resolveClosed!: () => void;
  private fdsOpen = true;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly mountpoint: string,
    /** fds[0] is the mount's; the others are its clones. A reply goes to the fd its request came from. */
    readonly fds: readonly number[],
    native: NativeFuse,
    opts: FuseChannelOptions,
    mode: FuseChannelMode,
    bufferCount: number,
    bufferSize: number,
  ) {
    this.native = native;
    this.mode = mode;
    this.exitCodes = fds.map(() => undefined);
    this.closed = new Promise((res) => (this.resolveClosed = res));
    // allocUnsafeSlow: whole buffers of our own, never slices of Node's shared pool.
    this.buffers = Array.from({ length: bufferCount }, () => Buffer.allocUnsafeSlow(bufferSize));
    const onRequest = (bufIndex: number, length: number, fdIndex: number): void => this.deliver(opts.onRequest, bufIndex, length, fdIndex);
    const onExit = (fdIndex: number, code: string | null): void => this.readerExited(opts, fdIndex, code);
    this.handle =
      mode === 'poll'
        ? native.fuseReaderStartPoll(fds, this.buffers, onRequest, onExit)
        : native.fuseReaderStart(fds, this.buffers, onRequest, onExit);
  }

  /**
   * Mounts mountpoint (mount(2), as root) and starts the readers. The kernel's
   * INIT is the first request the handler sees. Throws ERR_FUSE_MOUNT with the
   * errno error (code EPERM, ENOENT, ENODEV...) as cause.
   */
  static mount(mountpoint: string, opts: FuseMountOptions, channel: FuseChannelOptions): FuseChannel {
    const native = nativeFuse();
    const mode = channel.mode ?? DEFAULT_CHANNEL_MODE;
    if (mode !== 'threads' && mode !== 'poll') throw new LunkitError('ERR_FUSE_MOUNT', `FUSE channel: mode must be 'threads' or 'poll', got ${String(mode)}`);
    const threads = channel.threads ?? (mode === 'poll' ? 1 : 2);
    const buffers = channel.buffers ?? 16;
    const bufferSize = channel.bufferSize ?? FUSE_DEFAULT_BUFFER_SIZE;
    checkInt('threads', threads, 1, 64);
    checkInt('buffers', buffers, 1, 1024);
    checkInt('bufferSize', bufferSize, FUSE_MIN_READ_BUFFER, 2 ** 30);
    const dir = path.resolve(mountpoint);
    let fd: number;
    try {
      fd = native.fuseMount(dir, {
        fsname: opts.fsname,
        subtype: opts.subtype,
        rootMode: opts.rootMode ?? 0o40755,
        uid: opts.uid ?? 0,
        gid: opts.gid ?? 0,
        allowOther: opts.allowOther ?? false,
        defaultPermissions: opts.defaultPermissions ?? false,
        maxRead: opts.maxRead ?? 0,
        readOnly: opts.readOnly ?? false,
      });
    } catch (err) {
      throw new LunkitError('ERR_FUSE_MOUNT', `cannot mount FUSE on ${dir}: ${(err as Error).message}`, { cause: err });
    }
    const fds = [fd];
    try {
      while (fds.length < threads) fds.push(native.fuseClone(fd));
      return new FuseChannel(dir, fds, native, channel, mode, buffers, bufferSize);
    } catch (err) {
      // Nothing serves the mount: take it away before closing its fds (closing them first would leave ENOTCONN behind).
      try {
        native.fuseUnmount(dir, true);
      } catch {
        // already gone
      }
      for (const f of fds) closeSync(f);
      throw new LunkitError('ERR_FUSE_MOUNT', `cannot start the FUSE readers for ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Writes one reply (fuse_out_header first, then payload pieces, at most 64) to
   * fds[fdIndex], which must be the fd the request came from. True when the kernel
   * took it, false when the request was interrupted or the connection aborted
   * (ENOENT: nothing to do). Throws the errno error otherwise (EINVAL: a malformed reply).
   */
  reply(fdIndex: number, parts: readonly Uint8Array[]): boolean {
    return this.native.fuseWrite(this.fds[fdIndex], parts) >= 0;
  }

  /**
   * umount2 (MNT_DETACH when lazy). True when it unmounted, false when nothing
   * was mounted there. Throws ERR_FUSE_UNMOUNT (cause: EBUSY...) otherwise.
   */
  unmount(lazy = false): boolean {
    try {
      this.native.fuseUnmount(this.mountpoint, lazy);
      return true;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EINVAL' || code === 'ENOENT') return false;
      throw new LunkitError('ERR_FUSE_UNMOUNT', `cannot unmount ${this.mountpoint}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Keep Node running while the readers run (the default, like a listening server), or not. */
  ref(): void {
    this.native.fuseReaderRef(this.handle, true);
  }

  unref(): void {
    this.native.fuseReaderRef(this.handle, false);
  }

  /** Ends the reader threads (requests already delivered stay valid until released). */
  async stop(): Promise<void> {
    await this.native.fuseReaderStop(this.handle);
  }

  /** stop(), then closes the fds. Unmount first (see the top of this file). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.stop().then(() => {
      if (!this.fdsOpen) return;
      this.fdsOpen = false;
      for (const fd of this.fds) closeSync(fd);
    });
    return this.closing;
  }

  private deliver(handler: FuseRequestHandler, bufIndex: number, length: number, fdIndex: number): void {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.native.fuseReaderRelease(this.handle, bufIndex);
    };
    try {
      handler(this.buffers[bufIndex].subarray(0, length), release, fdIndex);
    } catch (err) {
      // An exception thrown into the addon's callback would only print a warning; make it a real uncaught one.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  private readerExited(opts: FuseChannelOptions, fdIndex: number, code: string | null): void {
    this.exitCodes[fdIndex] = code;
    try {
      opts.onReaderExit?.(fdIndex, code);
    } finally {
      // The last thread is out: stop() now only waits for the addon to let the buffers go.
      if (this.exitCodes.every((c) => c !== undefined)) void this.stop().then(this.resolveClosed);
    }
  }
}
