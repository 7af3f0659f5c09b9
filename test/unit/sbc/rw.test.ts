import { describe, expect, it } from 'vitest';
import { cdb10, cdb12, cdb16, dataOf, makeDevice, reasonOf, run } from './harness.js';
import type { BackstoreOps } from '../../../src/core/types.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';

const BS = 512;

function pattern(blocks: number, seed: number): Buffer {
  const b = Buffer.alloc(blocks * BS);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

describe('READ / WRITE', () => {
  it('WRITE(10) then READ(10), READ(12), READ(16) return the data', async () => {
    const dev = makeDevice();
    const data = pattern(3, 1);
    expect(reasonOf(await run(dev, cdb10(0x2a, 5, 3), { dataOut: data }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 5, 3))).equals(data)).toBe(true);
    expect(dataOf(await run(dev, cdb12(0xa8, 5, 3))).equals(data)).toBe(true);
    expect(dataOf(await run(dev, cdb16(0x88, 5, 3))).equals(data)).toBe(true);
  });

  it('READ(6) with TRANSFER LENGTH 0 reads 256 blocks', async () => {
    const dev = makeDevice();
    const out = await run(dev, [0x08, 0x00, 0x00, 0x00, 0x00, 0x00]);
    expect(dataOf(out).length).toBe(256 * BS);
  });

  it('WRITE(6) uses the 21-bit LBA', async () => {
    const dev = makeDevice({ blocks: 0x20000 });
    const data = pattern(1, 9);
    // LBA 0x01_0203 in bits 20-0 of bytes 1-3.
    expect(reasonOf(await run(dev, [0x0a, 0x01, 0x02, 0x03, 0x01, 0x00], { dataOut: data }))).toBe('good');
    expect(dataOf(await run(dev, cdb16(0x88, 0x10203, 1))).equals(data)).toBe(true);
  });

  it('LBA OUT OF RANGE at and past the end, and for LBAs near 2^64', async () => {
    const dev = makeDevice({ blocks: 100 });
    expect(reasonOf(await run(dev, cdb10(0x28, 99, 1)))).toBe('good');
    expect(reasonOf(await run(dev, cdb10(0x28, 99, 2)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, cdb10(0x28, 100, 1)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, cdb10(0x28, 101, 0)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, cdb10(0x28, 0xffffffff, 1)))).toBe('LBA_OUT_OF_RANGE');
    // 2^64-1 + 1 would wrap to 0 in 64-bit arithmetic.
    expect(reasonOf(await run(dev, cdb16(0x88, 0xffffffffffffffffn, 1)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, cdb16(0x8a, 0x8000000000000000n, 1), { dataOut: pattern(1, 0) }))).toBe(
      'LBA_OUT_OF_RANGE',
    );
    expect(reasonOf(await run(dev, [0x08, 0x1f, 0xff, 0xff, 0x01, 0x00]))).toBe('LBA_OUT_OF_RANGE');
  });

  it('0 blocks is GOOD with no data', async () => {
    const dev = makeDevice();
    const out = await run(dev, cdb10(0x28, 0, 0));
    expect(out).toEqual({ kind: 'good' });
    expect(reasonOf(await run(dev, cdb10(0x2a, 0, 0)))).toBe('good');
  });

  it('RDPROTECT / WRPROTECT other than 0 is an invalid field (no protection information)', async () => {
    const dev = makeDevice();
    for (let p = 1; p < 8; p++) {
      const out = await run(dev, cdb10(0x28, 0, 1, p << 5));
      expect(out).toMatchObject({ kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { inCdb: true, byte: 1 } });
      expect(reasonOf(await run(dev, cdb16(0x8a, 0, 1, p << 5), { dataOut: pattern(1, 0) }))).toBe(
        'INVALID_FIELD_IN_CDB',
      );
    }
  });

  it('a write with less Data-Out than the CDB asks writes only the whole blocks that arrived', async () => {
    const dev = makeDevice();
    await run(dev, cdb10(0x2a, 0, 2), { dataOut: Buffer.alloc(2 * BS, 0x61) });
    await run(dev, cdb10(0x2a, 0, 2), { dataOut: Buffer.alloc(BS + 100, 0x62) });
    const back = dataOf(await run(dev, cdb10(0x28, 0, 2)));
    expect(back.subarray(0, BS).every((b) => b === 0x62)).toBe(true);
    expect(back.subarray(BS).every((b) => b === 0x61)).toBe(true);
  });

  it('FUA in the CDB, or WCE=0, asks the backstore for a forced write', async () => {
    const seen: boolean[] = [];
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * BS, blockSize: BS });
    const spy: BackstoreOps = Object.assign(Object.create(rd) as RamdiskBackstore, {
      write: (buf: Buffer, off: number, opts?: { fua?: boolean }) => {
        seen.push(opts?.fua ?? false);
        return rd.write(buf, off);
      },
    });
    const dev = makeDevice({ backstore: spy });
    await run(dev, cdb10(0x2a, 0, 1), { dataOut: pattern(1, 0) });
    await run(dev, cdb10(0x2a, 0, 1, 0x08), { dataOut: pattern(1, 0) });
    await run(makeDevice({ backstore: spy, writeCache: false }), cdb10(0x2a, 0, 1), { dataOut: pattern(1, 0) });
    expect(seen).toEqual([false, true, true]);
  });

  it('write-protected: DATA PROTECT before the medium is touched', async () => {
    const dev = makeDevice();
    const out = await run(dev, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS, 0xee), writeProtected: true });
    expect(reasonOf(out)).toBe('WRITE_PROTECTED');
    expect(dataOf(await run(dev, cdb10(0x28, 0, 1))).every((b) => b === 0)).toBe(true);
  });

  it('a transfer above MAXIMUM TRANSFER LENGTH is an invalid field', async () => {
    const dev = makeDevice({ blocks: 80000 });
    const out = await run(dev, cdb16(0x88, 0, 65537));
    expect(out).toMatchObject({ kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { byte: 10 } });
  });

  it('a backstore error becomes the mapped sense with the LBA as INFORMATION', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * BS, blockSize: BS });
    const failing: BackstoreOps = Object.assign(Object.create(rd) as RamdiskBackstore, {
      read: () => Promise.reject(Object.assign(new Error('io'), { code: 'EIO' })),
      write: () => Promise.reject(Object.assign(new Error('full'), { code: 'ENOSPC' })),
    });
    const dev = makeDevice({ backstore: failing });
    expect(await run(dev, cdb10(0x28, 7, 1))).toMatchObject({ reason: 'MEDIUM_ERROR_READ', info: 7n });
    expect(reasonOf(await run(dev, cdb10(0x2a, 7, 1), { dataOut: pattern(1, 0) }))).toBe('SPACE_ALLOCATION_FAILED');
  });
});

describe('WRITE AND VERIFY / ORWRITE', () => {
  it('WRITE AND VERIFY(10/12/16) write the data, BYTCHK 1 compares it', async () => {
    const dev = makeDevice();
    const data = pattern(2, 3);
    expect(reasonOf(await run(dev, cdb10(0x2e, 4, 2, 0x02), { dataOut: data }))).toBe('good');
    expect(reasonOf(await run(dev, cdb12(0xae, 6, 2), { dataOut: data }))).toBe('good');
    expect(reasonOf(await run(dev, cdb16(0x8e, 8, 2, 0x10), { dataOut: data }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 4, 2))).equals(data)).toBe(true);
    expect(dataOf(await run(dev, cdb10(0x28, 8, 2))).equals(data)).toBe(true);
    expect(reasonOf(await run(dev, cdb10(0x2e, 4, 1, 0x04), { dataOut: pattern(1, 0) }))).toBe(
      'INVALID_FIELD_IN_CDB',
    );
  });

  it('ORWRITE ORs the data into the medium', async () => {
    const dev = makeDevice();
    await run(dev, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS, 0xa5) });
    expect(reasonOf(await run(dev, cdb16(0x8b, 0, 1), { dataOut: Buffer.alloc(BS, 0x5a) }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 0, 1))).every((b) => b === 0xff)).toBe(true);
    expect(reasonOf(await run(dev, cdb16(0x8b, 2048, 0)))).toBe('good');
    expect(reasonOf(await run(dev, cdb16(0x8b, 2049, 0)))).toBe('LBA_OUT_OF_RANGE');
  });
});
