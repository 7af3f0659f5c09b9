// The iSCSI target against libiscsi's command-line tools (real initiators).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool, startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';

describe('iSCSI target with libiscsi tools', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [64 * 1024 * 1024, 8 * 1024 * 1024], alias: 'test disk' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('iscsi-ls discovers the target with its portal', async () => {
    const r = await runTool('iscsi-ls', [t.url()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Target:${t.iqn} Portal:127.0.0.1:${t.port},1`);
  });

  it('iscsi-ls -s lists both LUNs with their sizes', async () => {
    const r = await runTool('iscsi-ls', ['-s', t.url()]);
    expect(r.code).toBe(0);
    // iscsi-ls prints (last LBA x block size), one block short of the size.
    expect(r.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:63M\)/);
    expect(r.stdout).toMatch(/Lun:1\s+Type:DIRECT_ACCESS \(Size:7M\)/);
  });

  it('iscsi-inq reads standard INQUIRY data', async () => {
    const r = await runTool('iscsi-inq', [t.url(0)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Peripheral Device Type:DIRECT_ACCESS');
  });

  it('iscsi-readcapacity16 reports the LUN size', async () => {
    const r = await runTool('iscsi-readcapacity16', [t.url(1)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('LOGICAL BLOCK LENGTH IN BYTES:512');
    expect(r.stdout).toContain(`Total size:${8 * 1024 * 1024}`);
  });

  it('unknown target: login fails, the server keeps serving', async () => {
    const r = await runTool('iscsi-inq', [`iscsi://127.0.0.1:${t.port}/iqn.2024-01.org.lunkit.test:nope/0`]);
    expect(r.code).not.toBe(0);
    const ok = await runTool('iscsi-inq', [t.url(0)]);
    expect(ok.code).toBe(0);
  });

  it('ends the session at logout', async () => {
    const r = await runTool('iscsi-inq', [t.url(0)]);
    expect(r.code).toBe(0);
    expect(t.server.sessions()).toHaveLength(0);
  });
});
