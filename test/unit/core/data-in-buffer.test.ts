// ScsiCommand.dataInBuffer: a READ fills the fabric's memory and answers with a
// view of it; residuals cut the view; failures and too-small buffers fall back.
import { describe, expect, it } from 'vitest';
import type { ScsiCommand, ScsiResponse } from '../../../src/core/types.js';
import { errnoError, harness, read10, senseOf, type Harness } from './helpers.js';
import type { LoopbackNexus } from '../../../src/fabrics/loopback/index.js';

const BS = 512;

/** Every byte of block i is distinct from its neighbours: i*3 + offset. */
function fill(h: Harness): void {
  for (let i = 0; i < h.store.data.length; i++) h.store.data[i] = (i * 3 + (i >> 9)) & 0xff;
}

function submit(h: Harness, n: LoopbackNexus, cdb: number[], expectedLength: number, dataInBuffer?: Buffer): Promise<ScsiResponse> {
  const cmd: ScsiCommand = {
    nexus: n.handle,
    lun: 0,
    cdb: Buffer.from(cdb),
    tag: 100,
    attr: 'simple',
    expectedLength,
    direction: 'read',
    dataInBuffer,
  };
  return h.core.submit(cmd);
}

describe('READ into a caller-supplied Data-In buffer', () => {
  it('answers with a view of the supplied memory holding the data', async () => {
    const h = harness();
    fill(h);
    const n = await h.connect();
    const buf = Buffer.alloc(8 * BS, 0xee);
    const r = await submit(h, n, read10(4, 8), 8 * BS, buf);
    expect(r.status).toBe(0);
    expect(r.dataIn!.buffer).toBe(buf.buffer);
    expect(r.dataIn!.byteOffset).toBe(buf.byteOffset);
    expect(r.dataIn!.length).toBe(8 * BS);
    expect(r.dataIn!.equals(h.store.data.subarray(4 * BS, 12 * BS))).toBe(true);
    expect(buf.equals(h.store.data.subarray(4 * BS, 12 * BS))).toBe(true);
  });

  it('a larger buffer is used for its first bytes only; the rest is untouched', async () => {
    const h = harness();
    fill(h);
    const n = await h.connect();
    const buf = Buffer.alloc(16 * BS, 0xee);
    const r = await submit(h, n, read10(0, 2), 2 * BS, buf);
    expect(r.dataIn!.buffer).toBe(buf.buffer);
    expect(r.dataIn!.length).toBe(2 * BS);
    expect(r.dataIn!.equals(h.store.data.subarray(0, 2 * BS))).toBe(true);
    expect(buf.subarray(2 * BS).every((b) => b === 0xee)).toBe(true);
  });

  it('expected length below the CDB (overflow) cuts the view; above it (underflow) reports the residual', async () => {
    const h = harness();
    fill(h);
    const n = await h.connect();
    const buf = Buffer.alloc(8 * BS);
    const over = await submit(h, n, read10(10, 4), 3 * BS, buf);
    expect(over).toMatchObject({ status: 0, residualKind: 'overflow', residualCount: BS });
    expect(over.dataIn!.buffer).toBe(buf.buffer);
    expect(over.dataIn!.length).toBe(3 * BS);
    expect(over.dataIn!.equals(h.store.data.subarray(10 * BS, 13 * BS))).toBe(true);
    const under = await submit(h, n, read10(10, 2), 8 * BS, buf);
    expect(under).toMatchObject({ status: 0, residualKind: 'underflow', residualCount: 6 * BS });
    expect(under.dataIn!.length).toBe(2 * BS);
    expect(under.dataIn!.equals(h.store.data.subarray(10 * BS, 12 * BS))).toBe(true);
  });

  it('a buffer smaller than the transfer is not used: the core allocates', async () => {
    const h = harness();
    fill(h);
    const n = await h.connect();
    const small = Buffer.alloc(4 * BS, 0xee);
    const r = await submit(h, n, read10(0, 5), 5 * BS, small);
    expect(r.status).toBe(0);
    expect(r.dataIn!.buffer).not.toBe(small.buffer);
    expect(r.dataIn!.equals(h.store.data.subarray(0, 5 * BS))).toBe(true);
    expect(small.every((b) => b === 0xee)).toBe(true);
  });

  it('a failing read answers CHECK CONDITION and no data', async () => {
    const h = harness();
    const n = await h.connect();
    const buf = Buffer.alloc(4 * BS);
    h.store.failNext = errnoError('EIO');
    const r = await submit(h, n, read10(0, 4), 4 * BS, buf);
    expect(r.status).toBe(2);
    expect(r.dataIn).toBeUndefined();
    expect(senseOf(r.sense)).toMatchObject({ key: 3, asc: 0x11 });
  });

  it('an out-of-range READ answers without touching the buffer', async () => {
    const h = harness({ size: 64 * BS });
    const n = await h.connect();
    const buf = Buffer.alloc(4 * BS, 0xee);
    const r = await submit(h, n, read10(62, 4), 4 * BS, buf);
    expect(r.status).toBe(2);
    expect(senseOf(r.sense)).toMatchObject({ key: 5, asc: 0x21 });
    expect(buf.every((b) => b === 0xee)).toBe(true);
  });

  it('non-READ Data-In commands ignore the buffer', async () => {
    const h = harness();
    const n = await h.connect();
    const buf = Buffer.alloc(4096, 0xee);
    const r = await submit(h, n, [0x12, 0, 0, 0, 96, 0], 96, buf);
    expect(r.status).toBe(0);
    expect(r.dataIn!.buffer).not.toBe(buf.buffer);
    expect(buf.every((b) => b === 0xee)).toBe(true);
  });
});
