// FuseFabric: a FUSE mount in which every exported LUN is a regular file
// (LIO's tcm_loop for a kernel without a SCSI layer: the file goes on to a
// loop device). One mount = one I_T nexus, named
// "fuse:<hostname>:<mountpoint>", so reservations, write protection and
// statistics apply to FUSE I/O as to any other initiator.
//
// The transport is our own (kernel/): mount(2) of /dev/fuse through the
// native addon, reader threads handing requests to this event loop, the FUSE
// protocol spoken by kernel/session.ts. Requests are up to 1 MiB
// (FUSE_MAX_PAGES) and many are in flight at once (docs/fuse.md).

import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { FabricOps, NexusHandle } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { FuseChannel, type FuseChannelMode } from './kernel/channel.js';
import { FUSE_MAX_IO, FuseKernelSession } from './kernel/session.js';
import { forceUnmount, mountsAt, prepareMountpoint, type LoopDevice } from './mountpoint.js';
import { FUSE_PROTOCOL_ID, FuseVolume, type ExportInfo, type ExportOptions, type FuseCore, type FuseStats } from './volume.js';

export interface FuseFabricOptions {
  /** Directory to mount on; created when missing (unless mkdir is false). */
  mountpoint: string;
  mkdir?: boolean;
  /** Reader threads on /dev/fuse (the mount's fd and clones of it); default 2 ('threads' mode), 1 fd ('poll'). */
  threads?: number;
  /** How /dev/fuse is read: reader threads or the event loop (FuseChannelOptions.mode; default DEFAULT_CHANNEL_MODE). */
  channelMode?: FuseChannelMode;
  /** Requests in flight at most (each holds a 1 MiB buffer); default 32. */
  maxRequests?: number;
  /**
   * Mount with direct_io: no page cache for the files, every read(2)/write(2)
   * reaches the LU. Off by default: measured slower under a loop device with
   * buffered I/O (see docs/fuse.md).
   */
  directIo?: boolean;
  /** Let users other than the mounting one reach the mount (allow_other); the files' modes (0600) still keep them out unless they own them. */
  allowOther?: boolean;
  /** Owner shown for the directory and files (default: this process). */
  uid?: number;
  gid?: number;
  /** How long mount() waits for the kernel's INIT (default 10 s). */
  mountTimeoutMs?: number;
  /** Host name used in the nexus identity (default os.hostname()). */
  hostname?: string;
  logger?: Logger;
}

/** Largest READ and WRITE request the kernel sends (negotiated at INIT). */
export const DEFAULT_MAX_WRITE = FUSE_MAX_IO;

export class FuseFabric implements FabricOps {
  readonly name = 'fuse';
  readonly mountpoint: string;
  private readonly volume: FuseVolume;
  private readonly logger: Logger;
  private channel: FuseChannel | undefined;
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
   * first (umount -l); a live mount there fails with
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
      const session = new FuseKernelSession(this.volume, {
        directIo: this.opts.directIo ?? false,
        logger: this.logger,
        reply: (fdIndex, parts) => this.reply(fdIndex, parts),
      });
      const channel = FuseChannel.mount(
        this.mountpoint,
        {
          fsname: 'lunkit',
          subtype: 'lunkit',
          rootMode: 0o40755,
          uid: this.opts.uid ?? process.getuid?.() ?? 0,
          gid: this.opts.gid ?? process.getgid?.() ?? 0,
          allowOther: this.opts.allowOther ?? false,
          // The kernel checks the files' modes (0600/0400, volume.ts attrOf)
          // itself: without it, allow_other lets any local user open a LUN
          // read-write. Root still passes (CAP_DAC_OVERRIDE).
          defaultPermissions: true,
          maxRead: DEFAULT_MAX_WRITE,
        },
        {
          onRequest: (req, release, fdIndex) => session.handle(req, release, fdIndex),
          onReaderExit: (fdIndex, code) => {
            if (code !== null && code !== 'ENODEV') this.logger.warn('FUSE reader ended', { mountpoint: this.mountpoint, fdIndex, code });
          },
          mode: this.opts.channelMode,
          threads: this.opts.threads,
          buffers: this.opts.maxRequests ?? 32,
        },
      );
      this.channel = channel;
      try {
        await withTimeout(session.initialized(), this.opts.mountTimeoutMs ?? 10_000, `FUSE mount at ${this.mountpoint}: no INIT from the kernel`);
      } catch (e) {
        this.channel = undefined;
        channel.unmount(true);
        await channel.close();
        throw e instanceof LunkitError ? e : new LunkitError('ERR_FUSE_MOUNT', `FUSE mount at ${this.mountpoint} failed: ${(e as Error).message}`, { cause: e });
      }
      this.state = 'mounted';
      this.logger.info('FUSE mounted', { mountpoint: this.mountpoint, maxWrite: DEFAULT_MAX_WRITE, directIo: this.opts.directIo ?? false });
    } catch (e) {
      this.state = 'idle';
      throw e;
    }
  }

  /** Writes one reply; a reply the kernel no longer wants (interrupted, unmounted) is dropped. */
  private reply(fdIndex: number, parts: Buffer[]): boolean {
    const ch = this.channel;
    if (!ch) return false;
    try {
      return ch.reply(fdIndex, parts);
    } catch (e) {
      if (this.state === 'mounted') this.logger.warn('FUSE reply failed', { mountpoint: this.mountpoint, err: e });
      return false;
    }
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
      const channel = this.channel;
      this.state = 'closed';
      if (channel) {
        // Lazily when busy (a loop device still attached): the mount goes from the namespace at once.
        try {
          if (!channel.unmount(false)) this.logger.warn('FUSE mount was already gone', { mountpoint: this.mountpoint });
        } catch {
          channel.unmount(true);
        }
        await channel.close();
        this.channel = undefined;
        const left = await mountsAt(this.mountpoint).catch(() => []);
        if (left.some((m) => m.source.startsWith('lunkit'))) await forceUnmount(this.mountpoint).catch(() => {});
      }
      this.volume.close();
      this.logger.info('FUSE unmounted', { mountpoint: this.mountpoint });
    })();
    return this.closing;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new LunkitError('ERR_FUSE_MOUNT', message)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        res(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        rej(e as Error);
      },
    );
  });
}
