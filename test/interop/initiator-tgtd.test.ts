// The lunkit initiator against tgtd (Debian's tgt, a userspace iSCSI target
// nobody here wrote): SendTargets discovery, CHAP and mutual CHAP login, and
// a 256 MiB random image written with 32 commands in flight and read back
// byte-identically (issue 7 acceptance, first half); MC/S and ERL options
// negotiated down to what tgtd offers. tgtd runs in the
// foreground on a free port with its own control port, and is stopped by PID.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IscsiSession,
  discoverTargets,
  inquiry,
  isIscsiInitiatorError,
  openUrl,
  read16,
  readCapacity16,
  reportLuns,
  testUnitReady,
  write16,
} from '../integration/initiator/api.js';
import { inFlightPool } from '../integration/initiator/workload.js';
import { startTgtd, type Tgtd } from '../../src/tools/tgtd.js';

const IQN = 'iqn.2024-01.org.lunkit.interop:tgtd-initiator';
const CHAP_IQN = 'iqn.2024-01.org.lunkit.interop:tgtd-chap';
const SIZE = 256 << 20;
const IO = 1 << 20;
const DEPTH = 32;
const SECRET = 'initiator-secret';
const TARGET_SECRET = 'target-secret-16';

describe('initiator against tgtd', () => {
  let dir: string;
  let tgtd: Tgtd | undefined;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-tgtd-init-'));
    for (const name of ['lun1.img', 'chap.img']) {
      const fh = await open(join(dir, name), 'w');
      await fh.truncate(name === 'lun1.img' ? SIZE : 8 << 20);
      await fh.close();
    }
    tgtd = await startTgtd({
      controlBase: 2000,
      targets: [
        { iqn: IQN, luns: [join(dir, 'lun1.img')] },
        // A second target that requires CHAP, with a mutual (outgoing) account.
        {
          iqn: CHAP_IQN,
          luns: [join(dir, 'chap.img')],
          accounts: [
            { user: 'alice', password: SECRET },
            { user: 'tgt', password: TARGET_SECRET, outgoing: true },
          ],
        },
      ],
    });
    port = tgtd.port;
  }, 60_000);

  afterAll(async () => {
    await tgtd?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('discovers both targets with their portal', async () => {
    const targets = await discoverTargets({ host: '127.0.0.1', port });
    const names = targets.map((t) => t.name).sort();
    expect(names).toEqual([CHAP_IQN, IQN].sort());
    for (const t of targets) expect(t.portals).toContainEqual({ host: '127.0.0.1', port, tpgt: 1 });
  });

  it('CHAP: refused without or with a wrong secret, accepted with the right one, mutual CHAP verified', async () => {
    const url = (cred: string, q = ''): string => `iscsi://${cred}127.0.0.1:${port}/${CHAP_IQN}/1${q}`;
    const err1 = await IscsiSession.open({ host: '127.0.0.1', port, targetName: CHAP_IQN }).catch((e: unknown) => e);
    expect(isIscsiInitiatorError(err1, 'ERR_ISCSI_LOGIN_AUTH')).toBe(true);
    const err2 = await openUrl(url('alice%wrong-secret-xx@'), { env: {} }).catch((e: unknown) => e);
    expect(isIscsiInitiatorError(err2, 'ERR_ISCSI_LOGIN_AUTH')).toBe(true);
    const one = await openUrl(url(`alice%${SECRET}@`), { env: {} });
    expect(one.session.params.authMethod).toBe('CHAP');
    await testUnitReady(one.session, 1);
    const cap = await readCapacity16(one.session, 1);
    expect(cap.ok && cap.value.blocks * BigInt(cap.value.blockSize)).toBe(BigInt(8 << 20));
    await one.session.logout();
    const mutual = await openUrl(url(`alice%${SECRET}@`, `?target_user=tgt&target_password=${TARGET_SECRET}`), { env: {} });
    await mutual.session.logout();
    const bad = await openUrl(url(`alice%${SECRET}@`, '?target_user=tgt&target_password=not-the-secret!'), { env: {} }).catch((e: unknown) => e);
    expect(isIscsiInitiatorError(bad, 'ERR_ISCSI_TARGET_AUTH')).toBe(true);
  });

  it('MC/S and ERL asked for, negotiated down by tgtd: the session runs on what it got', async () => {
    const { session: s, lun } = await openUrl(`iscsi://127.0.0.1:${port}/${IQN}/1`, { env: {}, connections: 4, errorRecoveryLevel: 2, keepaliveIntervalMs: 0 });
    try {
      // tgtd declares its own MaxConnections/ErrorRecoveryLevel; we open min(4, MaxConnections).
      expect(s.params.maxConnections).toBeLessThanOrEqual(4);
      expect(s.connections).toHaveLength(s.params.maxConnections);
      expect(s.errorRecoveryLevel).toBeLessThanOrEqual(2);
      expect(s.info().connections.every((c) => c.state === 'active')).toBe(true);
      const data = randomBytes(1 << 20);
      let w = await write16(s, lun, 0, data, { blockSize: 512 });
      if (!w.ok && w.sense?.key === 6) w = await write16(s, lun, 0, data, { blockSize: 512 });
      expect(w.ok).toBe(true);
      const r = await read16(s, lun, 0, (1 << 20) / 512, { blockSize: 512 });
      expect(r.ok && r.value.equals(data)).toBe(true);
    } finally {
      await s.logout();
    }
  });

  it('256 MiB random image written with 32 in flight and read back byte-identically', async () => {
    const { session: s, lun } = await openUrl(`iscsi://127.0.0.1:${port}/${IQN}/1`, { env: {}, headerDigest: 'prefer', dataDigest: 'prefer' });
    await testUnitReady(s, lun);
    const inq = await inquiry(s, lun);
    expect(inq.ok && inq.value.deviceType).toBe(0);
    const luns = await reportLuns(s);
    expect(luns.ok && luns.value).toContain(1);
    const cap = await readCapacity16(s, lun);
    expect(cap.ok && cap.value).toMatchObject({ blocks: BigInt(SIZE / 512), blockSize: 512 });

    const image = randomBytes(SIZE);
    const want = createHash('sha256').update(image).digest('hex');
    let maxInFlight = 0;
    await inFlightPool(SIZE / IO, DEPTH, async (i) => {
      const p = write16(s, lun, (i * IO) / 512, image.subarray(i * IO, (i + 1) * IO), { blockSize: 512 });
      maxInFlight = Math.max(maxInFlight, s.inFlight);
      const r = await p;
      expect(r.ok).toBe(true);
    });
    expect(maxInFlight).toBe(DEPTH);
    const back = Buffer.alloc(SIZE);
    await inFlightPool(SIZE / IO, DEPTH, async (i) => {
      const r = await read16(s, lun, (i * IO) / 512, IO / 512, { blockSize: 512, into: back.subarray(i * IO, (i + 1) * IO) });
      expect(r.ok && r.value.length).toBe(IO);
    });
    await s.logout();
    expect(createHash('sha256').update(back).digest('hex')).toBe(want);
    // And tgtd really stored it: the backing file holds the same bytes.
    expect(createHash('sha256').update(await readFile(join(dir, 'lun1.img'))).digest('hex')).toBe(want);
  });
});
