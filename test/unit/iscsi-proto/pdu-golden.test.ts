import { describe, expect, it } from 'vitest';
import { decodePdu, decodeSenseData, encodeBhs, encodeSenseData, peekBhs } from '../../../src/protocols/iscsi/pdu.js';
import { LunkitError } from '../../../src/protocols/errors.js';
import { opcodeName } from '../../../src/protocols/iscsi/constants.js';
import { Opcode } from '../../../src/protocols/iscsi/pdu-types.js';
import { hex, VECTORS } from './vectors.js';

describe('PDU golden bytes (RFC 7143 §11)', () => {
  it('covers every opcode of pdu-types.ts', () => {
    const covered = new Set(VECTORS.map((v) => v.pdu.opcode));
    for (const op of Object.values(Opcode)) expect(covered.has(op), opcodeName(op)).toBe(true);
  });

  for (const v of VECTORS) {
    describe(v.name, () => {
      it('decodes the hand-written bytes', () => {
        const p = decodePdu(v.bhs, v.ahs, v.data);
        const { data: _d, ...fields } = v.pdu;
        expect(p).toMatchObject(fields);
        expect(p.data.equals(v.data)).toBe(true);
        expect(p.dataSegmentLength).toBe(v.data.length);
        expect(p.totalAhsLength).toBe(v.ahs.length / 4);
      });

      it('encodes to the hand-written bytes', () => {
        const out = encodeBhs(v.pdu);
        expect(out.toString('hex')).toBe(Buffer.concat([v.bhs, v.ahs]).toString('hex'));
      });

      it('encodes into a dirty caller-supplied buffer', () => {
        const scratch = Buffer.alloc(128, 0xee);
        const out = encodeBhs(v.pdu, scratch);
        expect(out.buffer).toBe(scratch.buffer);
        expect(out.toString('hex')).toBe(Buffer.concat([v.bhs, v.ahs]).toString('hex'));
      });

      it('peekBhs reads the lengths', () => {
        expect(peekBhs(v.bhs)).toEqual({
          opcode: v.pdu.opcode,
          totalAhsLength: v.ahs.length / 4,
          ahsLength: v.ahs.length,
          dataSegmentLength: v.data.length,
        });
      });
    });
  }

  it('payload fields are views of the input, not copies', () => {
    const v = VECTORS.find((x) => x.pdu.opcode === Opcode.SCSI_COMMAND && x.ahs.length === 0)!;
    const p = decodePdu(v.bhs, v.ahs, v.data);
    if (p.opcode !== Opcode.SCSI_COMMAND) throw new Error('wrong opcode');
    expect(p.data.buffer).toBe(v.data.buffer);
    expect(p.cdb.buffer).toBe(v.bhs.buffer);
    expect(p.lunRaw.buffer).toBe(v.bhs.buffer);
    expect(p.lunRaw.toString('hex')).toBe('0005000000000000');
  });

  it('echoes lunRaw verbatim in preference to lun', () => {
    const lunRaw = hex('0001000000000000');
    const out = encodeBhs({
      opcode: Opcode.NOP_IN, itt: 1, targetTransferTag: 0xffffffff, statSN: 0, expCmdSN: 0, maxCmdSN: 0, lun: 7, lunRaw,
    });
    expect(out.subarray(8, 16).toString('hex')).toBe('0001000000000000');
  });

  it('rejects an unknown opcode with ERR_PDU_BAD_OPCODE', () => {
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x1c;
    expect(() => decodePdu(bhs, Buffer.alloc(0), Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_PDU_BAD_OPCODE' }));
    try {
      decodePdu(bhs, Buffer.alloc(0), Buffer.alloc(0));
    } catch (e) {
      expect(e).toBeInstanceOf(LunkitError);
    }
  });

  it('rejects lengths that disagree with the BHS', () => {
    const v = VECTORS[0];
    expect(() => decodePdu(v.bhs, Buffer.alloc(0), Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'ERR_PDU_MALFORMED' }));
    expect(() => decodePdu(v.bhs, Buffer.alloc(4), v.data)).toThrow(expect.objectContaining({ code: 'ERR_PDU_MALFORMED' }));
    expect(() => decodePdu(v.bhs.subarray(0, 47), Buffer.alloc(0), v.data)).toThrow(expect.objectContaining({ code: 'ERR_PDU_MALFORMED' }));
  });

  it('rejects an AHS that overruns TotalAHSLength', () => {
    const bhs = hex(`01c10000 01000000 00000000 00000000 00000001 00000000 00000000 00000000 ${'00'.repeat(16)}`);
    expect(() => decodePdu(bhs, hex('00090100'), Buffer.alloc(0))).toThrow(expect.objectContaining({ code: 'ERR_PDU_MALFORMED' }));
  });

  it('decodes an unsupported LUN format as -1', () => {
    const bhs = Buffer.from(VECTORS[0].bhs);
    bhs[8] = 0x80; // extended/logical unit addressing
    const p = decodePdu(bhs, Buffer.alloc(0), VECTORS[0].data);
    expect(p.opcode === Opcode.NOP_OUT && p.lun).toBe(-1);
  });

  it('refuses a data segment beyond the 24-bit field', () => {
    expect(() =>
      encodeBhs({ opcode: Opcode.NOP_IN, itt: 1, targetTransferTag: 0, statSN: 0, expCmdSN: 0, maxCmdSN: 0, data: Buffer.alloc(0x1000000) }),
    ).toThrow(expect.objectContaining({ code: 'ERR_PDU_TOO_LARGE' }));
  });

  it('sense data: 2-byte SenseLength + sense (§11.4.7)', () => {
    const sense = hex('70000500 0000000a 00000000 24000000 0000');
    expect(encodeSenseData(sense).toString('hex')).toBe(`0012${sense.toString('hex')}`);
    expect(decodeSenseData(hex('0004 01020304 ffff')).toString('hex')).toBe('01020304');
    expect(decodeSenseData(Buffer.alloc(0)).length).toBe(0);
    expect(() => decodeSenseData(hex('0009 0102'))).toThrow(expect.objectContaining({ code: 'ERR_PDU_MALFORMED' }));
  });
});
