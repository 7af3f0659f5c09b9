// `npm pack` + `npm install -g` into a temporary prefix: the tarball holds the
// built dist/, bin/, the addon's sources and install script (no build output,
// no src/ or test/), its install step builds the native addon, and the
// installed `lunkit` runs: --version (no git there: the version alone) and a
// daemon that a second installed `lunkit` talks to. Dependencies come from
// npm's cache (filled by npm ci) or the npm registry.

import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ROOT } from '../../helpers/lunkit-process.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
let dir: string;
let prefix: string;
let files: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-pack-'));
  prefix = join(dir, 'prefix');
  // dist/ is built by setup.sh before the tests; --ignore-scripts skips
  // prepack's rebuild, which would rewrite dist/ under tests running beside this one.
  expect(existsSync(join(ROOT, 'dist', 'cli', 'index.js')), 'dist/ is built (npx tsc -p tsconfig.build.json)').toBe(true);
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 120_000, maxBuffer: 64 << 20 });
  const info = (JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0];
  files = info.files.map((f) => f.path);
  await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, info.filename)], {
    cwd: dir,
    timeout: 240_000,
    maxBuffer: 64 << 20,
  });
}, 400_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('npm pack and npm install -g', () => {
  it('packs what an installed lunkit needs and nothing of the checkout', () => {
    for (const f of ['bin/lunkit.js', 'dist/cli/index.js', 'dist/daemon/sd-notify.js', 'native/binding.gyp', 'native/install.mjs', 'native/src/lunkit_native.c', 'contrib/systemd/lunkit.service', 'package.json']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(src|test|native\/build|node_modules|bench)\//.test(f))).toEqual([]);
  });

  it('builds the native addon at install time', () => {
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'lunkit', 'native', 'build', 'Release', 'lunkit_native.node'))).toBe(true);
  });

  it('installs a lunkit that prints its version (no git checkout: the version alone)', async () => {
    const r = await run(join(prefix, 'bin', 'lunkit'), ['--version'], { cwd: dir, timeout: 30_000 });
    expect(r.stdout).toBe(`${VERSION}\n`);
  });

  it('runs a daemon and a verb against it', async () => {
    const lunkit = join(prefix, 'bin', 'lunkit');
    const socket = join(dir, 'd.sock');
    const child = spawn(lunkit, ['daemon', '--socket', socket, '--log-level', 'warn'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`installed daemon not ready: ${out}`)), 20_000);
        child.stdout.on('data', () => {
          if (/^ready$/m.test(out)) {
            clearTimeout(t);
            resolve();
          }
        });
        void exited.then((code) => reject(new Error(`installed daemon exited ${code}: ${out}`)));
      });
      await run(lunkit, ['backstore', 'create', 'ramdisk', 'rd0', '--size', '1M', '--socket', socket], { timeout: 30_000 });
      const ls = await run(lunkit, ['backstore', 'list', '--json', '--socket', socket], { timeout: 30_000 });
      expect(JSON.stringify(JSON.parse(ls.stdout))).toContain('rd0');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      expect(await exited).toBe(0);
      clearTimeout(t);
    }
  });
});
