// PDU header memory for one iSCSI connection (see HeaderSlab). The data
// buffers come from the shared per-connection pool (src/util/buffer-pool.ts).

/** Bytes of one header slab: room for 340 plain 48-byte headers. */
export const HEADER_SLAB_BYTES = 16 * 1024;

/**
 * PDU headers (BHS + AHS) carved one after the other from a slab, so sending
 * a PDU allocates no header buffer of its own. A slice is never handed out
 * twice: a header may sit in the socket's queue for as long as it likes, and
 * a spent slab becomes garbage once the writes that refer to it are done.
 * (Reusing one header buffer per connection would need a write callback per
 * PDU before the next encode; carving gives the saving without that risk.)
 */
export class HeaderSlab {
  private slab = Buffer.allocUnsafeSlow(HEADER_SLAB_BYTES);
  private used = 0;

  /** `length` fresh bytes (contents undefined; encodeBhs zeroes them). */
  take(length: number): Buffer {
    if (length > HEADER_SLAB_BYTES) return Buffer.allocUnsafe(length);
    if (this.used + length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(HEADER_SLAB_BYTES);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + length);
    // Keep slices 8-byte aligned (fast fill/copy).
    this.used += (length + 7) & ~7;
    return out;
  }
}
