// A minimal byte reader over a socket for NBD tests that drive the protocol
// by hand: wait for exactly n bytes, or one option reply, or one structured
// reply chunk.
import type { Socket } from 'node:net';
import { expect } from 'vitest';

export class Wire {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  closed = false;
  constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }
  async read(n: number): Promise<Buffer> {
    const deadline = Date.now() + 5000;
    while (this.buf.length < n) {
      if (this.closed) throw new Error('closed');
      if (Date.now() > deadline) throw new Error('timeout');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 100);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  /** One option reply: type and data. */
  async optionReply(): Promise<{ type: number; data: Buffer }> {
    const h = await this.read(20);
    return { type: h.readUInt32BE(12), data: await this.read(h.readUInt32BE(16)) };
  }
  /** One structured reply chunk: flags, type and payload. */
  async chunk(handle: bigint): Promise<{ flags: number; type: number; payload: Buffer }> {
    const h = await this.read(20);
    expect(h.readUInt32BE(0)).toBe(0x668e33ef);
    expect(h.readBigUInt64BE(8)).toBe(handle);
    return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), payload: await this.read(h.readUInt32BE(16)) };
  }
}
