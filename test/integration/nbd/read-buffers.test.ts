// Pooled READ buffers (src/util/buffer-pool.ts): the pool's bounds;
// a connection over a fake socket that takes a write's bytes only when it
// calls back (a buffer reused before its write callback shows as wrong data:
// releasing on write() instead fails this test); and end to end, mixed-size
// READs to a live server whose client stalls, every reply checked. (Loopback
// TCP buffers absorb most of a stall, so the last alone would not catch early
// reuse; the fake socket does.)
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { ScsiCore } from '../../../src/core/engine.js';
import { NbdConnection } from '../../../src/fabrics/nbd/connection.js';
import { BufferPool } from '../../../src/util/buffer-pool.js';
import { MemoryBackstore } from '../../unit/core/helpers.js';
import { encodeClientFlags, encodeInfoRequest, encodeOptionRequest, encodeRequest } from '../../../src/protocols/nbd/index.js';
import { Wire } from '../../helpers/nbd-wire.js';

describe('BufferPool (NBD READ buffers)', () => {
  it('hands out power-of-two buffers of at least the length, and reuses released ones', () => {
    const pool = new BufferPool({ minBytes: 4096, maxBytes: 65536, budgetBytes: 1 << 20 });
    const a = pool.tryLease(512)!;
    expect(a.length).toBe(4096);
    const b = pool.tryLease(5000)!;
    expect(b.length).toBe(8192);
    expect(b.buffer).not.toBe(a.buffer);
    pool.release(a);
    expect(pool.tryLease(4096)).toBe(a);
    expect(pool.tryLease(65537)).toBeUndefined();
    expect(pool.stats()).toMatchObject({ heldBytes: 4096 + 8192, lent: 2, free: 0 });
  });

  it('never holds more than the budget; beyond it acquire() declines', () => {
    const pool = new BufferPool({ minBytes: 4096, maxBytes: 65536, budgetBytes: 4 * 65536 });
    const lent = [1, 2, 3, 4].map(() => pool.tryLease(65536)!);
    expect(lent.every((b) => b.length === 65536)).toBe(true);
    expect(pool.tryLease(65536)).toBeUndefined();
    expect(pool.tryLease(4096)).toBeUndefined();
    expect(pool.stats().heldBytes).toBe(4 * 65536);
    // A free buffer of another size is dropped to make room.
    pool.release(lent[0]);
    const small = pool.tryLease(4096)!;
    expect(small.length).toBe(4096);
    expect(pool.stats()).toMatchObject({ heldBytes: 3 * 65536 + 4096, lent: 4, free: 0 });
  });

  it('a double or foreign release is ignored; close() drops everything', () => {
    const pool = new BufferPool({ budgetBytes: 1 << 20 });
    const a = pool.tryLease(4096)!;
    const b = pool.tryLease(4096)!;
    pool.release(a);
    pool.release(a);
    pool.release(Buffer.alloc(4096));
    expect(pool.stats()).toMatchObject({ heldBytes: 8192, lent: 1, free: 1 });
    pool.close();
    expect(pool.stats()).toMatchObject({ heldBytes: 4096, lent: 1, free: 0 });
    pool.release(b);
    expect(pool.stats()).toMatchObject({ heldBytes: 0, lent: 0, free: 0 });
    expect(pool.tryLease(4096)).toBeUndefined();
  });
});

const SIZE = 16 * 1024 * 1024;
const CHUNK = 128 * 1024;
let rt: LunkitRuntime;
let port: number;
/** What the export holds: every byte depends on its offset (and its 512-byte block). */
const image = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) image[i] = (i * 7 + (i >>> 9) * 13) & 0xff;

async function attach(structured: boolean): Promise<Wire> {
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const w = new Wire(sock);
  await w.read(18);
  sock.write(encodeClientFlags(3));
  if (structured) {
    sock.write(encodeOptionRequest(8));
    expect((await w.optionReply()).type).toBe(1);
  }
  sock.write(encodeOptionRequest(7, encodeInfoRequest({ exportName: 'rw', infos: [] })));
  for (;;) {
    const { type } = await w.optionReply();
    if (type === 1) break;
  }
  return w;
}

beforeAll(async () => {
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { ram: { type: 'ramdisk', size: '16M' } },
      nbd: { listen: ['127.0.0.1:0'], exports: { rw: { backstore: 'ram' } } },
    }),
  );
  port = rt.nbdAddresses()[0].port;
  const w = await attach(false);
  for (let off = 0; off < SIZE; off += CHUNK) {
    w.sock.write(encodeRequest({ flags: 0, type: 1, handle: BigInt(off), offset: BigInt(off), length: CHUNK }));
    w.sock.write(image.subarray(off, off + CHUNK));
  }
  for (let off = 0; off < SIZE; off += CHUNK) expect((await w.read(16)).readUInt32BE(4)).toBe(0);
  w.sock.destroy();
}, 30000);
afterAll(async () => {
  await rt?.stop(0);
});

/**
 * Sends `count` READs (sizes cycling through 4 KiB..256 KiB, offsets spread
 * over the image) while the client reads nothing for a while, so replies pile
 * up in the server's socket; then checks every reply against the image.
 */
async function slowReader(structured: boolean, count: number): Promise<void> {
  const w = await attach(structured);
  w.sock.pause();
  const sizes = [4096, 131072, 65536, 262144, 8192];
  const reqs: Array<{ offset: number; length: number }> = [];
  for (let i = 0; i < count; i++) {
    const length = sizes[i % sizes.length];
    const offset = ((i * 7919 * 4096) % (SIZE - length)) & ~4095;
    reqs.push({ offset, length });
    w.sock.write(encodeRequest({ flags: 0, type: 0, handle: BigInt(i), offset: BigInt(offset), length }));
  }
  await new Promise((r) => setTimeout(r, 500));
  w.sock.resume();
  for (let i = 0; i < count; i++) {
    const { offset, length } = reqs[i];
    let data: Buffer;
    if (structured) {
      const c = await w.chunk(BigInt(i));
      expect(c.type).toBe(1);
      expect(c.payload.readBigUInt64BE(0)).toBe(BigInt(offset));
      data = c.payload.subarray(8);
    } else {
      const h = await w.read(16);
      expect(h.readUInt32BE(4)).toBe(0);
      expect(h.readBigUInt64BE(8)).toBe(BigInt(i));
      data = await w.read(length);
    }
    expect(data.length).toBe(length);
    if (!data.equals(image.subarray(offset, offset + length))) throw new Error(`reply ${i} (offset ${offset}, ${length} bytes) holds other data`);
  }
  w.sock.destroy();
}

describe('pooled READ buffers over a live server', () => {
  it('simple replies: 300 READs answered to a stalled client all carry their own data', async () => {
    await slowReader(false, 300);
  }, 30000);

  it('structured replies: the same', async () => {
    await slowReader(true, 300);
  }, 30000);
});

/**
 * A socket whose "kernel" takes a write's bytes only when it calls the write
 * back, several milliseconds later: a buffer reused before its callback shows
 * up as wrong bytes on the wire.
 */
class SlowSocket extends Duplex {
  readonly wire: Buffer[] = [];
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  setNoDelay(): this {
    return this;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    setTimeout(() => {
      for (const c of chunks) this.wire.push(Buffer.from(c.chunk));
      cb();
    }, 3);
  }
}

describe('pooled READ buffers with a slow socket', () => {
  it('no buffer is reused before its write callback: 400 READs in flight all carry their data', async () => {
    const BS = 512;
    const store = new MemoryBackstore('slow', 8 * 1024 * 1024, BS);
    for (let i = 0; i < store.data.length; i++) store.data[i] = (i * 5 + (i >>> 9) * 11) & 0xff;
    const core = new ScsiCore();
    const device = core.createDevice(store, { name: 'slow' });
    const sock = new SlowSocket();
    const conn = new NbdConnection(
      sock as unknown as Socket,
      { core, fabric: { name: 'nbd' }, logger: {}, exports: () => new Map([['x', { device }]]) },
      { remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, connectionId: 1 },
    );
    conn.start();
    // Fixed newstyle, NO_ZEROES; NBD_OPT_EXPORT_NAME "x" answers size + flags (10 bytes).
    sock.push(encodeClientFlags(3));
    sock.push(encodeOptionRequest(1, Buffer.from('x')));
    const sizes = [4096, 131072, 65536, 262144, 8192, 512];
    const reqs: Array<{ offset: number; length: number }> = [];
    const COUNT = 400;
    for (let i = 0; i < COUNT; i++) {
      const length = sizes[i % sizes.length];
      const offset = ((i * 104729 * 512) % (store.size - length)) & ~511;
      reqs.push({ offset, length });
    }
    const wireBytes = (): number => sock.wire.reduce((n, b) => n + b.length, 0);
    const expected = 18 + 10 + reqs.reduce((n, r) => n + 16 + r.length, 0);
    // Requests go in once the export is attached (after the EXPORT_NAME reply).
    const deadline = Date.now() + 20000;
    while (wireBytes() < 28 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < COUNT; i++) {
      sock.push(encodeRequest({ flags: 0, type: 0, handle: BigInt(i), offset: BigInt(reqs[i].offset), length: reqs[i].length }));
    }
    while (wireBytes() < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const out = Buffer.concat(sock.wire);
    expect(out.length).toBe(expected);
    let at = 28;
    const seen = new Set<number>();
    for (let k = 0; k < COUNT; k++) {
      expect(out.readUInt32BE(at)).toBe(0x67446698);
      expect(out.readUInt32BE(at + 4)).toBe(0);
      const i = Number(out.readBigUInt64BE(at + 8));
      seen.add(i);
      const { offset, length } = reqs[i];
      const data = out.subarray(at + 16, at + 16 + length);
      if (!data.equals(store.data.subarray(offset, offset + length))) throw new Error(`reply ${i} (offset ${offset}, ${length} bytes) holds other data`);
      at += 16 + length;
    }
    expect(seen.size).toBe(COUNT);
    conn.destroy();
  }, 30000);
});
