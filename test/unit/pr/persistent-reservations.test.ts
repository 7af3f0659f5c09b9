import { describe, expect, it } from 'vitest';
import { CONFLICT, FakeLu, GOOD, INQUIRY, MODE_SENSE6, READ10, SA, TUR, TYPES, WRITE10, nexus, prinCdb, proutCdb, proutParams } from './harness.js';

const I1 = nexus(1, 'iqn.2024-01.org.test:init1', '23d000000001');
const I2 = nexus(2, 'iqn.2024-01.org.test:init2', '23d000000002');
const K1 = 0x1122334455667788n;
const K2 = 0x0102030405060708n;

async function registerBoth(lu: FakeLu): Promise<void> {
  expect(await lu.prout(I1, SA.REGISTER_IGNORE, 0, 0n, K1)).toEqual(GOOD);
  expect(await lu.prout(I2, SA.REGISTER_IGNORE, 0, 0n, K2)).toEqual(GOOD);
}

describe('PERSISTENT RESERVE IN', () => {
  it('READ KEYS on a fresh LU: generation 0, no keys, 8 bytes', async () => {
    const lu = new FakeLu();
    expect(await lu.prin(I1, 0)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
  });

  it('READ KEYS lists registered keys in order; truncation keeps ADDITIONAL LENGTH', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prin(I1, 0)).toEqual(
      Buffer.from([0, 0, 0, 2, 0, 0, 0, 16, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 1, 2, 3, 4, 5, 6, 7, 8]),
    );
    expect(await lu.prin(I1, 0, 8)).toEqual(Buffer.from([0, 0, 0, 2, 0, 0, 0, 16]));
  });

  it('REPORT CAPABILITIES: length 8, CRH SIP_C ATP_C, no PTPL_C, TMV and all six types', async () => {
    const lu = new FakeLu();
    expect(await lu.prin(I1, 2)).toEqual(Buffer.from([0x00, 0x08, 0x1c, 0x80, 0xea, 0x01, 0x00, 0x00]));
  });

  it('service actions 0..3 work, 4..0x1f are INVALID FIELD IN CDB', async () => {
    const lu = new FakeLu();
    for (let sa = 0; sa < 4; sa++) expect((await lu.run(I1, prinCdb(sa, 16384))).kind).toBe('good');
    for (let sa = 4; sa < 0x20; sa++) {
      expect(await lu.run(I1, prinCdb(sa, 16384))).toEqual({
        kind: 'check',
        reason: 'INVALID_FIELD_IN_CDB',
        field: { inCdb: true, byte: 1, bit: 4 },
      });
    }
  });

  it('READ RESERVATION: holder key, scope/type byte 21', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.WE_RO, K1, 0n)).toEqual(GOOD);
    expect(await lu.prin(I2, 1)).toEqual(
      Buffer.from([0, 0, 0, 2, 0, 0, 0, 16, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 0, 0, 0x05, 0, 0]),
    );
  });

  it('READ FULL STATUS: descriptor with R_HOLDER, relative port and iSCSI TransportID', async () => {
    const lu = new FakeLu();
    const n = nexus(7, 'iqn.x', 'abcdef012345', 3);
    expect(await lu.prout(n, SA.REGISTER, 0, 0n, 0x42n)).toEqual(GOOD);
    expect(await lu.prout(n, SA.RESERVE, TYPES.EA, 0x42n, 0n)).toEqual(GOOD);
    const name = 'iqn.x,i,0xabcdef012345'; // 22 chars + NUL -> padded to 24
    const tid = Buffer.alloc(28);
    tid[0] = 0x45;
    tid[3] = 24;
    Buffer.from(name, 'ascii').copy(tid, 4);
    const desc = Buffer.alloc(24);
    desc.writeBigUInt64BE(0x42n, 0);
    desc[12] = 0x01;
    desc[13] = 0x03;
    desc[19] = 3;
    desc[23] = 28;
    const expected = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 52]), desc, tid]);
    expect(await lu.prin(n, 3)).toEqual(expected);
  });
});

describe('PERSISTENT RESERVE OUT: REGISTER', () => {
  it('register, re-register with a wrong key conflicts, unregister', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER_IGNORE, 0, 0n, K1)).toEqual(GOOD);
    expect(await lu.keys(I1)).toEqual({ gen: 1, keys: [K1] });
    // libiscsi prout_reregister_key_fails: REGISTER with RESERVATION KEY 0 from a registered nexus.
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, K1 + 1n)).toEqual(CONFLICT);
    expect(await lu.prout(I1, SA.REGISTER, 0, K1, 0n)).toEqual(GOOD);
    expect(await lu.keys(I1)).toEqual({ gen: 2, keys: [] });
  });

  it('an unregistered nexus with a non-zero RESERVATION KEY conflicts; SARK 0 is a no-op', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER, 0, 5n, 6n)).toEqual(CONFLICT);
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, 0n)).toEqual(GOOD);
    expect(await lu.keys(I1)).toEqual({ gen: 0, keys: [] });
  });

  it('REGISTER with the right key changes it; REGISTER AND IGNORE replaces any key', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, K1)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.REGISTER, 0, K1, K2)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.REGISTER_IGNORE, 0, 999n, 77n)).toEqual(GOOD);
    expect(await lu.keys(I1)).toEqual({ gen: 3, keys: [77n] });
  });

  it('registrations belong to the I_T nexus identity: a new session with the same ISID is still registered', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, K1)).toEqual(GOOD);
    lu.st.nexusLost(I1);
    const again = nexus(99, I1.identity.initiatorName, '23d000000001');
    expect(await lu.prout(again, SA.RESERVE, TYPES.EA, K1, 0n)).toEqual(GOOD);
    const otherIsid = nexus(100, I1.identity.initiatorName, '23d000000009');
    expect(await lu.run(otherIsid, READ10)).toEqual(CONFLICT);
  });

  it('ALL_TG_PT registers the initiator port on every target port', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, K1, 0x04)).toEqual(GOOD);
    const viaPort2 = nexus(3, I1.identity.initiatorName, '23d000000001', 2);
    expect(await lu.prout(viaPort2, SA.RESERVE, TYPES.WE, K1, 0n)).toEqual(GOOD);
    const full = await lu.prin(I1, 3);
    expect(full[8 + 12]).toBe(0x03); // ALL_TG_PT | R_HOLDER
  });

  it('SPEC_I_PT registers the listed TransportIDs with the same key', async () => {
    const lu = new FakeLu();
    const tidText = Buffer.from(`${I2.identity.initiatorName},I,0x23D000000002`, 'ascii');
    const padded = Math.ceil((tidText.length + 1) / 4) * 4;
    const tid = Buffer.alloc(4 + padded);
    tid[0] = 0x45;
    tid.writeUInt16BE(padded, 2);
    tidText.copy(tid, 4);
    const lenField = Buffer.alloc(4);
    lenField.writeUInt32BE(tid.length);
    const params = Buffer.concat([proutParams(0n, K1, 0x08), lenField, tid]);
    expect(await lu.run(I1, proutCdb(SA.REGISTER, 0, params.length), params)).toEqual(GOOD);
    expect(await lu.keys(I1)).toEqual({ gen: 1, keys: [K1, K1] });
    // I2 is registered now: it may reserve with K1.
    expect(await lu.prout(I2, SA.RESERVE, TYPES.EA, K1, 0n)).toEqual(GOOD);
  });

  it('SPEC_I_PT: bad TransportID or truncated list fails and registers nothing', async () => {
    const lu = new FakeLu();
    const bad = Buffer.alloc(24);
    bad[0] = 0x41; // format 01b, protocol 1 (SPI): not iSCSI
    bad[3] = 20;
    const lenField = Buffer.alloc(4);
    lenField.writeUInt32BE(bad.length);
    const params = Buffer.concat([proutParams(0n, K1, 0x08), lenField, bad]);
    expect(await lu.run(I1, proutCdb(SA.REGISTER, 0, params.length), params)).toMatchObject({
      kind: 'check',
      reason: 'INVALID_FIELD_IN_PARAMETER_LIST',
    });
    lenField.writeUInt32BE(100);
    const short = Buffer.concat([proutParams(0n, K1, 0x08), lenField, bad]);
    expect(await lu.run(I1, proutCdb(SA.REGISTER, 0, short.length), short)).toMatchObject({ reason: 'PARAMETER_LIST_LENGTH_ERROR' });
    expect(await lu.keys(I1)).toEqual({ gen: 0, keys: [] });
  });

  it('too many registrations: INSUFFICIENT REGISTRATION RESOURCES', async () => {
    const lu = new FakeLu();
    for (let i = 0; i < 256; i++) {
      expect(await lu.prout(nexus(1000 + i, `iqn.many:${i}`, '1'), SA.REGISTER, 0, 0n, BigInt(i + 1))).toEqual(GOOD);
    }
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, K1)).toMatchObject({ reason: 'INSUFFICIENT_REGISTRATION_RESOURCES' });
  });
});

describe('PERSISTENT RESERVE OUT: parameter and CDB checks', () => {
  it('parameter list length other than 24 is PARAMETER LIST LENGTH ERROR', async () => {
    const lu = new FakeLu();
    const params = Buffer.concat([proutParams(0n, K1), Buffer.alloc(4)]);
    expect(await lu.run(I1, proutCdb(SA.REGISTER, 0, 28), params)).toMatchObject({ reason: 'PARAMETER_LIST_LENGTH_ERROR' });
    expect(await lu.run(I1, proutCdb(SA.REGISTER, 0, 16), params.subarray(0, 16))).toMatchObject({ reason: 'PARAMETER_LIST_LENGTH_ERROR' });
  });

  it('SPEC_I_PT outside REGISTER is INVALID FIELD IN PARAMETER LIST', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER_IGNORE, 0, 0n, K1, 0x08)).toEqual({
      kind: 'check',
      reason: 'INVALID_FIELD_IN_PARAMETER_LIST',
      field: { inCdb: false, byte: 20, bit: 3 },
    });
  });

  it('bad type or scope is INVALID FIELD IN CDB; REGISTER AND MOVE is not offered', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    for (const t of [0, 2, 4, 9, 15]) {
      expect(await lu.prout(I1, SA.RESERVE, t, K1, 0n)).toMatchObject({ reason: 'INVALID_FIELD_IN_CDB', field: { byte: 2 } });
    }
    expect(await lu.run(I1, proutCdb(SA.RESERVE, TYPES.EA, 24, 1), proutParams(K1, 0n))).toMatchObject({
      reason: 'INVALID_FIELD_IN_CDB',
      field: { inCdb: true, byte: 2, bit: 7 },
    });
    expect(await lu.run(I1, proutCdb(7, 0, 24), proutParams(K1, 0n))).toMatchObject({ reason: 'INVALID_FIELD_IN_CDB' });
  });
});

describe('PERSISTENT RESERVE OUT: RESERVE and RELEASE', () => {
  for (const [name, type] of Object.entries(TYPES)) {
    it(`${name}: reserve, verify, release (libiscsi prout_reserve_simple)`, async () => {
      const lu = new FakeLu();
      expect(await lu.prout(I1, SA.REGISTER_IGNORE, 0, 0n, K1)).toEqual(GOOD);
      const gen = (await lu.keys(I1)).gen;
      expect(await lu.prout(I1, SA.RESERVE, type, K1, 0n)).toEqual(GOOD);
      const allReg = type === 7 || type === 8;
      expect(await lu.reservation(I1)).toEqual({ key: allReg ? 0n : K1, type });
      // Same type again from the holder: GOOD; another type: conflict.
      expect(await lu.prout(I1, SA.RESERVE, type, K1, 0n)).toEqual(GOOD);
      expect(await lu.prout(I1, SA.RESERVE, type === 1 ? 3 : 1, K1, 0n)).toEqual(CONFLICT);
      expect(await lu.prout(I1, SA.RELEASE, type, K1, 0n)).toEqual(GOOD);
      expect(await lu.reservation(I1)).toBeNull();
      expect((await lu.keys(I1)).gen).toBe(gen);
    });
  }

  it('RESERVE needs a registration and the right key; another nexus cannot take a held reservation', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, 0n, 0n)).toEqual(CONFLICT);
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, K2, 0n)).toEqual(CONFLICT);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I2, SA.RESERVE, TYPES.EA, K2, 0n)).toEqual(CONFLICT);
  });

  it('RELEASE: wrong type is INVALID RELEASE; a non-holder release is GOOD and changes nothing', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.WE, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.RELEASE, TYPES.EA, K1, 0n)).toEqual({ kind: 'check', reason: 'INVALID_RELEASE_OF_PERSISTENT_RESERVATION' });
    expect(await lu.prout(I2, SA.RELEASE, TYPES.WE, K2, 0n)).toEqual(GOOD);
    expect(await lu.reservation(I1)).toEqual({ key: K1, type: TYPES.WE });
    expect(await lu.prout(I2, SA.RELEASE, TYPES.WE, K1, 0n)).toEqual(CONFLICT);
  });

  it('releasing a registrants-only reservation gives the other registrants RESERVATIONS RELEASED', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA_RO, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.RELEASE, TYPES.EA_RO, K1, 0n)).toEqual(GOOD);
    expect(lu.uaReasonsFor(I2)).toEqual(['UA_RESERVATIONS_RELEASED']);
    expect(lu.uaReasonsFor(I1)).toEqual([]);
  });
});

// libiscsi test_prout_reserve_access.c: [reg read, reg write, unreg read, unreg write] of the second initiator.
const ACCESS: Array<[keyof typeof TYPES, [boolean, boolean, boolean, boolean]]> = [
  ['EA', [false, false, false, false]],
  ['WE', [true, false, true, false]],
  ['EA_RO', [true, true, false, false]],
  ['WE_RO', [true, true, true, false]],
  ['EA_AR', [true, true, false, false]],
  ['WE_AR', [true, true, true, false]],
];

describe('reservation conflicts (SPC-4 table 54)', () => {
  for (const [name, [regRead, regWrite, unregRead, unregWrite]] of ACCESS) {
    it(`${name}: holder has access, the other nexus as libiscsi expects`, async () => {
      const lu = new FakeLu();
      const type = TYPES[name];
      await registerBoth(lu);
      expect(await lu.prout(I1, SA.RESERVE, type, K1, 0n)).toEqual(GOOD);
      expect(await lu.run(I1, READ10)).toEqual(GOOD);
      expect(await lu.run(I1, WRITE10)).toEqual(GOOD);
      expect(await lu.run(I2, READ10)).toEqual(regRead ? GOOD : CONFLICT);
      expect(await lu.run(I2, WRITE10)).toEqual(regWrite ? GOOD : CONFLICT);
      // Unregistering I2 (allowed under every type: PROUT is not refused by conflicts()).
      expect(await lu.prout(I2, SA.REGISTER, 0, K2, 0n)).toEqual(GOOD);
      expect(await lu.run(I2, READ10)).toEqual(unregRead ? GOOD : CONFLICT);
      expect(await lu.run(I2, WRITE10)).toEqual(unregWrite ? GOOD : CONFLICT);
      // Never refused: INQUIRY, TEST UNIT READY, PERSISTENT RESERVE IN.
      expect(await lu.run(I2, INQUIRY)).toEqual(GOOD);
      expect(await lu.run(I2, TUR)).toEqual(GOOD);
      expect((await lu.run(I2, prinCdb(0, 64))).kind).toBe('good');
      // MODE SENSE behaves like a read (SPC-4 table 54).
      expect(await lu.run(I2, MODE_SENSE6)).toEqual(unregRead ? GOOD : CONFLICT);
      expect(await lu.prout(I1, SA.RELEASE, type, K1, 0n)).toEqual(GOOD);
      expect(await lu.run(I2, WRITE10)).toEqual(GOOD);
    });
  }

  it('commands with service actions and fields: READ CAPACITY(16), GET LBA STATUS, PREVENT ALLOW, SYNCHRONIZE CACHE', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, K1, 0n)).toEqual(GOOD);
    const cdb16 = (sa: number): Buffer => Buffer.from([0x9e, sa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
    expect(await lu.run(I2, cdb16(0x10))).toEqual(GOOD);
    expect(await lu.run(I2, cdb16(0x12))).toEqual(CONFLICT);
    expect(await lu.run(I2, Buffer.from([0x1e, 0, 0, 0, 0, 0]))).toEqual(GOOD);
    expect(await lu.run(I2, Buffer.from([0x1e, 0, 0, 0, 1, 0]))).toEqual(CONFLICT);
    expect(await lu.run(I2, Buffer.from([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toEqual(CONFLICT);
    expect(await lu.run(I2, Buffer.from([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]))).toEqual(GOOD);
  });
});

describe('reservation ownership (libiscsi test_prout_reserve_ownership.c)', () => {
  for (const [name, type] of Object.entries(TYPES)) {
    const shared = type === 7 || type === 8;
    it(`${name}: the holder unregisters -> reservation ${shared ? 'stays' : 'is released'}`, async () => {
      const lu = new FakeLu();
      await registerBoth(lu);
      expect(await lu.prout(I1, SA.RESERVE, type, K1, 0n)).toEqual(GOOD);
      expect(await lu.prout(I1, SA.REGISTER, 0, K1, 0n)).toEqual(GOOD);
      if (shared) {
        expect(await lu.reservation(I1)).toEqual({ key: 0n, type });
        expect(await lu.prout(I2, SA.RELEASE, type, K2, 0n)).toEqual(GOOD);
      }
      expect(await lu.reservation(I1)).toBeNull();
      const ro = type === 5 || type === 6;
      // Registrants only: the others learn the reservation went; all registrants:
      // I2 released it itself and I1 is no longer registered, so nobody is told.
      expect(lu.uaReasonsFor(I2)).toEqual(ro ? ['UA_RESERVATIONS_RELEASED'] : []);
      // An all-registrants reservation ends with its last registrant.
      if (shared) {
        expect(await lu.prout(I2, SA.RESERVE, type, K2, 0n)).toEqual(GOOD);
        expect(await lu.prout(I2, SA.REGISTER, 0, K2, 0n)).toEqual(GOOD);
        expect(await lu.reservation(I1)).toBeNull();
      }
    });
  }
});

describe('CLEAR and PREEMPT', () => {
  it('CLEAR drops everything, bumps the generation once, tells the others', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    const gen = (await lu.keys(I1)).gen;
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I2, SA.CLEAR, 0, K1, 0n)).toEqual(CONFLICT);
    expect(await lu.prout(I1, SA.CLEAR, 0, K1, 0n)).toEqual(GOOD);
    expect(await lu.reservation(I1)).toBeNull();
    expect(await lu.keys(I1)).toEqual({ gen: gen + 1, keys: [] });
    expect(lu.uaReasonsFor(I2)).toEqual(['UA_RESERVATIONS_PREEMPTED']);
    expect(lu.uaReasonsFor(I1)).toEqual([]);
  });

  it('PREEMPT without a reservation removes the registrations of that key (libiscsi prout_preempt_rm_reg)', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    const gen = (await lu.keys(I1)).gen;
    expect(await lu.prout(I2, SA.PREEMPT, TYPES.EA, K2, K1)).toEqual(GOOD);
    expect(await lu.keys(I1)).toEqual({ gen: gen + 1, keys: [K2] });
    expect(await lu.reservation(I1)).toBeNull();
    expect(lu.uaReasonsFor(I1)).toEqual(['UA_REGISTRATIONS_PREEMPTED']);
  });

  it('PREEMPT: SARK 0 without an all-registrants reservation is INVALID FIELD; an unknown key conflicts; wrong own key conflicts', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I2, SA.PREEMPT, TYPES.EA, K2, 0n)).toEqual({
      kind: 'check',
      reason: 'INVALID_FIELD_IN_PARAMETER_LIST',
      field: { inCdb: false, byte: 8 },
    });
    expect(await lu.prout(I2, SA.PREEMPT, TYPES.EA, K2, 12345n)).toEqual(CONFLICT);
    expect(await lu.prout(I2, SA.PREEMPT, TYPES.EA, K1, K1)).toEqual(CONFLICT);
  });

  it('PREEMPT of the holder: the preempter holds a reservation of the new type', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.WE, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I2, SA.PREEMPT, TYPES.EA, K2, K1)).toEqual(GOOD);
    expect(await lu.reservation(I2)).toEqual({ key: K2, type: TYPES.EA });
    expect(await lu.keys(I2)).toMatchObject({ keys: [K2] });
    expect(lu.uaReasonsFor(I1)).toEqual(['UA_REGISTRATIONS_PREEMPTED']);
    expect(await lu.run(I1, READ10)).toEqual(CONFLICT);
    expect(lu.aborted).toEqual([]);
  });

  it('PREEMPT AND ABORT asks the device to abort the preempted ports tasks', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I2, SA.PREEMPT_AND_ABORT, TYPES.EA, K2, K1)).toEqual(GOOD);
    expect(lu.aborted).toEqual([[I1.identity.initiatorPortId]]);
  });

  it('PREEMPT of an all-registrants reservation with SARK 0 removes every other registrant', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    const i3 = nexus(3, 'iqn.2024-01.org.test:init3', '1');
    expect(await lu.prout(i3, SA.REGISTER, 0, 0n, 0x33n)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.WE_AR, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I2, SA.PREEMPT, TYPES.WE_RO, K2, 0n)).toEqual(GOOD);
    expect(await lu.keys(I2)).toMatchObject({ keys: [K2] });
    expect(await lu.reservation(I2)).toEqual({ key: K2, type: TYPES.WE_RO });
    expect(lu.uaReasonsFor(I1)).toEqual(['UA_REGISTRATIONS_PREEMPTED']);
    expect(lu.uaReasonsFor(i3)).toEqual(['UA_REGISTRATIONS_PREEMPTED']);
  });

  it('self-preempt changing the type tells the remaining registrants RESERVATIONS RELEASED', async () => {
    const lu = new FakeLu();
    await registerBoth(lu);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.WE_RO, K1, 0n)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.PREEMPT, TYPES.EA_RO, K1, K1)).toEqual(GOOD);
    expect(await lu.reservation(I1)).toEqual({ key: K1, type: TYPES.EA_RO });
    expect(await lu.keys(I1)).toMatchObject({ keys: [K1, K2] });
    expect(lu.uaReasonsFor(I2)).toEqual(['UA_RESERVATIONS_RELEASED']);
  });

  it('PR generation counts REGISTER, CLEAR and PREEMPT only', async () => {
    const lu = new FakeLu();
    await registerBoth(lu); // 2
    await lu.prout(I1, SA.RESERVE, TYPES.EA, K1, 0n);
    await lu.prout(I1, SA.RELEASE, TYPES.EA, K1, 0n);
    await lu.prout(I1, SA.PREEMPT, TYPES.EA, K1, K2); // 3
    await lu.prout(I1, SA.CLEAR, 0, K1, 0n); // 4
    expect((await lu.keys(I1)).gen).toBe(4);
  });
});
