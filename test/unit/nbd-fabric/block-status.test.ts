import { describe, expect, it } from 'vitest';
import { getLbaStatus16, lbaStatusToExtents, queryMatchesBaseAllocation } from '../../../src/fabrics/nbd/block-status.js';

/** GET LBA STATUS parameter data, written out by hand: header then (lba, blocks, status). */
function lbaStatus(descs: Array<[number, number, number]>): Buffer {
  const b = Buffer.alloc(8 + 16 * descs.length);
  b.writeUInt32BE(4 + 16 * descs.length, 0);
  descs.forEach(([lba, blocks, status], i) => {
    b.writeBigUInt64BE(BigInt(lba), 8 + 16 * i);
    b.writeUInt32BE(blocks, 16 + 16 * i);
    b[20 + 16 * i] = status;
  });
  return b;
}

const q = { offset: 0n, length: 16 * 512, blockSize: 512, unmapReadsZero: true, reqOne: false };

describe('queryMatchesBaseAllocation', () => {
  it('matches the full name, and the bare namespace only when listing', () => {
    expect(queryMatchesBaseAllocation('base:allocation', false)).toBe(true);
    expect(queryMatchesBaseAllocation('base:', true)).toBe(true);
    expect(queryMatchesBaseAllocation('base:', false)).toBe(false);
    expect(queryMatchesBaseAllocation('qemu:dirty-bitmap:x', true)).toBe(false);
    expect(queryMatchesBaseAllocation('base:allocationx', true)).toBe(false);
  });
});

describe('getLbaStatus16', () => {
  it('is SERVICE ACTION IN(16) / GET LBA STATUS with the LBA and allocation length', () => {
    expect([...getLbaStatus16(0x0102n, 0x4008)]).toEqual([0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0x40, 0x08, 0, 0]);
  });
});

describe('lbaStatusToExtents', () => {
  it('mapped is data, deallocated is HOLE|ZERO with LBPRZ', () => {
    expect(lbaStatusToExtents(lbaStatus([[0, 4, 0], [4, 100, 1]]), q)).toEqual([
      { length: 2048, flags: 0 },
      { length: 6144, flags: 3 },
    ]);
  });
  it('deallocated without LBPRZ is only HOLE; anchored counts as data', () => {
    expect(lbaStatusToExtents(lbaStatus([[0, 4, 2], [4, 4, 0], [8, 8, 1]]), { ...q, unmapReadsZero: false })).toEqual([
      { length: 4096, flags: 0 },
      { length: 4096, flags: 1 },
    ]);
  });
  it('starts mid-descriptor and at an unaligned offset, capped to the request', () => {
    expect(lbaStatusToExtents(lbaStatus([[2, 10, 1], [12, 10, 0]]), { ...q, offset: 5n * 512n + 100n, length: 4000 })).toEqual([
      { length: 7 * 512 - 100, flags: 3 },
      { length: 4000 - (7 * 512 - 100), flags: 0 },
    ]);
  });
  it('REQ_ONE gives exactly one descriptor', () => {
    expect(lbaStatusToExtents(lbaStatus([[0, 4, 0], [4, 100, 1]]), { ...q, reqOne: true })).toEqual([{ length: 2048, flags: 0 }]);
  });
  it('nothing usable (empty or not covering the offset) reads as all data', () => {
    expect(lbaStatusToExtents(lbaStatus([]), q)).toEqual([{ length: 8192, flags: 0 }]);
    expect(lbaStatusToExtents(lbaStatus([[3, 4, 1]]), q)).toEqual([{ length: 8192, flags: 0 }]);
  });
});
