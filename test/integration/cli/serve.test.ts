// `lunkit serve --config FILE`: a good file serves, a bad one is refused with
// the JSON path and the reason of every problem, and nothing is left running.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { LUNKIT_BIN, serveConfig, type LunkitProcess } from '../../helpers/lunkit-process.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.lunkit:serve';
let proc: LunkitProcess | undefined;
afterEach(async () => {
  await proc?.stop();
  proc = undefined;
});

describe('lunkit serve', () => {
  it('serves a file LUN from a config and creates the sparse file', async () => {
    proc = await serveConfig((dir) => ({
      backstores: { d: { type: 'file', path: join(dir, 'd.img'), size: '32M' } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'd' }, attributes: { generateNodeAcls: true } } } } } },
    }));
    const cap = await run('iscsi-readcapacity16', [`iscsi://127.0.0.1:${proc.port}/${IQN}/0`], { timeout: 15_000 });
    expect(cap.stdout).toContain(`Total size:${32 * 1024 * 1024}`);
    expect(cap.stdout).toMatch(/LBPME:1 LBPRZ:1/);
  });

  it('refuses an invalid config with every problem and its JSON path, exit status 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lunkit-badcfg-'));
    try {
      const path = join(dir, 'bad.json');
      await writeFile(
        path,
        JSON.stringify({
          backstores: { d: { type: 'ramdisk', size: '10X' } },
          iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'missing' } } } } } },
        }),
      );
      const err = await run(process.execPath, [LUNKIT_BIN, 'serve', '--config', path], { timeout: 15_000 }).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code).toBe(1);
      expect(err?.stderr).toContain('backstores.d.size: "10X": unknown unit "X"');
      const missingFile = await run(process.execPath, [LUNKIT_BIN, 'serve', '--config', join(dir, 'nope.json')], { timeout: 15_000 }).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect((missingFile as { stderr: string }).stderr).toMatch(/cannot read the file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
