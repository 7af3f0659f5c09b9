// `lunkit attach iscsi://user@host/...` with the CHAP secrets from files
// (--password-file, --target-password-file) instead of the URL: the real CLI,
// its detached FUSE holder (which gets them through its environment, never
// argv) and lunkit's own target with one-way and mutual CHAP in this process.

import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultInitiatorName } from '../../../src/initiator/index.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { killHoldersAndFuseMounts, run, type Ran } from './helpers.js';

/** The holder logs in under the initiator's default name. */
const I = defaultInitiatorName();
const SECRET = 'attach-secret-123';
const TARGET_SECRET = 'target-secret-456';

let base = '';
let runDir = '';
let t: TestTarget | undefined;

const lunkit = (args: string[]): Promise<Ran> => run(process.execPath, [LUNKIT_BIN, ...args], { ...process.env, LUNKIT_RUN_DIR: runDir }, 60_000);

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-attach-secrets-'));
  runDir = join(base, 'run');
  await writeFile(join(base, 'mine.secret'), `${SECRET}\n`, { mode: 0o600 });
  await writeFile(join(base, 'target.secret'), `${TARGET_SECRET}\n`, { mode: 0o600 });
  await writeFile(join(base, 'wrong.secret'), 'not-the-secret-1\n', { mode: 0o600 });
  t = await startIscsiTarget({
    lunSizes: [4 * 1024 * 1024],
    attributes: { authentication: true },
    acls: [{ initiator: I, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }], chap: { userid: 'me', password: SECRET }, mutualChap: { userid: 'tgt', password: TARGET_SECRET } }],
  });
});

afterAll(async () => {
  await killHoldersAndFuseMounts(runDir, base);
  await t?.close();
  await rm(base, { recursive: true, force: true });
}, 60_000);

describe('attach iscsi:// with secrets from files', () => {
  it('one-way and mutual CHAP from --password-file / --target-password-file; a wrong secret fails', { timeout: 120_000 }, async () => {
    const url = `iscsi://me@127.0.0.1:${t!.port}/${t!.iqn}/0`;
    const cases: Array<[string, string[]]> = [
      [url, []],
      // Mutual: the target's name in the URL, its secret from a file.
      [`${url}?target_user=tgt`, ['--target-password-file', join(base, 'target.secret')]],
    ];
    for (const [i, [source, extra]] of cases.entries()) {
      const r = await lunkit(['attach', source, join(base, `m${i}`, 'lun0'), '--password-file', join(base, 'mine.secret'), ...extra, '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const { file } = JSON.parse(r.stdout) as { file: string };
      const fh = await open(file, 'r');
      try {
        const st = await fh.stat();
        expect(st.size).toBe(4 * 1024 * 1024);
      } finally {
        await fh.close();
      }
      const d = await lunkit(['detach', file]);
      expect(d.code).toBe(0);
    }
    const bad = await lunkit(['attach', url, join(base, 'bad', 'lun0'), '--password-file', join(base, 'wrong.secret')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/auth/i);
    // The target proves itself with the secret we expect, or we refuse it.
    const badTarget = await lunkit(['attach', `${url}?target_user=tgt`, join(base, 'bad2', 'lun0'), '--password-file', join(base, 'mine.secret'), '--target-password-file', join(base, 'wrong.secret')]);
    expect(badTarget.code).not.toBe(0);
  });
});
