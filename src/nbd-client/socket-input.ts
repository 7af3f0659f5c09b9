// A socket's incoming bytes, read into one buffer that is reused for every
// read (net.Socket's `onread` option) and handed to whoever reads the stream
// at the moment: the handshake reader, then the connection's reply reader.
// No 'data' events and no fresh buffer per read (docs/fuse.md "Performance":
// the 64 KiB chunk per read was a large part of the NBD client's garbage).
//
// A chunk given to the consumer is valid only during the call: its memory is
// overwritten by the next read. Bytes that arrive while nobody consumes (the
// hand-over from handshake to transmission) are copied and kept in order.

import type { OnReadOpts } from 'node:net';

/** One read takes at most this many bytes: two 128 KiB READ replies. */
export const RX_BUFFER_BYTES = 256 * 1024;

export class SocketInput {
  private consumer: ((chunk: Buffer) => void) | undefined;
  private held: Buffer[] = [];
  private readonly rx = Buffer.allocUnsafeSlow(RX_BUFFER_BYTES);

  /** The `onread` option for net.connect(). */
  readonly onread: OnReadOpts = {
    buffer: this.rx,
    callback: (n: number): boolean => {
      const chunk = this.rx.subarray(0, n);
      if (this.consumer) this.consumer(chunk);
      else this.held.push(Buffer.from(chunk));
      return true;
    },
  };

  /** Route later bytes (and any held ones, first) to `c`; undefined holds them. */
  setConsumer(c: ((chunk: Buffer) => void) | undefined): void {
    this.consumer = c;
    while (this.consumer === c && c && this.held.length > 0) c(this.held.shift()!);
  }
}
