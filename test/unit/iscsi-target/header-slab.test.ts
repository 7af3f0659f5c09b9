// HeaderSlab: headers carved from slabs that start at 1 KiB and double up to
// 16 KiB (an idle connection holds little, a busy one allocates rarely); a
// slice is never handed out twice.

import { describe, expect, it } from 'vitest';
import { HEADER_SLAB_BYTES, HEADER_SLAB_FIRST_BYTES, HeaderSlab } from '../../../src/fabrics/iscsi/header-slab.js';

describe('HeaderSlab', () => {
  it('hands out disjoint 8-byte aligned slices from slabs growing 1 KiB -> 16 KiB', () => {
    const slab = new HeaderSlab();
    const seen = new Map<ArrayBufferLike, Array<[number, number]>>();
    const slabSizes: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const len = i % 3 === 0 ? 52 : 48;
      const b = slab.take(len);
      expect(b.length).toBe(len);
      expect(b.byteOffset % 8).toBe(0);
      let ranges = seen.get(b.buffer);
      if (!ranges) {
        ranges = [];
        seen.set(b.buffer, ranges);
        slabSizes.push(b.buffer.byteLength);
      }
      for (const [s, e] of ranges) expect(b.byteOffset >= e || b.byteOffset + len <= s).toBe(true);
      ranges.push([b.byteOffset, b.byteOffset + len]);
    }
    expect(slabSizes[0]).toBe(HEADER_SLAB_FIRST_BYTES);
    expect(slabSizes[1]).toBe(HEADER_SLAB_FIRST_BYTES * 2);
    expect(slabSizes.at(-1)).toBe(HEADER_SLAB_BYTES);
    expect(Math.max(...slabSizes)).toBe(HEADER_SLAB_BYTES);
  });

  it('allocates nothing before the first header', () => {
    const slab = new HeaderSlab() as unknown as { slab: Buffer | undefined };
    expect(slab.slab).toBeUndefined();
  });

  it('gives a header larger than the first slab a slab that holds it', () => {
    const b = new HeaderSlab().take(48 + 1020);
    expect(b.length).toBe(1068);
  });
});
