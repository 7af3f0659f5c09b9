import { describe, expect, it } from 'vitest';
import type { Extent } from '../../../src/core/index.js';
import { extentsToBlockStatus, queryMatchesBaseAllocation } from '../../../src/fabrics/nbd/block-status.js';

/** Byte extents as the block door reports them, from (offset, length, hole) in 512-byte blocks. */
function ext(list: Array<[number, number, boolean]>): Extent[] {
  return list.map(([lba, blocks, hole]) => ({ offset: lba * 512, length: blocks * 512, hole }));
}

const q = { offset: 0n, length: 16 * 512, unmapReadsZero: true, reqOne: false };

describe('queryMatchesBaseAllocation', () => {
  it('matches the full name, and the bare namespace only when listing', () => {
    expect(queryMatchesBaseAllocation('base:allocation', false)).toBe(true);
    expect(queryMatchesBaseAllocation('base:', true)).toBe(true);
    expect(queryMatchesBaseAllocation('base:', false)).toBe(false);
    expect(queryMatchesBaseAllocation('qemu:dirty-bitmap:x', true)).toBe(false);
    expect(queryMatchesBaseAllocation('base:allocationx', true)).toBe(false);
  });
});

describe('extentsToBlockStatus', () => {
  it('data is flags 0, a hole is HOLE|ZERO with LBPRZ', () => {
    expect(extentsToBlockStatus(ext([[0, 4, false], [4, 100, true]]), q)).toEqual([
      { length: 2048, flags: 0 },
      { length: 6144, flags: 3 },
    ]);
  });
  it('a hole without LBPRZ is only HOLE; equal runs merge', () => {
    expect(extentsToBlockStatus(ext([[0, 4, false], [4, 4, false], [8, 8, true]]), { ...q, unmapReadsZero: false })).toEqual([
      { length: 4096, flags: 0 },
      { length: 4096, flags: 1 },
    ]);
  });
  it('starts mid-extent and at an unaligned offset, capped to the request', () => {
    expect(extentsToBlockStatus(ext([[0, 2, false], [2, 10, true], [12, 10, false]]), { ...q, offset: 5n * 512n + 100n, length: 4000 })).toEqual([
      { length: 7 * 512 - 100, flags: 3 },
      { length: 4000 - (7 * 512 - 100), flags: 0 },
    ]);
  });
  it('REQ_ONE gives exactly one descriptor', () => {
    expect(extentsToBlockStatus(ext([[0, 4, false], [4, 100, true]]), { ...q, reqOne: true })).toEqual([{ length: 2048, flags: 0 }]);
  });
  it('nothing usable (empty or not covering the offset) reads as all data', () => {
    expect(extentsToBlockStatus([], q)).toEqual([{ length: 8192, flags: 0 }]);
    expect(extentsToBlockStatus(ext([[3, 4, true]]), q)).toEqual([{ length: 8192, flags: 0 }]);
  });
});
