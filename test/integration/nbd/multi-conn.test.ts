// NBD_FLAG_CAN_MULTI_CONN with real clients (libnbd): nbdinfo reports it, and
// nbdcopy, which falls back to one connection when the flag is missing,
// really opens several and copies a random image in and out byte-identically,
// flushing on one connection what others wrote.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';

const run = promisify(execFile);
const SIZE = 32 * 1024 * 1024;
let rt: LunkitRuntime;
let dir: string;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-mc-'));
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { disk: { type: 'file', path: join(dir, 'disk.img'), size: SIZE }, ro: { type: 'ramdisk', size: '1M' } },
      nbd: { listen: ['127.0.0.1:0'], exports: { disk: { backstore: 'disk' }, ro: { backstore: 'ro', readOnly: true } } },
    }),
  );
  port = rt.nbdAddresses()[0].port;
}, 30_000);

afterAll(async () => {
  await rt?.stop(0);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('can_multi_conn', () => {
  it('nbdinfo shows can_multi_conn on writable and read-only exports', async () => {
    for (const name of ['disk', 'ro']) {
      const { stdout } = await run('nbdinfo', ['--json', `nbd://127.0.0.1:${port}/${name}`], { timeout: 30_000 });
      const exp = ((JSON.parse(stdout) as Record<string, unknown>).exports as Array<Record<string, unknown>>)[0];
      expect(exp.can_multi_conn).toBe(true);
    }
  });

  it('nbdcopy with 4 connections copies in and out byte-identically', async () => {
    const src = join(dir, 'src.img');
    const back = join(dir, 'back.img');
    const data = randomBytes(SIZE);
    await writeFile(src, data);
    const url = `nbd://127.0.0.1:${port}/disk`;
    const up = await run('nbdcopy', ['--verbose', '--connections=4', '--threads=4', '--flush', src, url], { timeout: 120_000, maxBuffer: 64 << 20 });
    // nbdcopy drops to one connection unless the server offers multi-conn.
    expect(up.stderr).toMatch(/connections=4/);
    const down = await run('nbdcopy', ['--verbose', '--connections=4', '--threads=4', url, back], { timeout: 120_000, maxBuffer: 64 << 20 });
    expect(down.stderr).toMatch(/connections=4/);
    expect((await readFile(back)).equals(data)).toBe(true);
  });
});
