// Login rules against libiscsi: ACLs, CHAP (one-way and mutual), discovery
// authentication and header digests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool, startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';

const ALLOWED = 'iqn.2024-01.org.lunkit.test:allowed';
const MUTUAL = 'iqn.2024-01.org.lunkit.test:mutual';
const OTHER = 'iqn.2024-01.org.lunkit.test:other';
const SECRET = 'sixteen-byte-pw!';
const TARGET_SECRET = 'target-secret-16';

describe('iSCSI login: ACLs and CHAP', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({
      lunSizes: [8 * 1024 * 1024, 8 * 1024 * 1024],
      attributes: { authentication: true },
      acls: [
        { initiator: ALLOWED, mappedLuns: [{ mappedLun: 0, tpgLun: 1, readOnly: false }], chap: { userid: 'alice', password: SECRET } },
        {
          initiator: MUTUAL,
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

  const url = (cred: string, query = '') => `iscsi://${cred}127.0.0.1:${t.port}/${t.iqn}/0${query}`;

  it('one-way CHAP with the right secret logs in and sees its mapped LUN', async () => {
    const r = await runTool('iscsi-readcapacity16', ['-i', ALLOWED, url(`alice%${SECRET}@`)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Total size:');
  });

  it('a wrong CHAP secret fails the login', async () => {
    const r = await runTool('iscsi-inq', ['-i', ALLOWED, url('alice%wrong-password-x@')]);
    expect(r.code).not.toBe(0);
  });

  it('no credentials while authentication is required fails the login', async () => {
    const r = await runTool('iscsi-inq', ['-i', ALLOWED, url('')]);
    expect(r.code).not.toBe(0);
  });

  it('an initiator without an ACL is refused', async () => {
    const r = await runTool('iscsi-inq', ['-i', OTHER, url(`alice%${SECRET}@`)]);
    expect(r.code).not.toBe(0);
  });

  it('mutual CHAP: the target proves its secret too', async () => {
    const ok = await runTool('iscsi-inq', ['-i', MUTUAL, url(`bob%${SECRET}@`, `?target_user=tgt&target_password=${TARGET_SECRET}`)]);
    expect(ok.code).toBe(0);
    const bad = await runTool('iscsi-inq', ['-i', MUTUAL, url(`bob%${SECRET}@`, '?target_user=tgt&target_password=not-the-secret!!')]);
    expect(bad.code).not.toBe(0);
  });

  it('mutual CHAP configured but not asked for: one-way CHAP still has to pass', async () => {
    // Target authentication is the initiator's option (RFC 7143 §12.1.3).
    const r = await runTool('iscsi-inq', ['-i', MUTUAL, url(`bob%${SECRET}@`)]);
    expect(r.code).toBe(0);
    const bad = await runTool('iscsi-inq', ['-i', MUTUAL, url('bob%wrong-secret-1234@')]);
    expect(bad.code).not.toBe(0);
  });

  it('SendTargets lists the target only for initiators with an ACL', async () => {
    const seen = await runTool('iscsi-ls', ['-i', ALLOWED, t.url()]);
    expect(seen.stdout).toContain(t.iqn);
    const hidden = await runTool('iscsi-ls', ['-i', OTHER, t.url()]);
    expect(hidden.stdout).not.toContain(t.iqn);
  });
});

describe('iSCSI discovery authentication', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({ discoveryAuth: { enabled: true, userid: 'disc', password: SECRET } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('requires CHAP for SendTargets', async () => {
    const bad = await runTool('iscsi-ls', [t.url()]);
    expect(bad.stdout).not.toContain(t.iqn);
    const ok = await runTool('iscsi-ls', [`iscsi://disc%${SECRET}@127.0.0.1:${t.port}`]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(t.iqn);
  });
});

describe('iSCSI header digest', () => {
  let t: TestTarget;
  const logins: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    // libiscsi's tools offer "None,CRC32C"; a target that insists on CRC32C gets it.
    t = await startIscsiTarget({
      parameters: { HeaderDigest: 'CRC32C' },
      logger: { info: (msg, f) => void (msg === 'iSCSI login' && f && logins.push(f)) },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('runs a session with CRC32C header digests', async () => {
    const r = await runTool('iscsi-readcapacity16', [t.url(0)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('LOGICAL BLOCK LENGTH IN BYTES:512');
    expect(logins.at(-1)).toMatchObject({ headerDigest: true });
  });
});
