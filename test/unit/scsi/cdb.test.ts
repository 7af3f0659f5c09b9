import { describe, expect, it } from 'vitest';
import { asciiField, cdbLengthOf, findReservedBit, u16, u32, u64, u8 } from '../../../src/protocols/scsi/cdb.js';
import { ScsiOpcode, opcodeName, serviceActionOf } from '../../../src/protocols/scsi/opcodes.js';

describe('CDB helpers', () => {
  it('cdbLengthOf follows the group code', () => {
    expect(cdbLengthOf(0x00)).toBe(6);
    expect(cdbLengthOf(0x28)).toBe(10);
    expect(cdbLengthOf(0x5a)).toBe(10);
    expect(cdbLengthOf(0x88)).toBe(16);
    expect(cdbLengthOf(0xa0)).toBe(12);
    expect(cdbLengthOf(0x7f)).toBe(0);
    expect(cdbLengthOf(0xc0)).toBe(0);
  });

  it('field readers are big-endian and bounds-safe', () => {
    const b = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(u8(b, 1)).toBe(2);
    expect(u16(b, 1)).toBe(0x0203);
    expect(u32(b, 0)).toBe(0x01020304);
    expect(u64(b, 1)).toBe(0x0203040506070809n);
    expect(u8(b, 20)).toBe(0);
    expect(u16(b, 8)).toBe(0);
    expect(u32(b, 7)).toBe(0);
    expect(u64(b, 2)).toBe(0n);
  });

  it('findReservedBit reports the first byte and highest bad bit outside the usage map', () => {
    const usage = [0x12, 0x01, 0xff, 0xff, 0xff, 0x00];
    expect(findReservedBit(Buffer.from([0x12, 0x01, 0x80, 0, 36, 0]), usage, 6)).toBeUndefined();
    expect(findReservedBit(Buffer.from([0x12, 0x03, 0, 0, 36, 0]), usage, 6)).toEqual({ byte: 1, bit: 1 });
    expect(findReservedBit(Buffer.from([0x12, 0, 0, 0, 36, 0x84]), usage, 6)).toEqual({ byte: 5, bit: 7 });
    // Bytes past the CDB length (iSCSI pads CDBs to 16) are not checked.
    expect(findReservedBit(Buffer.from([0x12, 0, 0, 0, 36, 0, 0xff, 0xff]), usage, 6)).toBeUndefined();
  });

  it('asciiField pads with spaces and replaces non-printable characters', () => {
    expect(asciiField('AB', 4)).toEqual(Buffer.from('AB  '));
    expect(asciiField('ABCDEF', 4)).toEqual(Buffer.from('ABCD'));
    expect(asciiField('A\u00e9', 3)).toEqual(Buffer.from('A? '));
  });
});

describe('opcodes', () => {
  it('service action lives in byte 1 (bits 4..0), or bytes 8..9 for variable length CDBs', () => {
    expect(serviceActionOf(Buffer.from([0x9e, 0x10, 0]))).toBe(0x10);
    expect(serviceActionOf(Buffer.from([0xa3, 0xec]))).toBe(0x0c);
    const v = Buffer.alloc(32);
    v[0] = 0x7f;
    v[8] = 0x00;
    v[9] = 0x0b;
    expect(serviceActionOf(v)).toBe(0x0b);
  });

  it('names opcodes for diagnostics', () => {
    expect(opcodeName(ScsiOpcode.READ_10)).toBe('READ_10');
    expect(opcodeName(0xc5)).toBe('0xc5');
  });
});
