// The receive side of every framer (iSCSI PDUs, NBD options, requests and
// replies): a queue of the chunks a socket delivered, from which a framer
// peeks header fields and takes whole messages. A message inside one chunk
// comes out as a view (no copy); only one that straddles chunks is copied,
// once, into a Buffer of exactly its size (STYLE.md §11).
//
// Views share memory with the pushed chunks: the caller must not reuse a
// pushed chunk's memory while delivered messages are alive (net.Socket chunks
// are fresh Buffers, so this holds for sockets).

const EMPTY: Buffer = Buffer.alloc(0);

export class ByteQueue {
  // Pending input: chunks[head..], with the first `offset` bytes of
  // chunks[head] already consumed; `buffered` bytes in all.
  private chunks: Buffer[] = [];
  private head = 0;
  private offset = 0;
  buffered = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.buffered = 0;
  }

  /** The byte `i` positions ahead, without consuming (i < buffered). */
  byteAt(i: number): number {
    let idx = this.head;
    let pos = this.offset + i;
    while (pos >= this.chunks[idx].length) {
      pos -= this.chunks[idx].length;
      idx++;
    }
    return this.chunks[idx][pos];
  }

  /** Big-endian u32 `i` positions ahead, without consuming. */
  u32At(i: number): number {
    return ((this.byteAt(i) << 24) | (this.byteAt(i + 1) << 16) | (this.byteAt(i + 2) << 8) | this.byteAt(i + 3)) >>> 0;
  }

  /**
   * Consume `n` bytes (n <= buffered): a view if they lie in one chunk, else
   * one copy. `into` is asked only when they straddle chunks: a Buffer of
   * exactly n bytes to copy them into (the place they are going anyway)
   * instead of a new one; undefined, or a wrong size, means a new one.
   */
  take(n: number, into?: () => Buffer | undefined): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head];
    const avail = first.length - this.offset;
    let out: Buffer;
    if (avail >= n) {
      out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.advance();
    } else {
      const target = into?.();
      out = target !== undefined && target.length === n ? target : Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[this.head];
        const k = Math.min(c.length - this.offset, n - filled);
        c.copy(out, filled, this.offset, this.offset + k);
        filled += k;
        this.offset += k;
        if (this.offset === c.length) this.advance();
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Drop up to `n` bytes without copying; returns how many were dropped. */
  discard(n: number): number {
    let left = Math.min(n, this.buffered);
    const dropped = left;
    while (left > 0) {
      const c = this.chunks[this.head];
      const k = Math.min(c.length - this.offset, left);
      this.offset += k;
      left -= k;
      if (this.offset === c.length) this.advance();
    }
    this.buffered -= dropped;
    return dropped;
  }

  private advance(): void {
    this.offset = 0;
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= 64) {
      // Compact now and then so the array does not grow without bound.
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
