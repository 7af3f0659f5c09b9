// Per-connection pool of READ buffers handed to the core as
// ScsiCommand.dataInBuffer. Measured with fio QD32 128 KiB sequential reads
// (bench/README.md): a fresh buffer per READ kept V8 in full collections every
// ~200 ms and malloc returning and faulting pages; reusing buffers cut server
// CPU per request about threefold.
//
// Ownership: acquire() lends a buffer; the connection gives it back with
// release() only once the socket's write callback for the reply's last byte
// has fired (or when no reply is written at all). The pool is bounded by a
// byte budget; when the budget is spent, acquire() returns undefined and the
// core allocates as before. After close() nothing is kept.

/** Smallest buffer handed out: a 512-byte read still gets a 4 KiB buffer. */
export const READ_POOL_MIN_BYTES = 4096;
/** Reads larger than this are not pooled (rare; the core allocates). */
export const READ_POOL_MAX_BYTES = 1024 * 1024;
/** Bytes one connection may hold in pooled buffers: 64 in flight x 128 KiB. */
export const READ_POOL_BUDGET_BYTES = 8 * 1024 * 1024;

export interface ReadBufferPoolOptions {
  minBytes?: number;
  maxBytes?: number;
  budgetBytes?: number;
}

export interface ReadBufferPoolStats {
  /** Bytes of every buffer the pool created and still owns (free + lent). */
  heldBytes: number;
  /** Buffers lent and not yet released. */
  lent: number;
  /** Buffers waiting in the free lists. */
  free: number;
}

export class ReadBufferPool {
  private readonly minBytes: number;
  private readonly maxBytes: number;
  private readonly budgetBytes: number;
  /** Free buffers by size class (a power of two). */
  private readonly free = new Map<number, Buffer[]>();
  /** Buffers lent out: guards against a double or foreign release. */
  private readonly lent = new Set<Buffer>();
  private heldBytes = 0;
  private closed = false;

  constructor(opts: ReadBufferPoolOptions = {}) {
    this.minBytes = opts.minBytes ?? READ_POOL_MIN_BYTES;
    this.maxBytes = opts.maxBytes ?? READ_POOL_MAX_BYTES;
    this.budgetBytes = opts.budgetBytes ?? READ_POOL_BUDGET_BYTES;
  }

  /** A buffer of at least `length` bytes, or undefined (too large, budget spent, closed). */
  acquire(length: number): Buffer | undefined {
    if (this.closed || length > this.maxBytes) return undefined;
    const size = sizeClass(Math.max(length, this.minBytes));
    let buf = this.free.get(size)?.pop();
    if (buf === undefined) {
      if (this.heldBytes + size > this.budgetBytes) this.evictFor(size);
      if (this.heldBytes + size > this.budgetBytes) return undefined;
      // allocUnsafeSlow: a buffer of its own, not a slice of Node's shared slab.
      buf = Buffer.allocUnsafeSlow(size);
      this.heldBytes += size;
    }
    this.lent.add(buf);
    return buf;
  }

  /** Gives a lent buffer back; its memory may be handed out again at once. */
  release(buf: Buffer): void {
    if (!this.lent.delete(buf)) return;
    if (this.closed) {
      this.heldBytes -= buf.length;
      return;
    }
    const list = this.free.get(buf.length);
    if (list) list.push(buf);
    else this.free.set(buf.length, [buf]);
  }

  /** Drops the free buffers; lent ones are dropped as they come back. */
  close(): void {
    this.closed = true;
    for (const list of this.free.values()) for (const b of list) this.heldBytes -= b.length;
    this.free.clear();
  }

  stats(): ReadBufferPoolStats {
    let free = 0;
    for (const list of this.free.values()) free += list.length;
    return { heldBytes: this.heldBytes, lent: this.lent.size, free };
  }

  /** The workload changed size: drop free buffers of other classes until `size` fits. */
  private evictFor(size: number): void {
    for (const list of this.free.values()) {
      while (list.length > 0 && this.heldBytes + size > this.budgetBytes) {
        this.heldBytes -= (list.pop() as Buffer).length;
      }
      if (this.heldBytes + size <= this.budgetBytes) return;
    }
  }
}

/** The power of two at or above n. */
function sizeClass(n: number): number {
  let s = 1;
  while (s < n) s *= 2;
  return s;
}
