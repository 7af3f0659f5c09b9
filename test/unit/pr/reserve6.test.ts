import { describe, expect, it } from 'vitest';
import { CONFLICT, FakeLu, GOOD, INQUIRY, MODE_SENSE6, READ10, RELEASE6, RESERVE6, SA, TUR, TYPES, WRITE10, nexus, prinCdb } from './harness.js';

const I1 = nexus(1, 'iqn.2024-01.org.test:init1', '23d000000001');
const I2 = nexus(2, 'iqn.2024-01.org.test:init2', '23d000000002');

describe('RESERVE(6) / RELEASE(6)', () => {
  it('libiscsi Reserve6.2Initiators sequence', async () => {
    const lu = new FakeLu();
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD); // the holder again
    expect(await lu.run(I2, RESERVE6)).toEqual(CONFLICT);
    expect(await lu.run(I2, RELEASE6)).toEqual(GOOD); // non-holder: GOOD, nothing released
    expect(await lu.run(I1, MODE_SENSE6)).toEqual(GOOD);
    expect(await lu.run(I2, MODE_SENSE6)).toEqual(CONFLICT);
    expect(await lu.run(I2, RESERVE6)).toEqual(CONFLICT);
    expect(await lu.run(I1, RELEASE6)).toEqual(GOOD);
    expect(await lu.run(I2, RESERVE6)).toEqual(GOOD);
    expect(await lu.run(I2, RELEASE6)).toEqual(GOOD);
    expect(lu.st.legacyHolder).toBeNull();
  });

  it('other nexuses get RESERVATION CONFLICT except for INQUIRY, RELEASE, PERSISTENT RESERVE IN', async () => {
    const lu = new FakeLu();
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    for (const cdb of [READ10, WRITE10, TUR, MODE_SENSE6]) {
      expect(await lu.run(I2, cdb)).toEqual(CONFLICT);
      expect(await lu.run(I1, cdb)).toEqual(GOOD);
    }
    expect(await lu.run(I2, INQUIRY)).toEqual(GOOD);
    expect(await lu.run(I2, Buffer.from([0x03, 0, 0, 0, 18, 0]))).toEqual(GOOD); // REQUEST SENSE
    expect(await lu.run(I2, Buffer.from([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]))).toEqual(GOOD); // REPORT LUNS
    expect((await lu.run(I2, prinCdb(0, 64))).kind).toBe('good');
    // PERSISTENT RESERVE OUT from another nexus conflicts with an SPC-2 reservation.
    expect(await lu.prout(I2, SA.REGISTER, 0, 0n, 5n)).toEqual(CONFLICT);
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, 5n)).toEqual(GOOD);
  });

  it('nexus loss (logout, connection drop) releases it; a new nexus with the same identity is not the holder', async () => {
    const lu = new FakeLu();
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    lu.st.nexusLost(I2); // someone else's loss changes nothing
    expect(await lu.run(I2, RESERVE6)).toEqual(CONFLICT);
    const relogin = nexus(10, I1.identity.initiatorName, '23d000000001');
    expect(await lu.run(relogin, READ10)).toEqual(CONFLICT);
    lu.st.nexusLost(I1);
    expect(await lu.run(I2, RESERVE6)).toEqual(GOOD);
    expect(await lu.run(I2, RELEASE6)).toEqual(GOOD);
  });

  it('LUN reset / target reset releases it', async () => {
    const lu = new FakeLu();
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    lu.st.reset();
    expect(await lu.run(I2, RESERVE6)).toEqual(GOOD);
  });

  it('SPC-4 §5.13.3: under a persistent reservation, holder and registrants get GOOD with no effect, others conflict', async () => {
    const lu = new FakeLu();
    const I3 = nexus(3, 'iqn.2024-01.org.test:init3', '3');
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, 1n)).toEqual(GOOD);
    expect(await lu.prout(I2, SA.REGISTER, 0, 0n, 2n)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.WE_RO, 1n, 0n)).toEqual(GOOD);
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    expect(await lu.run(I2, RESERVE6)).toEqual(GOOD);
    expect(lu.st.legacyHolder).toBeNull();
    expect(await lu.run(I3, RESERVE6)).toEqual(CONFLICT);
    expect(await lu.run(I3, RELEASE6)).toEqual(GOOD);
    expect(await lu.reservation(I1)).toEqual({ key: 1n, type: TYPES.WE_RO });
  });

  it('registrations without a reservation leave RESERVE(6) working; a held RESERVE(6) blocks PR RESERVE', async () => {
    const lu = new FakeLu();
    expect(await lu.prout(I1, SA.REGISTER, 0, 0n, 1n)).toEqual(GOOD);
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, 1n, 0n)).toEqual(CONFLICT);
    expect(await lu.run(I1, RELEASE6)).toEqual(GOOD);
    expect(await lu.prout(I1, SA.RESERVE, TYPES.EA, 1n, 0n)).toEqual(GOOD);
  });
});

describe('prCommands table', () => {
  it('one spec per opcode/service action, usage byte 0 is the opcode, lengths from the CDB', async () => {
    const { prCommands } = await import('../../../src/core/pr.js');
    const ids = prCommands.map((s) => `${s.opcode}/${s.serviceAction ?? '-'}`);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(['22/-', '23/-', '94/0', '94/1', '94/2', '94/3', '95/0', '95/1', '95/2', '95/3', '95/4', '95/5', '95/6'].sort());
    for (const s of prCommands) {
      expect(s.usage[0]).toBe(s.opcode);
      expect(s.usage.length).toBe(s.cdbLength);
    }
    const prin = prCommands.find((s) => s.opcode === 0x5e)!;
    expect(prin.transferLength(prinCdb(0, 0x1234), 512)).toBe(0x1234);
    const prout = prCommands.find((s) => s.opcode === 0x5f)!;
    expect(prout.transferLength(Buffer.from([0x5f, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0]), 512)).toBe(0x01020304);
  });

  it('specs marked reservationExempt never conflict, under RESERVE(6) or any persistent reservation', async () => {
    const { prCommands } = await import('../../../src/core/pr.js');
    const lu = new FakeLu();
    const I3 = nexus(3, 'iqn.2024-01.org.test:init3', '3');
    const exempt = prCommands.filter((s) => s.reservationExempt === true);
    expect(exempt.length).toBe(5);
    const cdbFor = (op: number, sa?: number): Buffer => (op === 0x17 ? RELEASE6 : prinCdb(sa ?? 0, 64));
    expect(await lu.run(I1, RESERVE6)).toEqual(GOOD);
    for (const s of exempt) expect(lu.st.conflicts(I2, s, cdbFor(s.opcode, s.serviceAction))).toBe(false);
    expect(await lu.run(I1, RELEASE6)).toEqual(GOOD);
    await lu.prout(I1, SA.REGISTER, 0, 0n, 1n);
    for (const type of Object.values(TYPES)) {
      expect(await lu.prout(I1, SA.RESERVE, type, 1n, 0n)).toEqual(GOOD);
      for (const s of exempt) expect(lu.st.conflicts(I3, s, cdbFor(s.opcode, s.serviceAction))).toBe(false);
      expect(await lu.prout(I1, SA.RELEASE, type, 1n, 0n)).toEqual(GOOD);
    }
  });
});
