// Per-connection data buffers, shared by the fabrics: Data-In memory a READ
// is read into (ScsiCommand.dataInBuffer, the block door's `into`) and the
// buffer a WRITE's Data-Out lands in. Measured with fio QD32 128 KiB
// sequential reads over NBD (bench/README.md): a fresh buffer per command
// kept V8 in full collections every ~200 ms and malloc returning and
// faulting pages; reusing buffers cut server CPU per request about
// threefold, and iSCSI's sequential reads and writes about halved theirs.
//
// Ownership: lease()/tryLease() lend a buffer; it goes back with release()
// only when nothing refers to it any more: for Data-In, once the socket's
// write callback for the last PDU carrying it has fired (or when nothing was
// written); for Data-Out, once submit() has resolved (or the command ended
// without reaching the core). Buffers are pooled by power-of-two size class
// within a byte budget; beyond the budget or the largest class, lease()
// allocates a buffer the pool does not keep (release() ignores it) and
// tryLease() returns undefined (the core then allocates). After close()
// nothing is kept.

/**
 * Smallest buffer handed out. 512, not 4096: what an idle connection keeps in
 * its pool is the buffer of its last small command (INQUIRY, REPORT LUNS,
 * READ CAPACITY), and a thousand sessions each keeping 4 KiB for a 96-byte
 * INQUIRY was an eighth of their memory (bench/sessions). Block-sized
 * transfers still get their own size class.
 */
export const POOL_MIN_BYTES = 512;
/** Larger transfers are not pooled (rare; allocated per command). */
export const POOL_MAX_BYTES = 1024 * 1024;
/** Bytes one connection may hold in pooled buffers: 64 in flight x 128 KiB. */
export const POOL_BUDGET_BYTES = 8 * 1024 * 1024;

export interface BufferPoolOptions {
  minBytes?: number;
  maxBytes?: number;
  budgetBytes?: number;
}

export interface BufferPoolStats {
  /** Bytes of every buffer the pool created and still owns (free + lent). */
  heldBytes: number;
  /** Buffers lent and not yet released. */
  lent: number;
  /** Buffers waiting in the free lists. */
  free: number;
  /** lease() and successful tryLease() calls so far (a refused write makes none). */
  leases: number;
  /** Buffers allocated so far, pooled or not (a warm pool allocates none). */
  allocations: number;
}

export class BufferPool {
  private readonly minBytes: number;
  private readonly maxBytes: number;
  private readonly budgetBytes: number;
  /** Free buffers by size class (a power of two). */
  private readonly free = new Map<number, Buffer[]>();
  /** Buffers lent out: guards against a double or foreign release. */
  private readonly lent = new Set<Buffer>();
  private heldBytes = 0;
  /** Memory for bytes that are read only to be dropped; see scratch(). */
  private scratchBuffer: Buffer | undefined;
  private leases = 0;
  private allocations = 0;
  private closed = false;

  constructor(opts: BufferPoolOptions = {}) {
    this.minBytes = opts.minBytes ?? POOL_MIN_BYTES;
    this.maxBytes = opts.maxBytes ?? POOL_MAX_BYTES;
    this.budgetBytes = opts.budgetBytes ?? POOL_BUDGET_BYTES;
  }

  /** A pooled buffer of at least `length` bytes, or undefined (too large, budget spent, closed). */
  tryLease(length: number): Buffer | undefined {
    if (this.closed || length > this.maxBytes) return undefined;
    const size = sizeClass(Math.max(length, this.minBytes));
    let buf = this.free.get(size)?.pop();
    if (buf === undefined) {
      if (this.heldBytes + size > this.budgetBytes) this.evictFor(size);
      if (this.heldBytes + size > this.budgetBytes) return undefined;
      // allocUnsafeSlow: a buffer of its own, not a slice of Node's shared slab.
      buf = Buffer.allocUnsafeSlow(size);
      this.heldBytes += size;
      this.allocations++;
    }
    this.lent.add(buf);
    this.leases++;
    return buf;
  }

  /** A buffer of at least `length` bytes: pooled when possible, else one of its own. */
  lease(length: number): Buffer {
    const buf = this.tryLease(length);
    if (buf !== undefined) return buf;
    this.leases++;
    this.allocations++;
    return Buffer.allocUnsafeSlow(length);
  }

  /** Gives a lent buffer back; its memory may be handed out again at once. Unknown buffers are ignored. */
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

  /**
   * `length` bytes of one per-connection buffer for data that is only passed
   * through: bytes read to be dropped (a refused write's unsolicited data,
   * bytes beyond what the core uses), or a write's immediate data on its way
   * to the command's buffer. The next call overwrites them, so the caller
   * must be done with them (or copy them) before the next PDU. Never counted
   * as a lease.
   */
  scratch(length: number): Buffer {
    if (this.scratchBuffer === undefined || this.scratchBuffer.length < length) {
      this.scratchBuffer = Buffer.allocUnsafeSlow(Math.max(length, this.minBytes));
    }
    return this.scratchBuffer.subarray(0, length);
  }

  /** Is `buf` (a view of) the scratch memory? */
  isScratch(buf: Buffer): boolean {
    return this.scratchBuffer !== undefined && buf.buffer === this.scratchBuffer.buffer;
  }

  /** Drops the free buffers; lent ones are dropped as they come back. */
  close(): void {
    this.closed = true;
    for (const list of this.free.values()) for (const b of list) this.heldBytes -= b.length;
    this.free.clear();
    this.scratchBuffer = undefined;
  }

  stats(): BufferPoolStats {
    let free = 0;
    for (const list of this.free.values()) free += list.length;
    return { heldBytes: this.heldBytes, lent: this.lent.size, free, leases: this.leases, allocations: this.allocations };
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
