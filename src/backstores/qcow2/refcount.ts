// Host cluster management (== Host cluster management ==): the refcount
// table (kept whole in memory), refcount blocks (bounded cache), allocation
// of free clusters and growth of the refcount table.
//
// Every change runs under one mutex and changes the cached block; the changed
// bytes are written by writeDirty(), which the Syncer runs ahead of every
// fdatasync, so a refcount is in the file and durable before anything a
// caller writes after its sync(). A dirty block stays pinned in the cache
// until written. Ordering for crash safety (never a reference to a cluster
// whose refcount is not durable):
//   - a new refcount block is written and fdatasync'd before the table entry
//     that points to it is written;
//   - a new refcount table (with its blocks) is written and synced before the
//     header points to it, and the header is synced before the old table is
//     freed;
//   - callers sync after allocate() before writing an L1/L2 entry that points
//     at the cluster, and sync after removing such an entry before free().

import { LunkitError } from '../../protocols/errors.js';
import { HDR_REFTABLE_OFFSET, maxRefcount, readRefcount, refcountByteRange, writeRefcount } from './format.js';
import { Mutex, fdatasync, pwriteFull } from './io.js';
import { TableCache } from './table-cache.js';

export interface RefcountInit {
  fd: () => number;
  clusterBits: number;
  refcountOrder: number;
  tableOffset: number;
  tableClusters: number;
  /** The refcount table as read from the file. */
  table: Buffer;
  fileSize: number;
  maxBlocks: number;
  /** I/O on the event loop (io.ts: memory file systems). */
  syncIo?: boolean;
}

export class Refcounts {
  private readonly cs: number;
  private readonly order: number;
  /** Refcount entries per block. */
  private readonly perBlock: number;
  private readonly blocks: TableCache;
  private readonly mutex = new Mutex();
  private table: Buffer;
  private tableOffset: number;
  private tableClusters: number;
  /** No free cluster below this index (a hint, lowered by free()). */
  private freeHint = 0;
  /** One past the highest cluster index known in use or inside the file. */
  private endCluster: number;
  /** Refcount block byte ranges changed in memory, not yet written; each block stays pinned until written. */
  private dirty = new Map<number, [number, number]>();

  constructor(private readonly init: RefcountInit) {
    this.cs = 2 ** init.clusterBits;
    this.order = init.refcountOrder;
    this.perBlock = (this.cs * 8) / (1 << this.order);
    this.blocks = new TableCache(init.fd, this.cs, Math.max(4, init.maxBlocks), init.syncIo);
    this.table = init.table;
    this.tableOffset = init.tableOffset;
    this.tableClusters = init.tableClusters;
    this.endCluster = Math.ceil(init.fileSize / this.cs);
  }

  get clusterSize(): number {
    return this.cs;
  }

  /** The refcount of the cluster holding host offset `offset`. */
  get(offset: number): Promise<number> {
    return this.mutex.run(() => this.getLocked(Math.floor(offset / this.cs)));
  }

  /** Allocate `count` contiguous clusters with refcount 1; resolves with the host offset of the first. */
  allocate(count = 1): Promise<number> {
    return this.mutex.run(async () => {
      const first = await this.findFree(count, new Set());
      const avoid = new Set<number>();
      for (let i = 0; i < count; i++) avoid.add(first + i);
      for (let i = 0; i < count; i++) await this.setLocked(first + i, 1, avoid);
      return first * this.cs;
    });
  }

  /**
   * Write the changed refcount entries. The Syncer runs this before every
   * fdatasync, so an update is in the file (and durable) before anything the
   * caller writes after its sync() can point at the cluster.
   */
  writeDirty(): Promise<void> {
    return this.mutex.run(() => this.writeDirtyLocked());
  }

  private async writeDirtyLocked(): Promise<void> {
    if (this.dirty.size === 0) return;
    const batch = this.dirty;
    this.dirty = new Map();
    try {
      for (const [blockOff, [s, e]] of batch) {
        const block = this.blocks.peek(blockOff)!;
        await pwriteFull(this.init.fd(), block.subarray(s, e), blockOff + s, this.init.syncIo);
      }
    } finally {
      for (const blockOff of batch.keys()) this.blocks.release(blockOff);
    }
  }

  /** Our own ordering point (under the mutex): changed entries written, then fdatasync. */
  private async syncLocked(): Promise<void> {
    await this.writeDirtyLocked();
    await fdatasync(this.init.fd(), this.init.syncIo);
  }

  /** Decrease the refcount of each cluster (offsets cluster-aligned) by one. */
  free(offsets: number[]): Promise<void> {
    return this.mutex.run(async () => {
      for (const off of offsets) {
        const idx = Math.floor(off / this.cs);
        const cur = await this.getLocked(idx);
        if (cur === 0) continue; // already free: a leak repaired twice is harmless, an underflow is not
        await this.setLocked(idx, cur - 1, new Set());
        if (cur === 1 && idx < this.freeHint) this.freeHint = idx;
      }
    });
  }

  private blockOffsetOf(tableIndex: number): number {
    if (tableIndex >= this.table.length / 8) return 0;
    return Number(this.table.readBigUInt64BE(tableIndex * 8) & 0xfffffffffffffe00n);
  }

  private async getLocked(idx: number): Promise<number> {
    const blockOff = this.blockOffsetOf(Math.floor(idx / this.perBlock));
    if (blockOff === 0) return 0;
    const cached = this.blocks.peek(blockOff);
    if (cached) return readRefcount(cached, idx % this.perBlock, this.order);
    const block = await this.blocks.acquire(blockOff);
    try {
      return readRefcount(block, idx % this.perBlock, this.order);
    } finally {
      this.blocks.release(blockOff);
    }
  }

  /** First index of `count` free clusters (refcount 0, not in avoid), from the hint on. */
  private async findFree(count: number, avoid: Set<number>): Promise<number> {
    let start = this.freeHint;
    let run = 0;
    for (let idx = this.freeHint; ; idx++) {
      const free = idx !== 0 && !avoid.has(idx) && (await this.getLocked(idx)) === 0;
      if (!free) {
        // Clusters in use right from the hint on move the hint forward.
        if (idx === this.freeHint && !avoid.has(idx)) this.freeHint = idx + 1;
        run = 0;
        start = idx + 1;
        continue;
      }
      run++;
      if (run === count) return start;
    }
  }

  /** Set a refcount, creating its refcount block (and growing the table) when needed. */
  private async setLocked(idx: number, value: number, avoid: Set<number>): Promise<void> {
    if (value > maxRefcount(this.order)) throw new LunkitError('EIO', `qcow2 refcount overflow for cluster ${idx}`);
    const t = Math.floor(idx / this.perBlock);
    if (t >= this.table.length / 8) await this.growTable(t, avoid);
    let blockOff = this.blockOffsetOf(t);
    if (blockOff === 0) blockOff = await this.newBlock(t, avoid);
    const block = await this.blocks.acquire(blockOff);
    const within = idx % this.perBlock;
    writeRefcount(block, within, this.order, value);
    const [s, e] = refcountByteRange(within, this.order);
    const range = this.dirty.get(blockOff);
    if (range) {
      range[0] = Math.min(range[0], s);
      range[1] = Math.max(range[1], e);
      this.blocks.release(blockOff); // the dirty entry holds its own pin
    } else {
      this.dirty.set(blockOff, [s, e]); // keeps the pin until written
    }
    if (value > 0 && idx + 1 > this.endCluster) this.endCluster = idx + 1;
  }

  /**
   * A refcount block for table index t, placed inside the range it covers so
   * it counts itself (every cluster of that range is free: it had no block).
   */
  private async newBlock(t: number, avoid: Set<number>): Promise<number> {
    let x = t * this.perBlock;
    while (avoid.has(x) || x === 0) x++;
    const block = Buffer.alloc(this.cs);
    writeRefcount(block, x % this.perBlock, this.order, 1);
    const off = x * this.cs;
    await pwriteFull(this.init.fd(), block, off, this.init.syncIo);
    await this.syncLocked();
    this.table.writeBigUInt64BE(BigInt(off), t * 8);
    await pwriteFull(this.init.fd(), this.table.subarray(t * 8, t * 8 + 8), this.tableOffset + t * 8, this.init.syncIo);
    if (x + 1 > this.endCluster) this.endCluster = x + 1;
    return off;
  }

  /** Move the refcount table to a larger one at the end of the file covering index `need`. */
  private async growTable(need: number, avoid: Set<number>): Promise<void> {
    const cs = this.cs;
    const oldEntries = this.table.length / 8;
    let start = this.endCluster;
    for (const a of avoid) start = Math.max(start, a + 1);
    let n = Math.max(this.tableClusters * 2, Math.ceil(((need + 1) * 8) / cs));
    let newBlocks: number[] = [];
    for (;;) {
      // Table indexes of the clusters [start, start + n + newBlocks.length) that have no block.
      const end = start + n + newBlocks.length;
      const missing: number[] = [];
      for (let t = Math.floor(start / this.perBlock); t <= Math.floor((end - 1) / this.perBlock); t++) {
        if (t >= oldEntries || this.blockOffsetOf(t) === 0) missing.push(t);
      }
      const maxT = Math.max(need, ...missing);
      if ((maxT + 1) * 8 > n * cs) {
        n = Math.ceil(((maxT + 1) * 8) / cs);
        continue;
      }
      if (missing.length === newBlocks.length) {
        newBlocks = missing;
        break;
      }
      newBlocks = missing.length > newBlocks.length ? missing : newBlocks;
    }
    const total = n + newBlocks.length;
    const tableAt = start;
    const blocksAt = start + n;
    // Build the new blocks: each counts the clusters of [start, start + total) in its range.
    const fd = this.init.fd();
    const newTable = Buffer.alloc(n * cs);
    this.table.copy(newTable);
    for (let i = 0; i < newBlocks.length; i++) {
      const t = newBlocks[i];
      const block = Buffer.alloc(cs);
      for (let c = Math.max(start, t * this.perBlock); c < Math.min(start + total, (t + 1) * this.perBlock); c++) {
        writeRefcount(block, c % this.perBlock, this.order, 1);
      }
      const off = (blocksAt + i) * cs;
      await pwriteFull(fd, block, off, this.init.syncIo);
      newTable.writeBigUInt64BE(BigInt(off), t * 8);
    }
    // Clusters of the new region whose range already has a block: count them there.
    for (let c = start; c < start + total; c++) {
      const t = Math.floor(c / this.perBlock);
      if (!newBlocks.includes(t)) await this.setLocked(c, 1, avoid);
    }
    await pwriteFull(fd, newTable, tableAt * cs, this.init.syncIo);
    await this.syncLocked();
    const hdr = Buffer.alloc(12);
    hdr.writeBigUInt64BE(BigInt(tableAt * cs), 0);
    hdr.writeUInt32BE(n, 8);
    await pwriteFull(fd, hdr, HDR_REFTABLE_OFFSET, this.init.syncIo);
    await this.syncLocked();
    const oldOffset = this.tableOffset;
    const oldClusters = this.tableClusters;
    this.table = newTable;
    this.tableOffset = tableAt * cs;
    this.tableClusters = n;
    if (start + total > this.endCluster) this.endCluster = start + total;
    for (let i = 0; i < oldClusters; i++) {
      const idx = oldOffset / cs + i;
      const cur = await this.getLocked(idx);
      if (cur > 0) await this.setLocked(idx, cur - 1, avoid);
      if (cur === 1 && idx < this.freeHint) this.freeHint = idx;
    }
  }
}
