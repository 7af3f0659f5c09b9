// Pooled WRITE payloads (src/util/buffer-pool.ts): a payload that straddles
// socket chunks is copied into a pooled buffer, which goes back only once the
// block operation has settled. A backstore that copies a write's bytes only
// some milliseconds after it was called shows a buffer reused too early as
// wrong data in the store (releasing when execute() starts fails this test).
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import { NbdConnection } from '../../../src/fabrics/nbd/connection.js';
import { MemoryBackstore } from '../../unit/core/helpers.js';
import { encodeClientFlags, encodeOptionRequest, encodeRequest } from '../../../src/protocols/nbd/index.js';

class LateWriteBackstore extends MemoryBackstore {
  private n = 0;
  override async write(buf: Buffer, offset: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 1 + (this.n++ % 7)));
    buf.copy(this.data, offset);
  }
}

class WireSocket extends Duplex {
  readonly wire: Buffer[] = [];
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  setNoDelay(): this {
    return this;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.wire.push(Buffer.from(chunk));
    cb();
  }
}

describe('pooled WRITE payloads', () => {
  it('a payload buffer is reused only after its write is done: 300 WRITEs across chunk boundaries all land', async () => {
    const store = new LateWriteBackstore('late', 32 * 1024 * 1024, 512);
    const core = new ScsiCore();
    const device = core.createDevice(store, { name: 'late' });
    const sock = new WireSocket();
    const conn = new NbdConnection(
      sock as unknown as Socket,
      { core, fabric: { name: 'nbd' }, logger: {}, exports: () => new Map([['x', { device }]]) },
      { remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, connectionId: 1 },
    );
    conn.start();
    sock.push(encodeClientFlags(3));
    sock.push(encodeOptionRequest(1, Buffer.from('x')));
    const wireBytes = (): number => sock.wire.reduce((n, b) => n + b.length, 0);
    const deadline = Date.now() + 20000;
    while (wireBytes() < 28 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    // Distinct data per write; sizes cycle so payloads start at every kind of offset in a chunk.
    const sizes = [131072, 4096, 65536, 12288, 262144];
    const expected = Buffer.alloc(store.size);
    const stream: Buffer[] = [];
    const COUNT = 300;
    let offset = 0;
    for (let i = 0; i < COUNT; i++) {
      const length = sizes[i % sizes.length];
      const data = Buffer.alloc(length, (i % 251) + 1);
      data.writeUInt32BE(i, 0);
      data.copy(expected, offset);
      stream.push(encodeRequest({ flags: 0, type: 1, handle: BigInt(i), offset: BigInt(offset), length }), data);
      offset += length;
    }
    // Fed in 64 KiB chunks, as a TCP socket delivers them: most payloads straddle two or more.
    const all = Buffer.concat(stream);
    for (let at = 0; at < all.length; at += 65536) sock.push(all.subarray(at, at + 65536));
    while (wireBytes() < 28 + COUNT * 16 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(wireBytes()).toBe(28 + COUNT * 16);
    const out = Buffer.concat(sock.wire);
    for (let at = 28; at < out.length; at += 16) expect(out.readUInt32BE(at + 4)).toBe(0);
    expect(store.data.equals(expected)).toBe(true);
    conn.destroy();
  }, 30000);
});
