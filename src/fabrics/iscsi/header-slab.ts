// PDU header memory for one iSCSI connection (see HeaderSlab). The data
// buffers come from the shared per-connection pool (src/util/buffer-pool.ts).

/** Largest header slab: room for 340 plain 48-byte headers. */
export const HEADER_SLAB_BYTES = 16 * 1024;
/**
 * First slab of a connection. Slabs double up to HEADER_SLAB_BYTES as they
 * are spent, so a busy connection soon carves from 16 KiB slabs while an idle
 * one (a login and a few commands: most of a thousand sessions) holds 1 KiB,
 * not 16 (bench/sessions).
 */
export const HEADER_SLAB_FIRST_BYTES = 1024;

/**
 * PDU headers (BHS + AHS) carved one after the other from a slab, so sending
 * a PDU allocates no header buffer of its own. A slice is never handed out
 * twice: a header may sit in the socket's queue for as long as it likes, and
 * a spent slab becomes garbage once the writes that refer to it are done.
 * (Reusing one header buffer per connection would need a write callback per
 * PDU before the next encode; carving gives the saving without that risk.)
 */
export class HeaderSlab {
  /** Allocated at the first take(). */
  private slab: Buffer | undefined;
  private used = 0;

  /** `length` fresh bytes (contents undefined; encodeBhs zeroes them). */
  take(length: number): Buffer {
    if (length > HEADER_SLAB_BYTES) return Buffer.allocUnsafe(length);
    let slab = this.slab;
    if (slab === undefined || this.used + length > slab.length) {
      const size = slab === undefined ? HEADER_SLAB_FIRST_BYTES : Math.min(slab.length * 2, HEADER_SLAB_BYTES);
      slab = Buffer.allocUnsafeSlow(Math.max(size, length));
      this.slab = slab;
      this.used = 0;
    }
    const out = slab.subarray(this.used, this.used + length);
    // Keep slices 8-byte aligned (fast fill/copy).
    this.used += (length + 7) & ~7;
    return out;
  }
}
