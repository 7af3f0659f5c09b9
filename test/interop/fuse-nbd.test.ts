// `lunkit attach nbd://` against a real NBD server (nbdkit memory 256M): the
// FUSE file shows the export, and bytes written through the file are what
// nbdcopy reads from the server. The FUSE mount is served by a child process.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holderPids, lunkit, mountsUnder, run, waitFor } from '../integration/fuse/helpers.js';

let base = '';
let nbdkit: ChildProcess | undefined;
let port = 0;

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-fuse-nbd-'));
  port = await freePort();
  nbdkit = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), 'memory', '256M'], { stdio: 'ignore' });
  expect(await waitFor(async () => (await run('nbdinfo', ['--size', `nbd://127.0.0.1:${port}`])).code === 0, 10_000)).toBe(true);
});

afterAll(async () => {
  for (const pid of await holderPids(join(base, 'run'))) process.kill(pid, 'SIGKILL');
  for (const m of await mountsUnder(base)) await run('umount', ['-l', m.split(' ')[1]]);
  if (nbdkit?.pid) process.kill(nbdkit.pid, 'SIGTERM');
  await rm(base, { recursive: true, force: true });
}, 30_000);

it('reads and writes an nbdkit export through the FUSE file', async () => {
  const runDir = join(base, 'run');
  const file = join(base, 'mnt', 'disk');
  const a = await lunkit(runDir, ['attach', `nbd://127.0.0.1:${port}/`, file]);
  expect(a.code, a.stderr).toBe(0);
  expect(a.stdout.trim()).toBe(file);
  expect((await stat(file)).size).toBe(256 * 1024 * 1024);

  const data = randomBytes(3 * 1024 * 1024 + 4096);
  const fh = await open(file, 'r+');
  await fh.write(data, 0, data.length, 5 * 1024 * 1024);
  await fh.sync();
  const zeros = Buffer.alloc(65536, 0xff);
  await fh.read(zeros, 0, zeros.length, 100 * 1024 * 1024);
  await fh.close();
  expect(zeros.every((b) => b === 0)).toBe(true);

  const out = join(base, 'copy.raw');
  expect((await run('nbdcopy', [`nbd://127.0.0.1:${port}`, out])).code).toBe(0);
  const cf = await open(out, 'r');
  const back = Buffer.alloc(data.length);
  await cf.read(back, 0, back.length, 5 * 1024 * 1024);
  await cf.close();
  expect(back.equals(data)).toBe(true);

  expect((await lunkit(runDir, ['detach', file])).code).toBe(0);
  expect(await mountsUnder(base)).toEqual([]);
}, 120_000);
