// What sits between a LU and its backstore (filters and all): the one place
// every backstore call of every fabric passes, so two rules hold whoever
// calls (SCSI handlers, the block nexus for NBD and FUSE, XCOPY, shutdown).
//
// 1. A failed flush is remembered (PostgreSQL's "fsyncgate", 2018): after
//    fdatasync fails, Linux may have dropped the dirty pages and marked them
//    clean, so a retried fdatasync succeeds with the data gone. Reporting
//    that success to an initiator would be a lie. The first failure latches
//    the LU: every later flush and FUA write fails with MEDIUM ERROR, WRITE
//    ERROR (03/0C/00, the sense the first failure got, SBC-3 §4.11) until an
//    operator clears the latch (`lunkit backstore clear-error`), having
//    checked or restored the data. Plain writes and reads go on: they promise
//    nothing about durability, and refusing reads would only stop recovery.
//    A backstore that syncs inside a write (write-through, qcow2 metadata
//    ordering) marks such errors with markSyncFailure (errno.ts); they latch
//    too.
// 2. Every call in progress is counted, so shutdown (and anyone else) can
//    wait for the backstore to go idle before the final flush: an aborted
//    task's pwrite may still be queued in libuv when its task is answered.

import { BackstoreIoError, errorCode, isSyncFailure } from './errno.js';
import type { BackstoreCaps, BackstoreOps, Extent } from './types.js';

/** Why a LU's flushes and FUA writes fail (the latch). */
export interface MediumErrorState {
  /** The Node error code of the failure that latched (EIO, ENOSPC...). */
  code: string;
  /** Its message, for `lunkit ls` and stats. */
  message: string;
  /** Wall time of the failure, ms since the epoch. */
  at: number;
  /** Which call failed: a flush, or a write/zeroes whose own sync failed. */
  op: 'flush' | 'write';
  /** Flushes and FUA writes refused since (not counting the first failure). */
  refused: number;
}

type WriteOpts = { fua?: boolean };
type ZeroOpts = { mayUnmap?: boolean; fua?: boolean };

export class GuardedBackstore implements BackstoreOps {
  declare readonly unmap?: (offset: number, length: number) => Promise<void>;
  declare readonly writeZeroes?: (offset: number, length: number, opts?: ZeroOpts) => Promise<void>;
  declare readonly extents?: (offset: number, length: number) => Promise<Extent[]>;
  declare readonly resize?: (size: number) => Promise<void>;

  private latched: MediumErrorState | undefined;
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly inner: BackstoreOps,
    /** Told once when the latch is set (the device publishes an event). */
    private readonly onLatch?: (state: Readonly<MediumErrorState>) => void,
  ) {
    // Present exactly when the inner store has them (block-ops checks caps,
    // but NBD and the caps check look for the methods too).
    const self = this as { -readonly [K in 'unmap' | 'writeZeroes' | 'extents' | 'resize']?: BackstoreOps[K] };
    if (inner.unmap) self.unmap = (offset, length) => this.track(inner.unmap!(offset, length));
    if (inner.writeZeroes) self.writeZeroes = (offset, length, opts) => this.zeroes(offset, length, opts);
    if (inner.extents) self.extents = (offset, length) => this.track(inner.extents!(offset, length));
    if (inner.resize) self.resize = (size) => this.track(inner.resize!(size));
  }

  get kind(): string {
    return this.inner.kind;
  }

  get name(): string {
    return this.inner.name;
  }

  get size(): number {
    return this.inner.size;
  }

  get blockSize(): 512 | 4096 {
    return this.inner.blockSize;
  }

  get caps(): BackstoreCaps {
    return this.inner.caps;
  }

  /** The latch, or undefined while flushes are trusted. */
  get mediumError(): Readonly<MediumErrorState> | undefined {
    return this.latched;
  }

  /** Calls in progress in the backstore. */
  get inFlight(): number {
    return this.active;
  }

  /** The operator vouches for the data again; returns the state that was cleared. */
  clearMediumError(): MediumErrorState | undefined {
    const was = this.latched;
    this.latched = undefined;
    return was;
  }

  /** Carry a latch over to a new device on the same backstore (a config change must not clear it). */
  inheritMediumError(from: GuardedBackstore): void {
    if (from.latched && !this.latched) this.latched = { ...from.latched };
  }

  /** Resolves when no call is in progress, or with false once `ms` have passed. */
  whenIdle(ms: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      this.idleWaiters.push(done);
    });
  }

  read(buf: Buffer, offset: number): Promise<void> {
    return this.track(this.inner.read(buf, offset));
  }

  write(buf: Buffer, offset: number, opts?: WriteOpts): Promise<void> {
    if (opts?.fua) {
      const refused = this.refuse('FUA write');
      if (refused) return refused;
    }
    return this.track(this.inner.write(buf, offset, opts), 'write');
  }

  flush(): Promise<void> {
    const refused = this.refuse('flush');
    if (refused) return refused;
    return this.track(this.inner.flush(), 'flush');
  }

  /** Closing is not I/O a shutdown waits for; it is what comes after. */
  close(): Promise<void> {
    return this.inner.close();
  }

  private zeroes(offset: number, length: number, opts?: ZeroOpts): Promise<void> {
    if (opts?.fua) {
      const refused = this.refuse('FUA write zeroes');
      if (refused) return refused;
    }
    return this.track(this.inner.writeZeroes!(offset, length, opts), 'write');
  }

  /** A rejected promise while latched, else undefined (no allocation on the normal path). */
  private refuse(what: string): Promise<never> | undefined {
    const l = this.latched;
    if (!l) return undefined;
    l.refused++;
    const when = new Date(l.at).toISOString();
    return Promise.reject(
      new BackstoreIoError(
        'EIO',
        `${this.name}: ${what} refused: a ${l.op === 'flush' ? 'flush' : 'write-through sync'} failed at ${when} (${l.code}), ` +
          'so earlier writes may be lost; clear with `lunkit backstore clear-error` once the data is checked',
        'MEDIUM_ERROR_WRITE',
      ),
    );
  }

  /**
   * Counts the call until it settles; a failed flush, or a write whose own
   * sync failed, latches. The handlers are fields, made once: per call only
   * the `.then` promise is allocated.
   */
  private track<T>(p: Promise<T>, op?: 'flush' | 'write'): Promise<T> {
    this.active++;
    return p.then(this.passValue as (v: T) => T, op === 'flush' ? this.failFlush : op === 'write' ? this.failWrite : this.failOther);
  }

  private readonly passValue = <T>(v: T): T => {
    this.settled();
    return v;
  };

  private readonly failOther = (err: unknown): never => {
    this.settled();
    throw err;
  };

  private readonly failFlush = (err: unknown): never => {
    this.settled();
    this.latch(err, 'flush');
    throw err;
  };

  private readonly failWrite = (err: unknown): never => {
    this.settled();
    if (isSyncFailure(err)) this.latch(err, 'write');
    throw err;
  };

  private latch(err: unknown, op: 'flush' | 'write'): void {
    if (this.latched) return;
    const message = err instanceof Error ? err.message : String(err);
    this.latched = { code: errorCode(err) ?? 'EIO', message, at: Date.now(), op, refused: 0 };
    this.onLatch?.(this.latched);
  }

  private settled(): void {
    if (--this.active > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
