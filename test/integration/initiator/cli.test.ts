// `lunkit discover` and `lunkit iscsi inquiry|readcap|luns` run in-process
// through yargs against the lunkit target, with their stdout captured.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import yargs from 'yargs';
import { discoverCommand } from '../../../src/cli/commands/discover.js';
import { iscsiCommand } from '../../../src/cli/commands/iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';

const SECRET = 'sixteen-byte-pw!';
const INIT = 'iqn.2024-01.org.lunkit.test:cli';

async function run(argv: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  process.exitCode = undefined;
  try {
    await yargs(argv).command(discoverCommand).command(iscsiCommand).strict().exitProcess(false).parseAsync();
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { out, err, code };
}

describe('initiator CLI verbs', () => {
  let t: TestTarget;
  beforeAll(async () => {
    t = await startIscsiTarget({
      lunSizes: [8 << 20, 4 << 20],
      attributes: { authentication: true },
      acls: [
        {
          initiator: INIT,
          mappedLuns: [
            { mappedLun: 0, tpgLun: 0, readOnly: false },
            { mappedLun: 1, tpgLun: 1, readOnly: false },
          ],
          chap: { userid: 'cli', password: SECRET },
          mutualChap: { userid: 'tgt', password: 'target-secret-16' },
        },
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
  });
  const url = (lun: number) => `iscsi://cli%${SECRET}@127.0.0.1:${t.port}/${t.iqn}/${lun}`;

  it('discover prints targets and portals, and JSON with --json', async () => {
    const text = await run(['discover', `iscsi://127.0.0.1:${t.port}`, '--initiator-name', INIT]);
    expect(text.code).toBe(0);
    expect(text.out).toBe(`${t.iqn}\n  127.0.0.1:${t.port},1\n`);
    const json = await run(['discover', `iscsi://127.0.0.1:${t.port}`, '--json', '--initiator-name', INIT]);
    expect(JSON.parse(json.out)).toEqual([{ name: t.iqn, portals: [{ host: '127.0.0.1', port: t.port, tpgt: 1 }] }]);
  });

  it('iscsi readcap / luns / inquiry with CHAP from the URL and mutual CHAP from flags', async () => {
    const mutual = ['--initiator-name', INIT, '--target-user', 'tgt', '--target-password', 'target-secret-16', '--json'];
    const cap = await run(['iscsi', 'readcap', url(1), ...mutual]);
    expect(cap.err).toBe('');
    expect(JSON.parse(cap.out)).toMatchObject({ blocks: '8192', blockSize: 512, bytes: String(4 << 20) });
    const luns = await run(['iscsi', 'luns', url(0), ...mutual]);
    expect(JSON.parse(luns.out)).toEqual({ luns: [0, 1] });
    const inq = await run(['iscsi', 'inquiry', url(0), '--initiator-name', INIT]);
    expect(inq.code).toBe(0);
    expect(inq.out).toMatch(/^Vendor: +\S+/m);
    expect(inq.out).toMatch(/^Type: +disk/m);
  });

  it('a wrong mutual secret exits 1 with ERR_ISCSI_TARGET_AUTH', async () => {
    const r = await run(['iscsi', 'luns', url(0), '--initiator-name', INIT, '--target-user', 'tgt', '--target-password', 'wrong-secret-xxxx', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.err).error.code).toBe('ERR_ISCSI_TARGET_AUTH');
  });
});
