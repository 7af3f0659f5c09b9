// The initiator library against lunkit's own target (in-process, port 0):
// discovery, CHAP and mutual CHAP, login failures as typed errors, the SCSI
// helpers, the CmdSN window, target pings, logout, and the fault seam.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import {
  IscsiSession,
  discoverTargets,
  flipByte,
  inquiry,
  isIscsiInitiatorError,
  openUrl,
  prReadKeys,
  prReadReservation,
  prRegister,
  prRelease,
  prReserve,
  prClear,
  PrType,
  read16,
  readCapacity16,
  reportLuns,
  supportedVpdPages,
  unitSerialNumber,
  deviceIdentification,
  blockLimits,
  synchronizeCache16,
  testUnitReady,
  unmap,
  write16,
  Opcode,
} from './api.js';

const INITIATOR = 'iqn.2024-01.org.lunkit.test:init';
const ALICE = 'iqn.2024-01.org.lunkit.test:alice';
const BOB = 'iqn.2024-01.org.lunkit.test:bob';
const SECRET = 'sixteen-byte-pw!';
const TARGET_SECRET = 'target-secret-16';

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isIscsiInitiatorError(err) ? err.code : err).toBe(code);
}

describe('initiator against the lunkit target: login', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({
      lunSizes: [8 << 20],
      attributes: { authentication: true },
      acls: [
        { initiator: ALICE, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }], chap: { userid: 'alice', password: SECRET } },
        {
          initiator: BOB,
          mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }],
          chap: { userid: 'bob', password: SECRET },
          mutualChap: { userid: 'tgt', password: TARGET_SECRET },
        },
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('discovers the target and its portal', async () => {
    const targets = await discoverTargets({ host: '127.0.0.1', port: t.port, initiatorName: ALICE });
    expect(targets).toEqual([{ name: t.iqn, portals: [{ host: '127.0.0.1', port: t.port, tpgt: 1 }] }]);
  });

  it('logs in with one-way CHAP from the URL', async () => {
    const { session, lun } = await openUrl(`iscsi://alice%${SECRET}@127.0.0.1:${t.port}/${t.iqn}/0`, { initiatorName: ALICE, env: {} });
    expect(session.params.authMethod).toBe('CHAP');
    expect(session.tsih).not.toBe(0);
    await testUnitReady(session, lun);
    const cap = await readCapacity16(session, lun);
    expect(cap.ok && cap.value.blocks).toBe(16384n);
    await session.logout();
  });

  it('a wrong CHAP secret is ERR_ISCSI_LOGIN_AUTH', async () => {
    await expectCode(openUrl(`iscsi://alice%wrong-secret-16@127.0.0.1:${t.port}/${t.iqn}/0`, { initiatorName: ALICE, env: {} }), 'ERR_ISCSI_LOGIN_AUTH');
  });

  it('no CHAP where the target requires it is ERR_ISCSI_LOGIN_AUTH', async () => {
    await expectCode(IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, initiatorName: ALICE }), 'ERR_ISCSI_LOGIN_AUTH');
  });

  it('an unknown target is ERR_ISCSI_LOGIN_NOT_FOUND', async () => {
    await expectCode(
      IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: 'iqn.2024-01.org.lunkit.test:nope', initiatorName: ALICE, chap: { user: 'alice', password: SECRET } }),
      'ERR_ISCSI_LOGIN_NOT_FOUND',
    );
  });

  it('mutual CHAP verifies the target (URL query and environment)', async () => {
    const q = `?target_user=tgt&target_password=${TARGET_SECRET}`;
    const a = await openUrl(`iscsi://bob%${SECRET}@127.0.0.1:${t.port}/${t.iqn}/0${q}`, { initiatorName: BOB, env: {} });
    expect((await testUnitReady(a.session, 0)).status).toBeGreaterThanOrEqual(0);
    await a.session.logout();
    const env = { LIBISCSI_CHAP_TARGET_USERNAME: 'tgt', LIBISCSI_CHAP_TARGET_PASSWORD: TARGET_SECRET };
    const b = await openUrl(`iscsi://bob%${SECRET}@127.0.0.1:${t.port}/${t.iqn}/0`, { initiatorName: BOB, env });
    await b.session.logout();
  });

  it('a target that cannot prove the mutual secret is ERR_ISCSI_TARGET_AUTH', async () => {
    await expectCode(
      openUrl(`iscsi://bob%${SECRET}@127.0.0.1:${t.port}/${t.iqn}/0?target_user=tgt&target_password=not-the-secret!`, { initiatorName: BOB, env: {} }),
      'ERR_ISCSI_TARGET_AUTH',
    );
  });

  it('connect failures are ERR_ISCSI_CONNECT', async () => {
    const closed = await startIscsiTarget({ lunSizes: [1 << 20] });
    const port = closed.port;
    await closed.close();
    await expectCode(IscsiSession.open({ host: '127.0.0.1', port, targetName: t.iqn }), 'ERR_ISCSI_CONNECT');
  });
});

describe('initiator against the lunkit target: full feature phase', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [16 << 20, 4 << 20], attributes: { defaultCmdsnDepth: 4, nopInInterval: 1, nopInTimeout: 2 } });
  });
  afterAll(async () => {
    await t?.close();
  });
  const open = (extra: Partial<Parameters<typeof IscsiSession.open>[0]> = {}) =>
    IscsiSession.open({ host: '127.0.0.1', port: t.port, targetName: t.iqn, initiatorName: INITIATOR, ...extra });

  it('INQUIRY, VPD pages, READ CAPACITY(16), REPORT LUNS', async () => {
    const s = await open();
    const inq = await inquiry(s, 0);
    expect(inq.ok).toBe(true);
    if (!inq.ok) return;
    expect(inq.value.deviceType).toBe(0);
    expect(inq.value.vendor.length).toBeGreaterThan(0);
    const pages = await supportedVpdPages(s, 0);
    expect(pages.ok && pages.value).toEqual(expect.arrayContaining([0x00, 0x80, 0x83, 0xb0]));
    const sn = await unitSerialNumber(s, 0);
    expect(sn.ok && sn.value.length).toBeGreaterThan(0);
    const ids = await deviceIdentification(s, 0);
    expect(ids.ok && ids.value.length).toBeGreaterThan(0);
    const bl = await blockLimits(s, 0);
    expect(bl.ok && bl.value.maxUnmapLbaCount).toBeGreaterThan(0);
    await testUnitReady(s, 1);
    const cap = await readCapacity16(s, 1);
    expect(cap.ok && cap.value).toMatchObject({ blocks: 8192n, blockSize: 512 });
    const luns = await reportLuns(s);
    expect(luns.ok && luns.value).toEqual([0, 1]);
    await s.logout();
  });

  it('a CHECK CONDITION is a value with decoded sense, not an exception', async () => {
    const s = await open();
    await testUnitReady(s, 0); // consume the power-on unit attention
    const r = await read16(s, 0, 1n << 40n, 1, { blockSize: 512 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.status).toBe(2);
    expect(r.sense).toMatchObject({ key: 5, keyName: 'ILLEGAL REQUEST', asc: 0x21, ascq: 0 });
    await s.logout();
  });

  it('WRITE(16) with FUA, SYNCHRONIZE CACHE, UNMAP, and reading back', async () => {
    const s = await open();
    await testUnitReady(s, 1);
    const data = Buffer.alloc(8192, 0xa5);
    expect((await write16(s, 1, 16, data, { blockSize: 512, fua: true })).ok).toBe(true);
    expect((await synchronizeCache16(s, 1)).ok).toBe(true);
    const back = await read16(s, 1, 16, 16, { blockSize: 512 });
    expect(back.ok && back.value.equals(data)).toBe(true);
    expect((await unmap(s, 1, [{ lba: 16, blocks: 16 }])).ok).toBe(true);
    const zero = await read16(s, 1, 16, 16, { blockSize: 512 });
    expect(zero.ok && zero.value.equals(Buffer.alloc(8192))).toBe(true);
    await s.logout();
  });

  it('PERSISTENT RESERVE: register, reserve, read, release, clear', async () => {
    const s = await open();
    await testUnitReady(s, 1);
    expect((await prRegister(s, 1, 0n, 0x1234n)).ok).toBe(true);
    const keys = await prReadKeys(s, 1);
    expect(keys.ok && keys.value.keys).toEqual([0x1234n]);
    expect((await prReserve(s, 1, 0x1234n, PrType.WRITE_EXCLUSIVE)).ok).toBe(true);
    const res = await prReadReservation(s, 1);
    expect(res.ok && res.value.reservation).toEqual({ key: 0x1234n, scope: 0, type: PrType.WRITE_EXCLUSIVE });
    expect((await prRelease(s, 1, 0x1234n, PrType.WRITE_EXCLUSIVE)).ok).toBe(true);
    expect((await prClear(s, 1, 0x1234n)).ok).toBe(true);
    const after = await prReadKeys(s, 1);
    expect(after.ok && after.value.keys).toEqual([]);
    await s.logout();
  });

  it('queues behind a CmdSN window of 4 with 32 commands in flight', async () => {
    const s = await open();
    await testUnitReady(s, 0);
    expect(s.window.maxCmdSN - s.window.expCmdSN + 1).toBeLessThanOrEqual(4);
    let maxQueued = 0;
    const all = Array.from({ length: 32 }, (_, i) => {
      const p = write16(s, 0, i * 8, Buffer.alloc(4096, i), { blockSize: 512 });
      maxQueued = Math.max(maxQueued, s.window.queued);
      return p;
    });
    const results = await Promise.all(all);
    expect(maxQueued).toBeGreaterThan(20);
    expect(results.every((r) => r.ok)).toBe(true);
    const back = await read16(s, 0, 31 * 8, 8, { blockSize: 512 });
    expect(back.ok && back.value.equals(Buffer.alloc(4096, 31))).toBe(true);
    await s.logout();
  });

  it('answers target NOP-In pings and pings the target itself', async () => {
    const s = await open({ keepaliveIntervalMs: 300, keepaliveTimeoutMs: 2000 });
    const rtt = await s.ping(2000);
    expect(rtt).toBeGreaterThanOrEqual(0);
    // The target pings every second and drops the connection after 2 s without an answer.
    await new Promise((r) => setTimeout(r, 3500));
    expect(s.closed).toBe(false);
    expect((await testUnitReady(s, 0)).status).toBeGreaterThanOrEqual(0);
    await s.logout();
  });

  it('LUN RESET completes; after logout commands fail with ERR_ISCSI_SESSION_CLOSED', async () => {
    const s = await open();
    await s.lunReset(0);
    await s.logout();
    expect(s.closed).toBe(true);
    await expectCode(testUnitReady(s, 0), 'ERR_ISCSI_SESSION_CLOSED');
  });

  it('an AbortSignal on a queued command rejects it with ERR_ISCSI_ABORTED', async () => {
    const s = await open();
    await testUnitReady(s, 0);
    const ac = new AbortController();
    const busy = Array.from({ length: 8 }, () => testUnitReady(s, 0));
    const victim = s.execute({ lun: 0, cdb: Buffer.alloc(6), signal: ac.signal });
    ac.abort();
    await expectCode(victim, 'ERR_ISCSI_ABORTED');
    await Promise.all(busy);
    expect((await testUnitReady(s, 0)).ok).toBe(true);
    await s.logout();
  });

  it('fault seam: a corrupted header digest makes the target drop the connection; in-flight commands get ERR_ISCSI_DISCONNECTED', async () => {
    const s = await open({ headerDigest: true, dataDigest: true });
    expect(s.params.headerDigest).toBe(true);
    await testUnitReady(s, 0);
    let corrupt = false;
    s.connection.faults = {
      frame: (frame, out) => (corrupt && out.pdu.opcode === Opcode.SCSI_COMMAND ? [frame[0], flipByte(frame[1], 0), ...frame.slice(2)] : undefined),
    };
    const inflight = Array.from({ length: 4 }, (_, i) => read16(s, 0, i * 8, 8, { blockSize: 512 }));
    corrupt = true;
    const victim = read16(s, 0, 0, 8, { blockSize: 512 });
    const outcomes = await Promise.allSettled([...inflight, victim]);
    const last = outcomes[outcomes.length - 1];
    expect(last.status).toBe('rejected');
    if (last.status === 'rejected') expect(isIscsiInitiatorError(last.reason, 'ERR_ISCSI_DISCONNECTED')).toBe(true);
    expect(s.closed).toBe(true);
  });
});
