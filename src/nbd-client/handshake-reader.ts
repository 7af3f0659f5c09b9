// Reads the server's side of the handshake from a socket: "give me exactly n
// bytes" as a promise. When negotiation ends, detach() hands the bytes that
// arrived after the last handshake message to the reply reader.

import type { Socket } from 'node:net';
import { ByteQueue } from '../protocols/byte-queue.js';
import { NbdClientError } from './errors.js';
import type { SocketInput } from './socket-input.js';

export class HandshakeReader {
  private readonly q = new ByteQueue();
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    // The socket reuses the chunk's memory: keep a copy (handshake messages are small).
    this.q.push(Buffer.from(chunk));
    this.pump();
  };
  private readonly onClose = (): void => {
    this.fail(new NbdClientError('ERR_NBD_DISCONNECTED', 'the server closed the connection during the handshake'));
  };
  private readonly onError = (err: Error): void => {
    this.fail(
      err instanceof NbdClientError
        ? err
        : new NbdClientError('ERR_NBD_DISCONNECTED', `connection error during the handshake: ${err.message}`, { cause: err }),
    );
  };

  constructor(
    private readonly sock: Socket,
    private readonly input: SocketInput,
  ) {
    input.setConsumer(this.onData);
    sock.on('close', this.onClose);
    sock.on('error', this.onError);
  }

  /** Resolve with exactly n bytes (a view or one copy). */
  read(n: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.pump();
    });
  }

  /** Fail the pending read (and every later one) with err. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    const w = this.want;
    this.want = undefined;
    w?.reject(err);
  }

  /** Stop listening; returns the bytes received beyond the handshake. */
  detach(): Buffer {
    this.input.setConsumer(undefined);
    this.sock.off('close', this.onClose);
    this.sock.off('error', this.onError);
    return Buffer.from(this.q.take(this.q.buffered));
  }

  private pump(): void {
    const w = this.want;
    if (w === undefined || this.q.buffered < w.n) return;
    this.want = undefined;
    w.resolve(this.q.take(w.n));
  }
}
