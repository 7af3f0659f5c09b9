// Golden bytes for the block CDB builders the initiator uses (hand-written from SBC-3).
import { describe, expect, it } from 'vitest';
import { parseReadCapacity16, readCapacity16, rw16, synchronizeCache16 } from '../../../src/protocols/scsi/block-cdbs.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('block CDB builders', () => {
  it('READ(16) and WRITE(16) with FUA', () => {
    expect(rw16(false, 0x0102030405n, 0x10)).toEqual(hex('88 00 0000000102030405 00000010 00 00'));
    expect(rw16(true, 7, 1, true)).toEqual(hex('8a 08 0000000000000007 00000001 00 00'));
  });
  it('SYNCHRONIZE CACHE(16) and READ CAPACITY(16)', () => {
    expect(synchronizeCache16()).toEqual(hex('91 00 0000000000000000 00000000 00 00'));
    expect(readCapacity16()).toEqual(hex('9e 10 0000000000000000 00000020 00 00'));
  });
  it('parses READ CAPACITY(16) data with LBPME and LBPRZ', () => {
    const data = hex('00000000 0000ffff 00000200 00 00 c0 00' + '00'.repeat(16));
    expect(parseReadCapacity16(data)).toEqual({ blocks: 0x10000n, blockSize: 512, thin: true, unmapReadsZero: true });
    expect(() => parseReadCapacity16(Buffer.alloc(8))).toThrow(/8 bytes/);
  });
});
