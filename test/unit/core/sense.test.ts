import { describe, expect, it } from 'vitest';
import { SenseReasons, allSenseReasons, isUnitAttention, type SenseReason } from '../../../src/core/sense-reasons.js';
import { buildSense, parseSense } from '../../../src/core/sense.js';

describe('sense reason table', () => {
  it('every entry encodes in fixed and descriptor format and parses back', () => {
    expect(allSenseReasons.length).toBeGreaterThan(40);
    for (const reason of allSenseReasons) {
      const d = SenseReasons[reason];
      expect(d.key).toBeGreaterThanOrEqual(0);
      expect(d.key).toBeLessThanOrEqual(0xf);
      const fixed = buildSense(reason);
      expect(fixed.length).toBe(18);
      expect(fixed[0]).toBe(0x70);
      expect(fixed[2]).toBe(d.key);
      expect(fixed[7]).toBe(10);
      expect(fixed[12]).toBe(d.asc);
      expect(fixed[13]).toBe(d.ascq);
      const desc = buildSense(reason, { descriptor: true });
      expect(desc.length).toBe(8);
      expect([desc[0], desc[1], desc[2], desc[3], desc[7]]).toEqual([0x72, d.key, d.asc, d.ascq, 0]);
      expect(parseSense(fixed)).toMatchObject({ key: d.key, asc: d.asc, ascq: d.ascq, descriptor: false });
      expect(parseSense(desc)).toMatchObject({ key: d.key, asc: d.asc, ascq: d.ascq, descriptor: true });
    }
  });

  it('has the codes the SCSI standards assign', () => {
    const want: Array<[SenseReason, number, number, number]> = [
      ['INVALID_OPCODE', 5, 0x20, 0],
      ['INVALID_FIELD_IN_CDB', 5, 0x24, 0],
      ['INVALID_FIELD_IN_PARAMETER_LIST', 5, 0x26, 0],
      ['PARAMETER_LIST_LENGTH_ERROR', 5, 0x1a, 0],
      ['LBA_OUT_OF_RANGE', 5, 0x21, 0],
      ['LUN_NOT_SUPPORTED', 5, 0x25, 0],
      ['WRITE_PROTECTED', 7, 0x27, 0],
      ['MEDIUM_ERROR_READ', 3, 0x11, 0],
      ['MEDIUM_ERROR_WRITE', 3, 0x0c, 0],
      ['MISCOMPARE_DURING_VERIFY', 0xe, 0x1d, 0],
      ['SPACE_ALLOCATION_FAILED', 7, 0x27, 7],
      ['INTERNAL_TARGET_FAILURE', 4, 0x44, 0],
      ['LOGICAL_UNIT_COMMUNICATION_FAILURE', 4, 0x08, 0],
      ['NOT_READY_CAUSE_NOT_REPORTABLE', 2, 0x04, 0],
      ['MEDIUM_NOT_PRESENT', 2, 0x3a, 0],
      ['UA_POWER_ON_RESET', 6, 0x29, 0],
      ['UA_BUS_DEVICE_RESET', 6, 0x29, 3],
      ['UA_IT_NEXUS_LOSS', 6, 0x29, 7],
      ['UA_MODE_PARAMETERS_CHANGED', 6, 0x2a, 1],
      ['UA_RESERVATIONS_PREEMPTED', 6, 0x2a, 3],
      ['UA_RESERVATIONS_RELEASED', 6, 0x2a, 4],
      ['UA_REGISTRATIONS_PREEMPTED', 6, 0x2a, 5],
      ['UA_CAPACITY_DATA_CHANGED', 6, 0x2a, 9],
      ['UA_REPORTED_LUNS_DATA_CHANGED', 6, 0x3f, 0x0e],
      ['UA_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR', 6, 0x2f, 0],
      ['SAVING_PARAMETERS_NOT_SUPPORTED', 5, 0x39, 0],
      ['INSUFFICIENT_REGISTRATION_RESOURCES', 5, 0x55, 4],
      ['MEDIUM_REMOVAL_PREVENTED', 5, 0x53, 2],
      ['INVALID_FIELD_IN_INFORMATION_UNIT', 5, 0x0e, 3],
      ['INVALID_RELEASE_OF_PERSISTENT_RESERVATION', 5, 0x26, 4],
      ['OVERLAPPED_COMMANDS', 0xb, 0x4e, 0],
      ['MEDIUM_LOAD_OR_EJECT_FAILED', 3, 0x53, 0],
    ];
    for (const [r, key, asc, ascq] of want) expect(SenseReasons[r], r).toEqual({ key, asc, ascq });
    expect(isUnitAttention('UA_POWER_ON_RESET')).toBe(true);
    expect(isUnitAttention('INVALID_OPCODE')).toBe(false);
  });
});

describe('sense encoding', () => {
  it('fixed format with INFORMATION and a CDB field pointer (golden bytes)', () => {
    const s = buildSense('INVALID_FIELD_IN_CDB', { info: 0x01020304, field: { inCdb: true, byte: 0x0102, bit: 5 } });
    expect([...s]).toEqual([
      0xf0, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0x00, 0xcd, 0x01, 0x02,
    ]);
  });

  it('fixed format leaves VALID clear when INFORMATION does not fit 32 bits', () => {
    const s = buildSense('MEDIUM_ERROR_READ', { info: 0x1_0000_0000n });
    expect(s[0]).toBe(0x70);
    expect(s.readUInt32BE(3)).toBe(0);
  });

  it('field pointer into the parameter list without bit pointer', () => {
    const s = buildSense('INVALID_FIELD_IN_PARAMETER_LIST', { field: { inCdb: false, byte: 7 } });
    expect([s[15], s[16], s[17]]).toEqual([0x80, 0x00, 0x07]);
  });

  it('descriptor format with information and sense-key specific descriptors (golden bytes)', () => {
    const s = buildSense('MISCOMPARE_DURING_VERIFY', { descriptor: true, info: 0x1122334455667788n, field: { inCdb: true, byte: 2 } });
    expect([...s]).toEqual([
      0x72, 0x0e, 0x1d, 0x00, 0, 0, 0, 20,
      0x00, 0x0a, 0x80, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
      0x02, 0x06, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x00,
    ]);
    expect(parseSense(s)).toEqual({ descriptor: true, key: 0xe, asc: 0x1d, ascq: 0, info: 0x1122334455667788n, field: { inCdb: true, byte: 2 } });
  });

  it('parses garbage as undefined', () => {
    expect(parseSense(Buffer.alloc(3))).toBeUndefined();
    expect(parseSense(Buffer.from([0x10, 0, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
  });
});
