// Golden bytes for the block CDB builders (hand-written from SBC-3/SPC-4).
import { describe, expect, it } from 'vitest';
import {
  modeSense6,
  parseReadCapacity16,
  prefetch16,
  readCapacity16,
  rw16,
  senseCodes,
  synchronizeCache16,
  testUnitReady,
  writeSame16,
} from '../../../src/protocols/scsi/block-cdbs.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('block CDB builders', () => {
  it('READ(16) and WRITE(16) with FUA', () => {
    expect(rw16(false, 0x0102030405n, 0x10)).toEqual(hex('88 00 0000000102030405 00000010 00 00'));
    expect(rw16(true, 7, 1, true)).toEqual(hex('8a 08 0000000000000007 00000001 00 00'));
  });
  it('SYNCHRONIZE CACHE(16), PRE-FETCH(16), WRITE SAME(16) with UNMAP', () => {
    expect(synchronizeCache16()).toEqual(hex('91 00 0000000000000000 00000000 00 00'));
    expect(prefetch16(8n, 2)).toEqual(hex('90 00 0000000000000008 00000002 00 00'));
    expect(writeSame16(1n, 0x100, true)).toEqual(hex('93 08 0000000000000001 00000100 00 00'));
    expect(writeSame16(1n, 1, false)[1]).toBe(0);
    expect(writeSame16(2n, 4, false, true)).toEqual(hex('93 01 0000000000000002 00000004 00 00'));
    expect(writeSame16(2n, 4, true, true)[1]).toBe(0x09);
  });
  it('TEST UNIT READY, READ CAPACITY(16), MODE SENSE(6)', () => {
    expect(testUnitReady()).toEqual(hex('00 00 00 00 00 00'));
    expect(readCapacity16()).toEqual(hex('9e 10 0000000000000000 00000020 00 00'));
    expect(modeSense6()).toEqual(hex('1a 08 3f 00 ff 00'));
  });
  it('parses READ CAPACITY(16) data with LBPME and LBPRZ', () => {
    const data = hex('00000000 0000ffff 00000200 00 00 c0 00' + '00'.repeat(16));
    expect(parseReadCapacity16(data)).toEqual({ blocks: 0x10000n, blockSize: 512, thin: true, unmapReadsZero: true });
    expect(() => parseReadCapacity16(Buffer.alloc(8))).toThrow(/8 bytes/);
  });
  it('reads key/ASC/ASCQ from fixed and descriptor sense', () => {
    expect(senseCodes(hex('70 00 05 00000000 0a 00000000 24 00 00 000000'))).toEqual({ key: 5, asc: 0x24, ascq: 0 });
    expect(senseCodes(hex('72 07 27 00 00 00 00 00'))).toEqual({ key: 7, asc: 0x27, ascq: 0 });
    expect(senseCodes(hex('70 00 05'))).toBeUndefined();
    expect(senseCodes(undefined)).toBeUndefined();
  });
});
