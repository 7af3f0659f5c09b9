import { describe, expect, it } from 'vitest';
import { be, cdb10, cdb16, dataOf, makeDevice, reasonOf, run } from './harness.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { extentsToDescriptors } from '../../../src/core/sbc-lba-status.js';
import { mediumRemovalPrevented } from '../../../src/core/sbc-commands.js';
import type { BackstoreOps } from '../../../src/core/types.js';

const BS = 512;

function rc16(alloc: number): number[] {
  return [0x9e, 0x10, ...be(0, 8), ...be(alloc, 4), 0, 0];
}

function gls(lba: number | bigint, alloc: number): number[] {
  return [0x9e, 0x12, ...be(lba, 8), ...be(alloc, 4), 0, 0];
}

describe('READ CAPACITY', () => {
  it('(10): last LBA and block length', async () => {
    const out = dataOf(await run(makeDevice({ blocks: 2048 }), [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    expect([...out]).toEqual([0x00, 0x00, 0x07, 0xff, 0x00, 0x00, 0x02, 0x00]);
    expect(reasonOf(await run(makeDevice(), [0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]))).toBe('INVALID_FIELD_IN_CDB');
  });

  it('(16): last LBA, block length, LBPME and LBPRZ for a thin LU, cut to the allocation length', async () => {
    const out = dataOf(await run(makeDevice({ blocks: 2048, blockSize: 4096 }), rc16(32)));
    const want = Buffer.alloc(32);
    want.set([0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0x10, 0x00, 0x00, 0x00, 0xc0, 0x00]);
    expect(out.equals(want)).toBe(true);
    const full = dataOf(await run(makeDevice({ thin: false }), rc16(32)));
    expect(full[14]).toBe(0);
    expect(dataOf(await run(makeDevice(), rc16(12))).length).toBe(12);
    expect(await run(makeDevice(), rc16(0))).toMatchObject({ kind: 'good' });
  });
});

describe('GET LBA STATUS', () => {
  it('maps byte extents to block descriptors: partial data blocks are mapped', () => {
    const d = extentsToDescriptors(
      [
        { offset: 1000 * BS, length: 4096, hole: false },
        { offset: 1000 * BS + 4096, length: 8192 + 100, hole: true },
        { offset: 1000 * BS + 4096 + 8292, length: 4096 - 100, hole: false },
      ],
      1000n,
      BS,
    );
    expect(d).toEqual([
      { lba: 1000n, blocks: 8n, status: 0 },
      { lba: 1008n, blocks: 16n, status: 1 },
      { lba: 1024n, blocks: 8n, status: 0 },
    ]);
  });

  it('reports deallocated and mapped runs after an UNMAP; out of range past the end', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 2048 * BS, blockSize: BS, chunkSize: 4096 });
    const dev = makeDevice({ backstore: rd });
    await run(dev, cdb10(0x2a, 0, 16), { dataOut: Buffer.alloc(16 * BS, 1) });
    const out = dataOf(await run(dev, gls(0, 24 + 16)));
    // Header: PARAMETER DATA LENGTH = 4 + 16 x 2; descriptors: 0..15 mapped, 16.. deallocated.
    expect(out.readUInt32BE(0)).toBe(4 + 32);
    expect(out.readBigUInt64BE(8)).toBe(0n);
    expect(out.readUInt32BE(16)).toBe(16);
    expect(out[20]).toBe(0);
    expect(out.readBigUInt64BE(24)).toBe(16n);
    expect(out.readUInt32BE(32)).toBe(2048 - 16);
    expect(out[36]).toBe(1);
    const first = dataOf(await run(dev, gls(8, 24)));
    expect(first.readBigUInt64BE(8)).toBe(8n);
    expect(first.readUInt32BE(16)).toBe(8);
    expect(reasonOf(await run(dev, gls(2048, 24)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, gls(0xffffffffffffffffn, 24)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, gls(2047, 24)))).toBe('good');
  });
});

describe('PRE-FETCH, SYNCHRONIZE CACHE, START STOP UNIT, PREVENT ALLOW, READ DEFECT DATA', () => {
  it('PRE-FETCH: CONDITION MET when the range fits, LBA OUT OF RANGE past the end', async () => {
    const dev = makeDevice({ blocks: 64 });
    expect(await run(dev, [0x34, 0, ...be(0, 4), 0, ...be(8, 2), 0])).toEqual({ kind: 'good', conditionMet: true });
    expect(await run(dev, [0x90, 0x02, ...be(0, 8), ...be(0, 4), 3, 0])).toEqual({ kind: 'good', conditionMet: true });
    expect(reasonOf(await run(dev, [0x34, 0, ...be(63, 4), 0, ...be(2, 2), 0]))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, [0x34, 0, ...be(65, 4), 0, ...be(0, 2), 0]))).toBe('LBA_OUT_OF_RANGE');
  });

  it('SYNCHRONIZE CACHE flushes the backstore and maps a flush error', async () => {
    let flushes = 0;
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * BS, blockSize: BS });
    const spy: BackstoreOps = Object.assign(Object.create(rd) as RamdiskBackstore, {
      flush: () => {
        flushes++;
        return flushes > 1 ? Promise.reject(Object.assign(new Error('x'), { code: 'EIO' })) : Promise.resolve();
      },
    });
    const dev = makeDevice({ backstore: spy });
    expect(reasonOf(await run(dev, cdb10(0x35, 0, 0)))).toBe('good');
    expect(reasonOf(await run(dev, cdb16(0x91, 0, 0)))).toBe('MEDIUM_ERROR_WRITE');
    expect(reasonOf(await run(dev, cdb16(0x91, 60, 5)))).toBe('LBA_OUT_OF_RANGE');
    expect(flushes).toBe(2);
  });

  it('PREVENT ALLOW is tracked per nexus; an eject is refused while any nexus prevents', async () => {
    const dev = makeDevice();
    const eject = [0x1b, 0, 0, 0, 0x02, 0];
    expect(reasonOf(await run(dev, eject))).toBe('good');
    expect(reasonOf(await run(dev, [0x1e, 0, 0, 0, 1, 0], { nexusId: 1 }))).toBe('good');
    expect(reasonOf(await run(dev, [0x1e, 0, 0, 0, 1, 0], { nexusId: 2 }))).toBe('good');
    expect(reasonOf(await run(dev, eject, { nexusId: 2 }))).toBe('MEDIUM_REMOVAL_PREVENTED');
    await run(dev, [0x1e, 0, 0, 0, 0, 0], { nexusId: 1 });
    expect(mediumRemovalPrevented(dev.backstore)).toBe(true);
    await run(dev, [0x1e, 0, 0, 0, 0, 0], { nexusId: 2 });
    expect(mediumRemovalPrevented(dev.backstore)).toBe(false);
    expect(reasonOf(await run(dev, eject))).toBe('good');
    expect(reasonOf(await run(dev, [0x1b, 0, 0, 0, 0x01, 0]))).toBe('good');
    expect(reasonOf(await run(dev, [0x1e, 0, 0, 0, 2, 0]))).toBe('INVALID_FIELD_IN_CDB');
  });

  it('READ DEFECT DATA returns empty lists in the requested format', async () => {
    const dev = makeDevice();
    expect([...dataOf(await run(dev, [0x37, 0, 0x1d, 0, 0, 0, 0, 0, 32, 0]))]).toEqual([0, 0x1d, 0, 0]);
    expect([...dataOf(await run(dev, [0xb7, 0x0c, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]))]).toEqual([
      0, 0x0c, 0, 0, 0, 0, 0, 0,
    ]);
    expect(dataOf(await run(dev, [0x37, 0, 0x18, 0, 0, 0, 0, 0, 2, 0])).length).toBe(2);
  });
});
