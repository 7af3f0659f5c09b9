// libiscsi's iSCSI-level conformance tests (CmdSN window, DataSN errors,
// residuals, task management) against the target with a ramdisk LUN. The
// full ALL run is the conformance runner's job; this suite takes seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool, startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';

describe('iscsi-test-cu -t iSCSI', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [64 * 1024 * 1024] });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('passes every test of the iSCSI suite', async () => {
    const r = await runTool(
      'iscsi-test-cu',
      [
        '--dataloss',
        '-i',
        'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test',
        '-I',
        'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2',
        t.url(0),
        '-t',
        'iSCSI',
      ],
      50_000,
    );
    const summary = /tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(r.stdout);
    expect(summary, r.stdout.slice(-2000)).not.toBeNull();
    const [, total, ran, passed, failed] = summary!.map(Number);
    expect(failed, r.stdout.slice(-3000)).toBe(0);
    expect(ran).toBe(total);
    expect(passed).toBeGreaterThanOrEqual(15);
    expect(r.stdout).not.toContain('[SKIPPED]  This test is only supported for iSCSI');
  });
});
