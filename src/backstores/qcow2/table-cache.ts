// A bounded LRU of cluster-sized metadata tables (L2 tables, refcount
// blocks), keyed by host offset. It is write-through: callers change a cached
// buffer and write the changed bytes to the file before they release it, so
// evicting a table only drops a clean copy. A table in use is pinned and never
// evicted (a reload from the file could otherwise miss a write in flight).
// Concurrent loads of one table share one read.

import { preadFull } from './io.js';

interface Slot {
  buf: Buffer;
  pins: number;
}

export class TableCache {
  private readonly slots = new Map<number, Slot>(); // Map order = LRU order (oldest first)
  private readonly loading = new Map<number, Promise<Slot>>();

  constructor(
    private readonly fd: () => number,
    private readonly tableBytes: number,
    private readonly maxTables: number,
    /** Load on the event loop (io.ts: memory file systems). */
    private readonly syncIo = false,
  ) {}

  /** The cached table at offset, without loading or pinning (for synchronous lookups). */
  peek(offset: number): Buffer | undefined {
    const slot = this.slots.get(offset);
    if (!slot) return undefined;
    this.slots.delete(offset);
    this.slots.set(offset, slot);
    return slot.buf;
  }

  /** Load (or find) and pin the table; pair with release(). */
  async acquire(offset: number): Promise<Buffer> {
    let slot = this.slots.get(offset);
    if (!slot) {
      let p = this.loading.get(offset);
      if (!p) {
        p = this.load(offset);
        this.loading.set(offset, p);
      }
      const loaded = await p;
      // Evicted before we pinned it and loaded again by someone else: use theirs.
      slot = this.slots.get(offset) ?? loaded;
    }
    slot.pins++;
    this.slots.delete(offset);
    this.slots.set(offset, slot);
    return slot.buf;
  }

  release(offset: number): void {
    const slot = this.slots.get(offset);
    if (slot && slot.pins > 0) slot.pins--;
    this.evict();
  }

  /** Put a table just created (its bytes already in buf), pinned; pair with release(). */
  insertPinned(offset: number, buf: Buffer): void {
    const old = this.slots.get(offset);
    if (old) {
      buf.copy(old.buf);
      old.pins++;
      return;
    }
    this.slots.set(offset, { buf, pins: 1 });
  }

  /** Forget a table whose cluster was freed. */
  forget(offset: number): void {
    const slot = this.slots.get(offset);
    if (slot && slot.pins === 0) this.slots.delete(offset);
  }

  private async load(offset: number): Promise<Slot> {
    try {
      const buf = Buffer.alloc(this.tableBytes);
      await preadFull(this.fd(), buf, offset, this.syncIo);
      const existing = this.slots.get(offset);
      if (existing) return existing;
      const slot = { buf, pins: 0 };
      this.slots.set(offset, slot);
      return slot;
    } finally {
      this.loading.delete(offset);
    }
  }

  private evict(): void {
    if (this.slots.size <= this.maxTables) return;
    for (const [off, slot] of this.slots) {
      if (this.slots.size <= this.maxTables) return;
      if (slot.pins === 0) this.slots.delete(off);
    }
  }
}
