// scripts/link-bin.sh (run by setup.sh): `lunkit` on the PATH as a symlink
// to this checkout's bin/lunkit.js, in a temporary LUNKIT_BIN_DIR here. It is
// idempotent, retargets only links a lunkit checkout made, and leaves every
// other file alone with a message (exit 0: setup goes on).

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LUNKIT_BIN, ROOT } from '../../helpers/lunkit-process.js';

const run = promisify(execFile);
const SCRIPT = join(ROOT, 'scripts', 'link-bin.sh');
let dir: string;
let bin: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-link-'));
  bin = join(dir, 'bin');
  await mkdir(bin);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function link(): Promise<{ stdout: string; stderr: string }> {
  return run('bash', [SCRIPT], { env: { ...process.env, LUNKIT_BIN_DIR: bin }, timeout: 20_000 });
}

describe('scripts/link-bin.sh', () => {
  it('links, then does nothing on a second run; the link runs lunkit', async () => {
    const first = await link();
    expect(first.stdout).toMatch(/linking .*\/lunkit -> .*bin\/lunkit\.js/);
    expect(await readlink(join(bin, 'lunkit'))).toBe(LUNKIT_BIN);
    const second = await link();
    expect(second).toEqual({ stdout: '', stderr: '' });
    const v = await run(join(bin, 'lunkit'), ['--version'], { timeout: 20_000 });
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('retargets a link left by another (or a removed) lunkit checkout', async () => {
    const gone = join(dir, 'old-clone', 'bin', 'lunkit.js');
    await symlink(gone, join(bin, 'lunkit'));
    const r = await link();
    expect(r.stdout).toContain(`pointed to ${gone}; now ${LUNKIT_BIN}`);
    expect(await readlink(join(bin, 'lunkit'))).toBe(LUNKIT_BIN);
  });

  it('leaves a link into an npm package (no .git) alone and says why', async () => {
    const pkg = join(dir, 'lib', 'node_modules', 'lunkit');
    await mkdir(join(pkg, 'bin'), { recursive: true });
    await writeFile(join(pkg, 'package.json'), '{\n  "name": "lunkit"\n}\n');
    await writeFile(join(pkg, 'bin', 'lunkit.js'), '');
    await symlink(join(pkg, 'bin', 'lunkit.js'), join(bin, 'lunkit'));
    const r = await link();
    expect(r.stderr).toMatch(/not a lunkit checkout; leaving it/);
    expect(await readlink(join(bin, 'lunkit'))).toBe(join(pkg, 'bin', 'lunkit.js'));
  });

  it('leaves a foreign regular file alone and says why', async () => {
    await writeFile(join(bin, 'lunkit'), '#!/bin/sh\necho mine\n');
    const r = await link();
    expect(r.stderr).toMatch(/exists and is not a symlink.*leaving it/);
    expect(await readFile(join(bin, 'lunkit'), 'utf8')).toBe('#!/bin/sh\necho mine\n');
  });

  it('says what to do when the directory does not exist', async () => {
    const r = await run('bash', [SCRIPT], { env: { ...process.env, LUNKIT_BIN_DIR: join(dir, 'absent') }, timeout: 20_000 });
    expect(r.stderr).toMatch(/cannot write .*absent.*LUNKIT_BIN_DIR/);
  });
});
