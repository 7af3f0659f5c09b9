// Property tests, time-boxed: decode(encode(x)) == x for every PDU type, and
// the framer gives the same PDUs however the stream is chunked.
import { describe, expect } from 'vitest';
import { fc, test } from '@fast-check/vitest';
import { decodePdu, encodeBhs, type EncodablePdu } from '../../../src/protocols/iscsi/pdu.js';
import { PduFramer, type RawPdu } from '../../../src/protocols/iscsi/framer.js';
import { encodeFrame } from '../../../src/protocols/iscsi/writer.js';
import type { Pdu } from '../../../src/protocols/iscsi/pdu-types.js';

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const u8 = fc.nat({ max: 0xff });
const lun = fc.nat({ max: 0x3fff });
const data = fc.uint8Array({ maxLength: 70 }).map((a) => Buffer.from(a));
const b = fc.boolean();
const common = { itt: u32, data };

const arbPdu: fc.Arbitrary<EncodablePdu> = fc.oneof(
  fc.record({ opcode: fc.constant(0x00 as const), immediate: b, lun, targetTransferTag: u32, cmdSN: u32, expStatSN: u32, ...common }),
  fc.record({
    opcode: fc.constant(0x01 as const), immediate: b, final: b, read: b, write: b, attr: fc.nat({ max: 7 }), lun,
    expectedDataTransferLength: u32, cmdSN: u32, expStatSN: u32,
    cdb: fc.uint8Array({ minLength: 16, maxLength: 40 }).map((a) => Buffer.from(a)),
    bidiReadLength: fc.option(u32, { nil: undefined }), ...common,
  }).map((p) => {
    if (p.bidiReadLength === undefined) delete (p as { bidiReadLength?: number }).bidiReadLength;
    return p;
  }),
  fc.record({ opcode: fc.constant(0x02 as const), immediate: b, function: fc.nat({ max: 0x7f }), lun, referencedTaskTag: u32, cmdSN: u32, expStatSN: u32, refCmdSN: u32, expDataSN: u32, ...common }),
  fc.record({ opcode: fc.constant(0x03 as const), transit: b, continue: b, csg: fc.nat({ max: 3 }), nsg: fc.nat({ max: 3 }), versionMax: u8, versionMin: u8, isid: fc.nat({ max: 2 ** 48 - 1 }), tsih: u16, cid: u16, cmdSN: u32, expStatSN: u32, ...common }).map((p) => ({ ...p, immediate: true, final: p.transit })),
  fc.record({ opcode: fc.constant(0x04 as const), immediate: b, final: b, continue: b, lun, targetTransferTag: u32, cmdSN: u32, expStatSN: u32, ...common }),
  fc.record({ opcode: fc.constant(0x05 as const), final: b, lun, targetTransferTag: u32, expStatSN: u32, dataSN: u32, bufferOffset: u32, ...common }),
  fc.record({ opcode: fc.constant(0x06 as const), immediate: b, reasonCode: fc.nat({ max: 0x7f }), cid: u16, cmdSN: u32, expStatSN: u32, ...common }),
  fc.record({ opcode: fc.constant(0x10 as const), type: fc.nat({ max: 15 }), lun, targetTransferTag: u32, expStatSN: u32, begRun: u32, runLength: u32, ...common }),
  fc.record({ opcode: fc.constant(0x20 as const), lun, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, ...common }),
  fc.record({ opcode: fc.constant(0x21 as const), bidiOverflow: b, bidiUnderflow: b, overflow: b, underflow: b, response: u8, status: u8, snackTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, expDataSN: u32, bidiReadResidualCount: u32, residualCount: u32, ...common }),
  fc.record({ opcode: fc.constant(0x22 as const), response: u8, statSN: u32, expCmdSN: u32, maxCmdSN: u32, ...common }),
  fc.record({ opcode: fc.constant(0x23 as const), transit: b, continue: b, csg: fc.nat({ max: 3 }), nsg: fc.nat({ max: 3 }), versionMax: u8, versionActive: u8, isid: fc.nat({ max: 2 ** 48 - 1 }), tsih: u16, statSN: u32, expCmdSN: u32, maxCmdSN: u32, statusClass: u8, statusDetail: u8, ...common }).map((p) => ({ ...p, final: p.transit })),
  fc.record({ opcode: fc.constant(0x24 as const), final: b, continue: b, lun, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, ...common }),
  fc.record({ opcode: fc.constant(0x25 as const), final: b, acknowledge: b, overflow: b, underflow: b, statusPresent: b, status: u8, lun, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, dataSN: u32, bufferOffset: u32, residualCount: u32, ...common }),
  fc.record({ opcode: fc.constant(0x26 as const), response: u8, statSN: u32, expCmdSN: u32, maxCmdSN: u32, time2Wait: u16, time2Retain: u16, ...common }),
  fc.record({ opcode: fc.constant(0x31 as const), lun, targetTransferTag: u32, statSN: u32, expCmdSN: u32, maxCmdSN: u32, r2tSN: u32, bufferOffset: u32, desiredDataTransferLength: u32, ...common }),
  fc.record({ opcode: fc.constant(0x32 as const), lun, statSN: u32, expCmdSN: u32, maxCmdSN: u32, asyncEvent: u8, asyncVCode: u8, parameter1: u16, parameter2: u16, parameter3: u16, ...common }),
  fc.record({ opcode: fc.constant(0x3f as const), reason: u8, statSN: u32, expCmdSN: u32, maxCmdSN: u32, dataSN: u32, ...common }),
) as fc.Arbitrary<EncodablePdu>;

/** The fields the encoder controls, for comparison with the decoded PDU. */
function comparable(p: EncodablePdu | Pdu): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    if (['lunRaw', 'ahs', 'totalAhsLength', 'dataSegmentLength'].includes(k)) continue;
    out[k] = Buffer.isBuffer(v) ? v.toString('hex') : v;
  }
  // Fields whose wire bit is fixed or implied are not compared when absent from the input.
  if (!('immediate' in p)) delete out.immediate;
  if (!('final' in p)) delete out.final;
  if (!('data' in p) || (Buffer.isBuffer(p.data) && p.data.length === 0)) delete out.data;
  return out;
}

describe('properties', () => {
  test.prop([arbPdu], { numRuns: 400, interruptAfterTimeLimit: 4000 })('decode(encode(x)) keeps every field', (pdu) => {
    const header = encodeBhs(pdu);
    const p = decodePdu(header.subarray(0, 48), header.subarray(48), pdu.data ?? Buffer.alloc(0));
    const got = comparable(p);
    const want = comparable(pdu);
    for (const k of Object.keys(want)) expect(got[k], k).toEqual(want[k]);
    // Re-encoding the decoded PDU gives the same bytes.
    expect(encodeBhs(p).equals(header)).toBe(true);
  });

  test.prop([fc.array(arbPdu, { minLength: 1, maxLength: 6 }), fc.array(fc.nat({ max: 2000 }), { maxLength: 12 }), b, b], {
    numRuns: 150,
    interruptAfterTimeLimit: 4000,
  })('framer output does not depend on chunking', (pdus, cuts, hd, dd) => {
    const frames = pdus.map((p) => Buffer.concat(encodeFrame(encodeBhs(p), p.data, { headerDigest: hd, dataDigest: dd })));
    const stream = Buffer.concat(frames);
    const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
    const got: RawPdu[] = [];
    const framer = new PduFramer({
      maxDataSegmentLength: 1 << 16,
      headerDigest: hd,
      dataDigest: dd,
      onPdu: (f) => got.push(f),
      onError: (e) => {
        throw e;
      },
    });
    let prev = 0;
    for (const c of [...points, stream.length]) {
      framer.push(stream.subarray(prev, c));
      prev = c;
    }
    expect(got).toHaveLength(pdus.length);
    got.forEach((f, i) => {
      expect(f.dataDigestOk).toBe(true);
      expect(Buffer.concat([f.bhs, f.ahs]).equals(encodeBhs(pdus[i]))).toBe(true);
      expect(f.data.equals(pdus[i].data ?? Buffer.alloc(0))).toBe(true);
    });
  });
});
