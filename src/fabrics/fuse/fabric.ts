// FuseFabric: a FUSE mount in which every exported LUN is a regular file
// (LIO's tcm_loop for a kernel without a SCSI layer: the file goes on to a
// loop device). One mount = one I_T nexus, named
// "fuse:<hostname>:<mountpoint>", so reservations, write protection and
// statistics apply to FUSE I/O as to any other initiator.
//
// fuse-native facts this file relies on (docs/fuse.md, ECOSYSTEM.md):
// - big_writes, max_write and direct_io are not options of its API; they are
//   appended to the fsname option, which it passes into "-o" verbatim.
//   Without big_writes writes arrive 4 KiB at a time.
// - The kernel caps requests at 128 KiB (32 pages) for libfuse2, so
//   max_write/max_read above 131072 change nothing.
// - Its mount() runs fuse_mount() synchronously and reports success only
//   from the init callback: we put a time limit on it.
// - It serves requests from libfuse's multi-threaded loop: many reads and
//   writes are in flight at once, each completed by its callback.

import Fuse, { type FuseOptions } from 'fuse-native';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { FabricOps, NexusHandle } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { hasFuseMallocTunables, withFuseMallocTunables } from './malloc.js';
import { forceUnmount, mountsAt, prepareMountpoint, type LoopDevice } from './mountpoint.js';
import { FUSE_PROTOCOL_ID, FuseVolume, type ExportInfo, type ExportOptions, type FuseCore, type FuseStats } from './volume.js';

export interface FuseFabricOptions {
  /** Directory to mount on; created when missing (unless mkdir is false). */
  mountpoint: string;
  mkdir?: boolean;
  /** Largest write (and read) request; 131072 is what the kernel allows libfuse2. */
  maxWrite?: number;
  /**
   * Mount with direct_io: no page cache for the files, every read(2)/write(2)
   * reaches the LU. Off by default: measured slower under a loop device with
   * buffered I/O (see docs/fuse.md).
   */
  directIo?: boolean;
  /** Let users other than the mounting one open the files (allow_other). */
  allowOther?: boolean;
  /** Owner shown for the directory and files (default: this process). */
  uid?: number;
  gid?: number;
  /** fuse-native's per-request time limit (then ETIMEDOUT) for everything but read and write (see requestTimeouts); false for none. Default 120 s. */
  requestTimeoutMs?: number | false;
  /** How long mount() waits for the kernel's INIT (default 10 s). */
  mountTimeoutMs?: number;
  /** Host name used in the nexus identity (default os.hostname()). */
  hostname?: string;
  logger?: Logger;
}

export const DEFAULT_MAX_WRITE = 131072;

/**
 * fuse-native's time limits per operation. Reads and writes get none: their
 * buffers are libfuse's memory, lent to the core and the backstore (a READ
 * lands straight in it, a WRITE is sent from it), and fuse-native's timeout
 * answers the kernel at once, after which libfuse frees that memory while a
 * libuv thread or a socket write may still use it. The backstores bound
 * their own I/O instead (the NBD client's request deadline); a read that
 * hangs in the kernel hangs like a read of any other file.
 */
function requestTimeouts(ms: number | false): FuseOptions['timeout'] {
  if (ms === false) return false;
  return { default: ms, read: false, write: false };
}

export class FuseFabric implements FabricOps {
  readonly name = 'fuse';
  readonly mountpoint: string;
  private readonly volume: FuseVolume;
  private readonly logger: Logger;
  private fuse: Fuse | undefined;
  private state: 'idle' | 'mounting' | 'mounted' | 'closed' = 'idle';
  private closing: Promise<void> | undefined;
  /** Loop devices found on the files of a stale mount cleared by mount() (they fail I/O until re-attached). */
  staleLoops: LoopDevice[] = [];

  constructor(
    core: FuseCore,
    private readonly opts: FuseFabricOptions,
  ) {
    this.mountpoint = resolve(opts.mountpoint);
    this.logger = opts.logger ?? silentLogger;
    const host = opts.hostname ?? hostname();
    const initiatorName = `fuse:${host}:${this.mountpoint}`;
    this.volume = new FuseVolume(
      core,
      {
        initiatorName,
        initiatorPortId: initiatorName,
        targetName: `fuse:${host}`,
        targetPortId: `fuse:${host}:${this.mountpoint}`,
        relativeTargetPortId: 1,
        targetPortGroup: 0,
        protocolId: FUSE_PROTOCOL_ID,
      },
      this,
      { uid: opts.uid, gid: opts.gid },
    );
  }

  /** The nexus all I/O of this mount uses. */
  get nexus(): NexusHandle {
    return this.volume.nexus;
  }

  get mounted(): boolean {
    return this.state === 'mounted';
  }

  /** Absolute path of an export's file. */
  pathOf(name: string): string {
    return `${this.mountpoint}/${name}`;
  }

  /**
   * Mounts the directory. A stale FUSE mount left by a dead server is cleared
   * first (fusermount -uz); a live mount there fails with
   * ERR_FUSE_MOUNTPOINT_IN_USE. Exports may be set before or after.
   */
  async mount(): Promise<void> {
    if (this.state !== 'idle') throw new LunkitError('ERR_FUSE_STATE', `FUSE fabric at ${this.mountpoint} is ${this.state}`);
    this.state = 'mounting';
    try {
      const prep = await prepareMountpoint(this.mountpoint, { mkdir: this.opts.mkdir ?? true });
      if (prep.clearedStale) this.logger.warn('cleared a stale FUSE mount', { mountpoint: this.mountpoint });
      this.staleLoops = prep.staleLoops;
      for (const l of prep.staleLoops) {
        // Not detached for the user: it is theirs and may carry a mounted filesystem (docs/fuse.md "After a crash").
        const unmount = l.mountedOn.length > 0 ? `umount ${l.mountedOn.join(', ')}` : 'unmount what is on it';
        this.logger.warn(`loop device ${l.device} still uses ${l.file} of the dead FUSE mount and fails I/O: ${unmount}, run \`losetup -d ${l.device}\`, then losetup the new file`, {
          device: l.device,
          file: l.file,
          mountedOn: l.mountedOn,
        });
      }
      const maxWrite = this.opts.maxWrite ?? DEFAULT_MAX_WRITE;
      // The fsname trick: everything after "fsname=" up to the next option is ours.
      const extra = ['big_writes', `max_write=${maxWrite}`];
      if (this.opts.directIo) extra.push('direct_io');
      const fuse = new Fuse(this.mountpoint, this.volume.ops(), {
        fsname: ['lunkit', ...extra].join(','),
        subtype: 'lunkit',
        maxRead: maxWrite,
        allowOther: this.opts.allowOther ?? false,
        timeout: requestTimeouts(this.opts.requestTimeoutMs ?? 120_000),
        // Attributes change only by setExport/deleteExport; 1 s keeps stat cheap.
        attrTimeout: 1,
        entryTimeout: 1,
      });
      await this.mountWithTimeout(fuse, this.opts.mountTimeoutMs ?? 10_000);
      this.fuse = fuse;
      this.state = 'mounted';
      this.logger.info('FUSE mounted', { mountpoint: this.mountpoint, maxWrite, directIo: this.opts.directIo ?? false });
      if (!hasFuseMallocTunables()) {
        // Measured 20x slower large reads without it (malloc.ts, docs/fuse.md "Performance").
        this.logger.warn('FUSE reads will page-fault on every request: start this process with the malloc settings', {
          env: `GLIBC_TUNABLES=${withFuseMallocTunables(process.env.GLIBC_TUNABLES)}`,
        });
      }
    } catch (e) {
      this.state = 'idle';
      throw e;
    }
  }

  private mountWithTimeout(fuse: Fuse, ms: number): Promise<void> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        // INIT never came: the kernel mount may exist without a server loop.
        void forceUnmount(this.mountpoint).catch(() => {});
        rej(new LunkitError('ERR_FUSE_MOUNT', `FUSE mount at ${this.mountpoint} timed out`));
      }, ms);
      fuse.mount((err) => {
        clearTimeout(timer);
        if (err) rej(new LunkitError('ERR_FUSE_MOUNT', `FUSE mount at ${this.mountpoint} failed: ${err.message}`, { cause: err }));
        else res();
      });
    });
  }

  /** Adds or replaces the file `name` for a device (probes its geometry first). */
  setExport(name: string, opts: ExportOptions): Promise<ExportInfo> {
    if (this.state === 'closed') return Promise.reject(new LunkitError('ERR_FUSE_STATE', 'FUSE fabric is closed'));
    return this.volume.setExport(name, opts);
  }

  /** Removes the file; false when there was none. Open descriptors on it get EIO. */
  deleteExport(name: string): boolean {
    return this.volume.deleteExport(name);
  }

  exports(): ExportInfo[] {
    return this.volume.exports();
  }

  stats(): FuseStats {
    return { ...this.volume.stats };
  }

  /** FabricOps: the core asks to end the nexus (e.g. PR preempt-and-abort). A mount cannot be "logged out"; I/O continues to be checked per command. */
  closeNexus(_nexus: NexusHandle, reason: string): void {
    this.logger.warn('core asked to close the FUSE nexus; keeping the mount', { mountpoint: this.mountpoint, reason });
  }

  /**
   * Unmounts (lazily if busy, so a loop device still attached cannot keep the
   * process alive) and closes the nexus. Idempotent. In-flight requests are
   * the caller's to drain: call core.flushAll() after.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const fuse = this.fuse;
      this.fuse = undefined;
      this.state = 'closed';
      if (fuse) {
        await new Promise<void>((res) => {
          fuse.unmount((err) => {
            if (err) this.logger.warn('FUSE unmount failed', { mountpoint: this.mountpoint, err });
            res();
          });
        });
        // fuse-native reports success even when fusermount found nothing; check the table.
        const left = await mountsAt(this.mountpoint).catch(() => []);
        if (left.some((m) => m.source.startsWith('lunkit'))) await forceUnmount(this.mountpoint).catch(() => {});
      }
      this.volume.close();
      this.logger.info('FUSE unmounted', { mountpoint: this.mountpoint });
    })();
    return this.closing;
  }
}
