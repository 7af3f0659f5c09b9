import { describe, expect, it } from 'vitest';
import { seqAdd, seqDiff, seqGt, seqGte, seqLt, seqLte } from '../../../src/protocols/iscsi/seq.js';
import { decodeLun, encodeLun } from '../../../src/protocols/iscsi/lun.js';
import { opcodeName, rejectReasonName } from '../../../src/protocols/iscsi/constants.js';
import { hex } from './vectors.js';

describe('serial arithmetic (RFC 1982, SERIAL_BITS=32)', () => {
  it('compares across the wrap', () => {
    expect(seqLt(0xfffffffe, 1)).toBe(true);
    expect(seqGt(1, 0xfffffffe)).toBe(true);
    expect(seqLt(1, 0xfffffffe)).toBe(false);
    expect(seqLt(5, 5)).toBe(false);
    expect(seqLte(5, 5)).toBe(true);
    expect(seqGte(5, 5)).toBe(true);
    expect(seqGte(0, 0xffffffff)).toBe(true);
    expect(seqLte(0xffffffff, 0)).toBe(true);
  });

  it('2^31 apart is undefined: neither less nor greater', () => {
    expect(seqLt(0, 0x80000000)).toBe(false);
    expect(seqGt(0, 0x80000000)).toBe(false);
    expect(seqLt(0x7fffffff, 0)).toBe(false);
    expect(seqLt(0, 0x7fffffff)).toBe(true);
  });

  it('adds and diffs modulo 2^32', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqDiff(0xfffffffe, 2)).toBe(4);
  });
});

describe('LUN (SAM-5 §4.7)', () => {
  it('peripheral and flat forms', () => {
    expect(decodeLun(hex('0000000000000000'))).toBe(0);
    expect(decodeLun(hex('00ff000000000000'))).toBe(255);
    expect(decodeLun(hex('4100000000000000'))).toBe(256);
    expect(decodeLun(hex('7fff000000000000'))).toBe(0x3fff);
    expect(encodeLun(3).toString('hex')).toBe('0003000000000000');
    expect(encodeLun(300).toString('hex')).toBe('412c000000000000');
    expect(encodeLun(0x3fff).toString('hex')).toBe('7fff000000000000');
  });

  it('unsupported forms decode to -1', () => {
    expect(decodeLun(hex('8001000000000000'))).toBe(-1); // logical unit addressing
    expect(decodeLun(hex('c000000000000000'))).toBe(-1); // extended
    expect(decodeLun(hex('0001000100000000'))).toBe(-1); // second level
    expect(decodeLun(hex('0101000000000000'))).toBe(-1); // peripheral bus 1
  });

  it('encode refuses what it cannot express', () => {
    expect(() => encodeLun(0x4000)).toThrow(expect.objectContaining({ code: 'ERR_LUN_UNSUPPORTED' }));
    expect(() => encodeLun(-1)).toThrow();
    expect(() => encodeLun(1.5)).toThrow();
  });

  it('round-trips every flat LUN', () => {
    for (let l = 0; l <= 0x3fff; l++) expect(decodeLun(encodeLun(l))).toBe(l);
  });
});

describe('debug names', () => {
  it('names opcodes and reasons', () => {
    expect(opcodeName(0x01)).toBe('SCSI_COMMAND');
    expect(opcodeName(0x41)).toBe('SCSI_COMMAND');
    expect(opcodeName(0x1c)).toBe('OPCODE_0x1c');
    expect(rejectReasonName(0x09)).toBe('INVALID_PDU_FIELD');
  });
});
