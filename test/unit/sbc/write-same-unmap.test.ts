import { describe, expect, it } from 'vitest';
import { be, cdb10, dataOf, makeDevice, reasonOf, run } from './harness.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { MAX_UNMAP_DESCRIPTORS, MAX_WRITE_SAME_BYTES } from '../../../src/core/sbc-commands.js';

const BS = 512;

function ws16(lba: number | bigint, blocks: number, byte1 = 0): number[] {
  return [0x93, byte1, ...be(lba, 8), ...be(blocks, 4), 0, 0];
}

function unmapList(descs: Array<[number | bigint, number]>): Buffer {
  const b = Buffer.alloc(8 + 16 * descs.length);
  b.writeUInt16BE(b.length - 2, 0);
  b.writeUInt16BE(16 * descs.length, 2);
  descs.forEach(([lba, n], i) => {
    b.writeBigUInt64BE(BigInt(lba), 8 + 16 * i);
    b.writeUInt32BE(n, 16 + 16 * i);
  });
  return b;
}

function unmapCdb(len: number, anchor = 0): number[] {
  return [0x42, anchor, 0, 0, 0, 0, 0, ...be(len, 2), 0];
}

function ramdisk(blocks = 2048): RamdiskBackstore {
  return new RamdiskBackstore({ name: 'r', size: blocks * BS, blockSize: BS, chunkSize: 4096 });
}

describe('WRITE SAME', () => {
  it('writes one block over the range (10 and 16)', async () => {
    const dev = makeDevice();
    expect(reasonOf(await run(dev, cdb10(0x41, 3, 5), { dataOut: Buffer.alloc(BS, 0x77) }))).toBe('good');
    expect(reasonOf(await run(dev, ws16(8, 2), { dataOut: Buffer.alloc(BS, 0x78) }))).toBe('good');
    const back = dataOf(await run(dev, cdb10(0x28, 2, 8)));
    expect(back.subarray(0, BS).every((b) => b === 0)).toBe(true);
    expect(back.subarray(BS, 6 * BS).every((b) => b === 0x77)).toBe(true);
    expect(back.subarray(6 * BS).every((b) => b === 0x78)).toBe(true);
  });

  it('0 blocks writes to the end of the medium; beyond it is LBA OUT OF RANGE', async () => {
    const dev = makeDevice({ blocks: 64 });
    expect(reasonOf(await run(dev, ws16(60, 0), { dataOut: Buffer.alloc(BS, 0x12) }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 59, 5))).subarray(BS).every((b) => b === 0x12)).toBe(true);
    expect(reasonOf(await run(dev, ws16(64, 0), { dataOut: Buffer.alloc(BS) }))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, ws16(65, 0), { dataOut: Buffer.alloc(BS) }))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, ws16(0xffffffffffffffffn, 1), { dataOut: Buffer.alloc(BS) }))).toBe(
      'LBA_OUT_OF_RANGE',
    );
  });

  it('more than MAXIMUM WRITE SAME LENGTH is an invalid field, exactly the maximum is not', async () => {
    const max = MAX_WRITE_SAME_BYTES / BS;
    const dev = makeDevice({ blocks: max + 8, backstore: ramdisk(max + 8) });
    expect(reasonOf(await run(dev, ws16(0, 0), { dataOut: Buffer.alloc(BS) }))).toBe('INVALID_FIELD_IN_CDB');
    expect(reasonOf(await run(dev, ws16(7, 0), { dataOut: Buffer.alloc(BS) }))).toBe('INVALID_FIELD_IN_CDB');
    expect(reasonOf(await run(dev, ws16(8, 0), { dataOut: Buffer.alloc(BS) }))).toBe('good');
  });

  it('UNMAP with a zero block deallocates; ANCHOR keeps the blocks allocated', async () => {
    const rd = ramdisk();
    const dev = makeDevice({ backstore: rd });
    await run(dev, cdb10(0x2a, 0, 32), { dataOut: Buffer.alloc(32 * BS, 0xff) });
    expect(reasonOf(await run(dev, ws16(0, 16, 0x08), { dataOut: Buffer.alloc(BS) }))).toBe('good');
    expect(await rd.extents(0, 16 * BS)).toEqual([{ offset: 0, length: 16 * BS, hole: true }]);
    expect(dataOf(await run(dev, cdb10(0x28, 0, 16))).every((b) => b === 0)).toBe(true);
    expect(reasonOf(await run(dev, ws16(16, 8, 0x18), { dataOut: Buffer.alloc(BS) }))).toBe('good');
    expect((await rd.extents(16 * BS, 8 * BS))[0].hole).toBe(false);
    // NDOB: no data at all, zeroes implied.
    expect(reasonOf(await run(dev, ws16(24, 8, 0x09)))).toBe('good');
    expect(await rd.extents(24 * BS, 8 * BS)).toEqual([{ offset: 24 * BS, length: 8 * BS, hole: true }]);
  });

  it('UNMAP on a thin LU deallocates even when the data block is not zero (as LIO and tgt do)', async () => {
    const dev = makeDevice();
    expect(reasonOf(await run(dev, cdb10(0x2a, 0, 4), { dataOut: Buffer.alloc(4 * BS, 0xff) }))).toBe('good');
    expect(reasonOf(await run(dev, ws16(0, 4, 0x08), { dataOut: Buffer.alloc(BS, 0x31) }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 0, 4))).every((b) => b === 0)).toBe(true);
  });

  it('non-zero data without UNMAP is written to every block', async () => {
    const dev = makeDevice();
    expect(reasonOf(await run(dev, ws16(0, 4), { dataOut: Buffer.alloc(BS, 0x31) }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 0, 4))).every((b) => b === 0x31)).toBe(true);
  });

  it('field checks: ANCHOR without UNMAP, UNMAP on a fully provisioned LU, wrong Data-Out size, WRPROTECT', async () => {
    const dev = makeDevice();
    expect(reasonOf(await run(dev, ws16(0, 1, 0x10), { dataOut: Buffer.alloc(BS) }))).toBe('INVALID_FIELD_IN_CDB');
    const full = makeDevice({ thin: false });
    expect(reasonOf(await run(full, ws16(0, 1, 0x08), { dataOut: Buffer.alloc(BS) }))).toBe('INVALID_FIELD_IN_CDB');
    expect(reasonOf(await run(dev, ws16(0, 1, 0x08), { dataOut: Buffer.alloc(2 * BS) }))).toBe(
      'INVALID_FIELD_IN_CDB',
    );
    expect(reasonOf(await run(dev, ws16(0, 1, 0x20), { dataOut: Buffer.alloc(BS) }))).toBe('INVALID_FIELD_IN_CDB');
    expect(reasonOf(await run(dev, ws16(0, 1), { dataOut: Buffer.alloc(BS), writeProtected: true }))).toBe(
      'WRITE_PROTECTED',
    );
  });
});

describe('UNMAP', () => {
  it('deallocates every descriptor; zero-length descriptors and an empty list are GOOD', async () => {
    const rd = ramdisk();
    const dev = makeDevice({ backstore: rd });
    await run(dev, cdb10(0x2a, 0, 64), { dataOut: Buffer.alloc(64 * BS, 0x61) });
    const list = unmapList([
      [0, 8],
      [32, 16],
      [2048, 0],
    ]);
    expect(reasonOf(await run(dev, unmapCdb(list.length), { dataOut: list }))).toBe('good');
    expect(await rd.extents(0, 64 * BS)).toEqual([
      { offset: 0, length: 8 * BS, hole: true },
      { offset: 8 * BS, length: 24 * BS, hole: false },
      { offset: 32 * BS, length: 16 * BS, hole: true },
      { offset: 48 * BS, length: 16 * BS, hole: false },
    ]);
    expect(reasonOf(await run(dev, unmapCdb(0)))).toBe('good');
    const empty = unmapList([]);
    expect(reasonOf(await run(dev, unmapCdb(empty.length), { dataOut: empty }))).toBe('good');
  });

  it('parameter list checks: too short, out of range, too many descriptors, nothing changed on error', async () => {
    const rd = ramdisk();
    const dev = makeDevice({ backstore: rd });
    await run(dev, cdb10(0x2a, 0, 8), { dataOut: Buffer.alloc(8 * BS, 0x61) });
    expect(reasonOf(await run(dev, unmapCdb(6), { dataOut: Buffer.alloc(6) }))).toBe('PARAMETER_LIST_LENGTH_ERROR');
    const oob = unmapList([
      [0, 8],
      [2047, 2],
    ]);
    expect(reasonOf(await run(dev, unmapCdb(oob.length), { dataOut: oob }))).toBe('LBA_OUT_OF_RANGE');
    expect((await rd.extents(0, 8 * BS))[0].hole).toBe(false);
    const many = unmapList(Array.from({ length: MAX_UNMAP_DESCRIPTORS + 1 }, (_, i): [number, number] => [i, 1]));
    expect(await run(dev, unmapCdb(many.length), { dataOut: many })).toMatchObject({
      reason: 'INVALID_FIELD_IN_PARAMETER_LIST',
      field: { inCdb: false },
    });
    const wrap = unmapList([[0xffffffffffffffffn, 2]]);
    expect(reasonOf(await run(dev, unmapCdb(wrap.length), { dataOut: wrap }))).toBe('LBA_OUT_OF_RANGE');
  });

  it('is refused on a fully provisioned LU and when write-protected', async () => {
    const list = unmapList([[0, 1]]);
    expect(reasonOf(await run(makeDevice({ thin: false }), unmapCdb(list.length), { dataOut: list }))).toBe(
      'INVALID_FIELD_IN_CDB',
    );
    expect(reasonOf(await run(makeDevice(), unmapCdb(list.length), { dataOut: list, writeProtected: true }))).toBe(
      'WRITE_PROTECTED',
    );
  });
});
