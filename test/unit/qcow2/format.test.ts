// format.ts codecs against hand-written bytes (STYLE.md §13), values from docs/interop/qcow2.txt.
import { describe, expect, it } from 'vitest';
import {
  compressedSpan,
  decodeL2,
  l1Offset,
  parseHeader,
  readRefcount,
  refcountByteRange,
  writeRefcount,
} from '../../../src/backstores/qcow2/format.js';

/** A v3 header built field by field. */
function v3Header(): Buffer {
  const b = Buffer.alloc(4096);
  b.write('QFI\xfb', 0, 'latin1');
  b.writeUInt32BE(3, 4);
  b.writeUInt32BE(16, 20); // 64 KiB clusters
  b.writeBigUInt64BE(1n << 30n, 24);
  b.writeUInt32BE(16, 36); // l1_size
  b.writeBigUInt64BE(0x30000n, 40);
  b.writeBigUInt64BE(0x10000n, 48);
  b.writeUInt32BE(1, 56);
  b.writeUInt32BE(4, 96);
  b.writeUInt32BE(104, 100);
  // Extensions: backing format "raw", a feature name table entry, an unknown one, end.
  let at = 104;
  b.writeUInt32BE(0xe2792aca, at);
  b.writeUInt32BE(3, at + 4);
  b.write('raw', at + 8);
  at += 16;
  b.writeUInt32BE(0x6803f857, at);
  b.writeUInt32BE(48, at + 4);
  b[at + 8] = 0; // incompatible
  b[at + 9] = 9;
  b.write('frobnication', at + 10);
  at += 56;
  b.writeUInt32BE(0x12345678, at);
  b.writeUInt32BE(5, at + 4);
  at += 16;
  at += 8; // end
  b.writeBigUInt64BE(BigInt(at), 8);
  b.writeUInt32BE(8, 16);
  b.write('base.img', at);
  return b;
}

describe('qcow2 format codecs', () => {
  it('parses a v3 header with extensions and a backing file name', () => {
    const h = parseHeader(v3Header(), 'x');
    expect(h).toMatchObject({
      version: 3,
      clusterBits: 16,
      size: 2 ** 30,
      l1Size: 16,
      l1TableOffset: 0x30000,
      refcountTableOffset: 0x10000,
      refcountTableClusters: 1,
      refcountOrder: 4,
      headerLength: 104,
      backingFormat: 'raw',
      backingFile: 'base.img',
    });
    expect(h.featureNames).toEqual([{ type: 0, bit: 9, name: 'frobnication' }]);
  });

  it('names an unknown incompatible bit from the feature name table', () => {
    const b = v3Header();
    b.writeBigUInt64BE(1n << 9n, 72);
    expect(() => parseHeader(b, 'img')).toThrow(/img: incompatible feature "frobnication" \(bit 9\)/);
  });

  it('v2: refcount order 4, 72-byte header', () => {
    const b = v3Header();
    b.writeUInt32BE(2, 4);
    b.fill(0, 72, 104); // no v3 fields; extension area starts at 72 (zeroes: end)
    b.writeBigUInt64BE(0n, 8);
    const h = parseHeader(b, 'x');
    expect(h).toMatchObject({ version: 2, refcountOrder: 4, headerLength: 72, incompatible: 0n });
    expect(h.backingFile).toBeUndefined();
  });

  it('decodes L2 entries: standard, COPIED, zero, compressed', () => {
    expect(decodeL2(0n, 16, 'w')).toEqual({ kind: 'unallocated' });
    expect(decodeL2(0x8000000000050000n, 16, 'w')).toEqual({ kind: 'normal', offset: 0x50000, copied: true });
    expect(decodeL2(0x0000000000050000n, 16, 'w')).toEqual({ kind: 'normal', offset: 0x50000, copied: false });
    expect(decodeL2(0x0000000000000001n, 16, 'w')).toEqual({ kind: 'zero', offset: 0 });
    expect(decodeL2(0x8000000000050001n, 16, 'w')).toEqual({ kind: 'zero', offset: 0x50000 });
    // 64 KiB clusters: x = 62 - 8 = 54; offset 0x123456 (bits 0-53), 3 additional sectors (bits 54-61).
    const e = (1n << 62n) | (3n << 54n) | 0x123456n;
    expect(decodeL2(e, 16, 'w')).toEqual({ kind: 'compressed', offset: 0x123456, bytes: 4 * 512 - 0x56 });
    // 512-byte clusters: x = 62 - 1 = 61; one sector field bit.
    expect(decodeL2((1n << 62n) | (1n << 61n) | 0x1000n, 9, 'w')).toEqual({ kind: 'compressed', offset: 0x1000, bytes: 1024 });
    expect(compressedSpan(0xfff0, 0x20, 0x10000)).toEqual([0, 0x10000]);
  });

  it('refuses misaligned and reserved-bit entries with EIO naming them', () => {
    expect(() => decodeL2(0x8000000000050200n, 16, 'guest cluster 7')).toThrow(/guest cluster 7: data cluster offset 0x50200 is not cluster-aligned/);
    expect(() => decodeL2(0x8000000000050002n, 16, 'w')).toThrow(/reserved bits/);
    expect(() => l1Offset(0x8000000000010200n, 65536, 'L1 entry 3')).toThrow(/L1 entry 3: L2 table offset 0x10200 is not cluster-aligned/);
    expect(l1Offset(0x8000000000020000n, 65536, 'L1')).toBe(0x20000);
  });

  it('refcount entries of every width, bit 0 the least significant', () => {
    const b = Buffer.alloc(16);
    writeRefcount(b, 3, 0, 1); // 1-bit: byte 0 bit 3
    expect(b[0]).toBe(0b1000);
    writeRefcount(b, 9, 1, 3); // 2-bit: entry 9 = byte 2 bits 2-3
    expect(b[2]).toBe(0b1100);
    writeRefcount(b, 3, 2, 0xa); // 4-bit: byte 1 high nibble
    expect(b[1]).toBe(0xa0);
    expect([readRefcount(b, 3, 0), readRefcount(b, 9, 1), readRefcount(b, 3, 2)]).toEqual([1, 3, 0xa]);
    const c = Buffer.alloc(16);
    writeRefcount(c, 1, 4, 0x1234);
    expect(c.subarray(2, 4)).toEqual(Buffer.from([0x12, 0x34]));
    writeRefcount(c, 1, 6, 7);
    expect(c.subarray(8, 16)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]));
    expect(refcountByteRange(9, 1)).toEqual([2, 3]);
    expect(refcountByteRange(1, 5)).toEqual([4, 8]);
  });
});
