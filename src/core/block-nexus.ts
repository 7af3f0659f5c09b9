// The core's second door (ARCHITECTURE.md "One set of rules, two doors into
// the core"): block operations for fabrics that speak blocks, not CDBs (NBD,
// FUSE) and for in-daemon users. Each operation applies the rules the SCSI
// path applies, in the same order and with the same reasons from the one
// sense-reason table: the nexus's LUN map, medium present, persistent and
// SPC-2 reservations (pr-state accessConflicts), write protection of the LU
// and of the mapping, block alignment and the LBA range, the LU's task set
// (so a LOGICAL UNIT RESET from an iSCSI initiator aborts NBD requests too),
// the LBA range lock for writers, write-cache/FUA semantics, statistics per
// LU and nexus. The data itself moves through block-ops.ts, which the SBC
// handlers share.
//
// Unit attentions: a block fabric has no way to report one, so a block
// nexus never has any queued (it never opens a UA queue, ua.ts). What a UA
// would announce is visible directly: geometry() reads the LU's current size
// and protection on every call.
//
// Results are values: a Buffer / extents / undefined on success, a
// BlockFailure string otherwise (errno.ts reasonToErrno maps it).

import type { ScsiDevice } from './device.js';
import { errnoToSense, type BackstoreOp, type BlockFailure } from './errno.js';
import { deallocateBytes, extentsOf, flushBackstore, zeroBytes } from './block-ops.js';
import { MAX_TRANSFER_BYTES } from './sbc-common.js';
import { extentsToDescriptors, ProvisioningStatus } from './sbc-lba-status.js';
import type { CommandStats } from './stats.js';
import { Task } from './task-set.js';
import type { BackstoreCaps, Extent, LunMapping, NexusHandle } from './types.js';

/** How far one extents() call looks, bytes (bounds the work per request, like GET LBA STATUS). */
export const EXTENTS_WINDOW_BYTES = 1024 * 1024 * 1024;

/** A LU as a block nexus sees it (READ CAPACITY + MODE SENSE + VPD 0xB0/0xB2, as values). */
export interface BlockGeometry {
  /** Bytes. */
  size: number;
  blockSize: number;
  /** The backstore's declared capabilities (the only source of truth). */
  caps: Readonly<BackstoreCaps>;
  /** Logical block provisioning (LBPME): trim deallocates. */
  thin: boolean;
  /** Deallocated blocks read back as zeroes (LBPRZ; only on a thin LU). */
  unmapReadsZero: boolean;
  /** Writes fail with WRITE PROTECTED (the LU, its SWP, or this mapping). */
  writeProtected: boolean;
  /** Write cache enabled (WCE): without it every write is FUA. */
  writeCache: boolean;
  /** Largest read or write in one operation, bytes. */
  maxTransferBytes: number;
}

export interface ZeroOptions {
  /** The blocks may be deallocated instead of written (NBD: no NO_HOLE flag). */
  mayTrim?: boolean;
  /** Fail with NOT_SUPPORTED unless zeroing is faster than writing (NBD FAST_ZERO). */
  fastZero?: boolean;
  fua?: boolean;
}

/** What the block nexus needs of the core that owns it (engine.ts). */
export interface BlockHost {
  /** Statistics of an open nexus; undefined once it is closed. */
  nexusStats(nexus: NexusHandle): CommandStats | undefined;
  deviceAt(nexus: NexusHandle, lun: number): ScsiDevice | undefined;
}

type Admitted = { dev: ScsiDevice; mapping: LunMapping; stats: CommandStats };

export class BlockNexus {
  private nextTag = 1;

  constructor(
    private readonly host: BlockHost,
    /** The nexus handle (ScsiCore.openNexus); close it with ScsiCore.closeNexus. */
    readonly nexus: NexusHandle,
  ) {}

  /** The LU's geometry as this nexus sees it, or why there is none. */
  geometry(lun: number): BlockGeometry | BlockFailure {
    const a = this.admit(lun);
    if (typeof a === 'string') return a;
    const { dev, mapping } = a;
    const caps = dev.backstore.caps;
    return {
      size: dev.backstore.size,
      blockSize: dev.blockSize,
      caps,
      thin: dev.thin,
      unmapReadsZero: dev.thin && caps.unmapReadsZero,
      writeProtected: dev.deviceWriteProtected || mapping.readOnly,
      writeCache: dev.writeCacheEnabled,
      maxTransferBytes: MAX_TRANSFER_BYTES,
    };
  }

  /**
   * Reads [offset, offset+length). The data lands in `into` when it is large
   * enough (a view of it is returned), else in a new buffer.
   */
  async read(lun: number, offset: number, length: number, into?: Buffer): Promise<Buffer | BlockFailure> {
    const t0 = performance.now();
    const a = this.admitIo(lun, 'read', offset, length, true, 'read', t0);
    if (typeof a === 'string') return a;
    const { dev } = a;
    const task = this.enter(a, lun);
    let out: Buffer | BlockFailure;
    try {
      const wait = dev.taskSet.enter(task);
      if (wait) await wait;
      if (task.aborted) out = 'ABORTED';
      else {
        const buf = into !== undefined && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
        try {
          if (length > 0) await dev.backstore.read(buf, offset);
          out = task.aborted ? 'ABORTED' : buf;
        } catch (err) {
          out = errnoToSense(err, 'read');
        }
      }
    } finally {
      this.leave(a, task);
    }
    if (typeof out === 'string') return this.record(a, 'read', 0, out, t0);
    this.record(a, 'read', length, undefined, t0);
    return out;
  }

  /** Writes `data` at offset; FUA (or a disabled write cache) makes it durable before it resolves. */
  async write(lun: number, offset: number, data: Buffer, fua = false): Promise<BlockFailure | undefined> {
    return this.modify(lun, offset, data.length, data.length, 'write', (dev) =>
      dev.backstore.write(data, offset, { fua: fua || !dev.writeCacheEnabled }),
    );
  }

  /** Makes every completed write durable (SYNCHRONIZE CACHE over the LU). */
  async flush(lun: number): Promise<BlockFailure | undefined> {
    return this.modify(lun, 0, 0, 0, 'flush', (dev) => flushBackstore(dev), false);
  }

  /**
   * Deallocates a range (UNMAP). Advisory: on a LU that is not thin it does
   * nothing and succeeds, as NBD TRIM allows.
   */
  async trim(lun: number, offset: number, length: number, fua = false): Promise<BlockFailure | undefined> {
    return this.modify(lun, offset, length, 0, 'unmap', async (dev) => {
      if (!dev.thin || length === 0) return;
      await deallocateBytes(dev, offset, length, false);
      if (fua || !dev.writeCacheEnabled) await flushBackstore(dev);
    });
  }

  /**
   * Zeroes a range (WRITE SAME with NDOB). With mayTrim on a thin LU whose
   * deallocated blocks read as zeroes, the range may be deallocated; with
   * fastZero, a range that would have to be written block by block fails at
   * once with NOT_SUPPORTED.
   */
  async zeroes(lun: number, offset: number, length: number, opts: ZeroOptions = {}): Promise<BlockFailure | undefined> {
    return this.modify(lun, offset, length, 0, 'write', async (dev) => {
      const mayUnmap = (opts.mayTrim ?? false) && dev.thin && dev.backstore.caps.unmapReadsZero;
      if (opts.fastZero && !mayUnmap) return 'NOT_SUPPORTED';
      if (length === 0) return;
      await zeroBytes(dev, offset, length, mayUnmap, (opts.fua ?? false) || !dev.writeCacheEnabled);
    });
  }

  /**
   * Allocation from `offset` (GET LBA STATUS): extents in order, covering at
   * least the first byte and at most EXTENTS_WINDOW_BYTES; a LU that is not
   * thin or cannot tell is one data extent. Byte extents as the backstore
   * reports them; callers cut them to their request.
   */
  async extents(lun: number, offset: number, length: number): Promise<Extent[] | BlockFailure> {
    const t0 = performance.now();
    const a = this.admitIo(lun, 'read', offset, length, false, 'none', t0);
    if (typeof a === 'string') return a;
    const { dev } = a;
    const task = this.enter(a, lun);
    let out: Extent[] | BlockFailure;
    try {
      const wait = dev.taskSet.enter(task);
      if (wait) await wait;
      if (task.aborted) out = 'ABORTED';
      else {
        try {
          const bs = dev.blockSize;
          const raw = await extentsOf(dev, offset, Math.min(length, EXTENTS_WINDOW_BYTES));
          // Whole blocks, as GET LBA STATUS reports them: a block holding any data is data.
          out = extentsToDescriptors(raw, BigInt(offset / bs), bs).map((d) => ({
            offset: Number(d.lba) * bs,
            length: Number(d.blocks) * bs,
            hole: d.status === ProvisioningStatus.DEALLOCATED,
          }));
          if (out.length === 0) out = [{ offset, length: Math.min(length, EXTENTS_WINDOW_BYTES), hole: false }];
        } catch (err) {
          out = errnoToSense(err, 'read');
        }
      }
    } finally {
      this.leave(a, task);
    }
    if (typeof out === 'string') return this.record(a, 'none', 0, out, t0);
    this.record(a, 'none', 0, undefined, t0);
    return out;
  }

  /** PRE-FETCH: the page cache is our cache; the range is checked and nothing else happens. */
  cache(lun: number, offset: number, length: number): BlockFailure | undefined {
    const t0 = performance.now();
    const a = this.admitIo(lun, 'read', offset, length, false, 'none', t0);
    return typeof a === 'string' ? a : this.record(a, 'none', 0, undefined, t0);
  }

  // -- the rules ----------------------------------------------------------------

  /** Nexus open, LUN mapped, medium present. */
  private admit(lun: number): Admitted | BlockFailure {
    const stats = this.host.nexusStats(this.nexus);
    if (!stats) return 'ABORTED';
    const mapping = this.nexus.identity.luns.get(lun);
    const dev = this.host.deviceAt(this.nexus, lun);
    if (!mapping || !dev) return 'LUN_NOT_SUPPORTED';
    if (!dev.mediumLoaded) return 'MEDIUM_NOT_PRESENT';
    return { dev, mapping, stats };
  }

  /**
   * admit(), then reservations, write protection, alignment and range, in
   * the SCSI path's order. `limited`: the length counts against MAXIMUM
   * TRANSFER LENGTH (reads and writes; not trims, zeroes or extents). A
   * refusal is recorded in the statistics here.
   */
  private admitIo(
    lun: number,
    access: 'read' | 'write',
    offset: number,
    length: number,
    limited: boolean,
    direction: 'read' | 'write' | 'none',
    t0: number,
  ): Admitted | BlockFailure {
    const a = this.admit(lun);
    if (typeof a === 'string') return this.record(undefined, direction, 0, a, t0);
    const refused = this.refusal(a, access, offset, length, limited);
    return refused === undefined ? a : this.record(a, direction, 0, refused, t0);
  }

  private refusal(a: Admitted, access: 'read' | 'write', offset: number, length: number, limited: boolean): BlockFailure | undefined {
    const { dev, mapping } = a;
    if (dev.reservations.accessConflicts(this.nexus, access)) return 'RESERVATION_CONFLICT';
    if (access === 'write' && (dev.deviceWriteProtected || mapping.readOnly)) return 'WRITE_PROTECTED';
    const bs = dev.blockSize;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) return 'LBA_OUT_OF_RANGE';
    if (offset % bs !== 0 || length % bs !== 0) return 'INVALID_FIELD_IN_CDB';
    if (offset + length > dev.backstore.size) return 'LBA_OUT_OF_RANGE';
    if (limited && length > MAX_TRANSFER_BYTES) return 'INVALID_FIELD_IN_CDB';
    return undefined;
  }

  /** Writers: the checks, the task set, the LBA range lock, then `body`. */
  private async modify(
    lun: number,
    offset: number,
    length: number,
    bytes: number,
    op: BackstoreOp,
    body: (dev: ScsiDevice) => Promise<BlockFailure | undefined | void>,
    ranged = true,
  ): Promise<BlockFailure | undefined> {
    const t0 = performance.now();
    const direction = op === 'flush' ? 'none' : 'write';
    const a = this.admitIo(lun, 'write', offset, length, op === 'write' && bytes > 0, direction, t0);
    if (typeof a === 'string') return a;
    const { dev } = a;
    const task = this.enter(a, lun);
    let out: BlockFailure | undefined;
    try {
      const wait = dev.taskSet.enter(task);
      if (wait) await wait;
      if (task.aborted) out = 'ABORTED';
      else {
        const blocks = length / dev.blockSize;
        const release = ranged && blocks > 0 ? await dev.lockRange(BigInt(offset / dev.blockSize), blocks) : undefined;
        try {
          out = (await body(dev)) ?? undefined;
          if (task.aborted) out = 'ABORTED';
        } catch (err) {
          out = errnoToSense(err, op);
        } finally {
          release?.();
        }
      }
    } finally {
      this.leave(a, task);
    }
    this.record(a, direction, out === undefined ? bytes : 0, out, t0);
    return out;
  }

  /** A task for the LU's task set, counted in flight on the LU and the nexus. */
  private enter(a: Admitted, lun: number): Task {
    a.dev.stats.inFlight++;
    a.stats.inFlight++;
    return new Task(this.nexus.id, this.nextTag++ >>> 0, lun, 'simple');
  }

  private leave(a: Admitted, task: Task): void {
    a.stats.inFlight--;
    a.dev.stats.inFlight--;
    a.dev.taskSet.leave(task);
  }

  /** Records the operation on the LU and the nexus; passes the failure through. */
  private record<F extends BlockFailure | undefined>(
    a: Admitted | undefined,
    direction: 'read' | 'write' | 'none',
    bytes: number,
    failure: F,
    t0: number,
  ): F {
    const us = (performance.now() - t0) * 1000;
    const stats = a?.stats ?? this.host.nexusStats(this.nexus);
    stats?.recordBlock(direction, bytes, failure, us);
    a?.dev.stats.recordBlock(direction, bytes, failure, us);
    return failure;
  }
}
