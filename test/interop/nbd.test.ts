// The NBD server fabric against real clients nobody here wrote: libnbd's
// nbdinfo (exports, size, flags, block size) and qemu-img (a random image
// copied in over nbd:// and back, byte-identical).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { LunkitRuntime } from '../../src/daemon/runtime.js';

const run = promisify(execFile);
let rt: LunkitRuntime;
let dir: string;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-'));
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: {
        disk: { type: 'file', path: join(dir, 'disk.img'), size: '32M' },
        ro: { type: 'ramdisk', size: '4M', blockSize: 4096 },
        map: { type: 'file', path: join(dir, 'map.img'), size: '16M' },
      },
      nbd: {
        listen: ['127.0.0.1:0', `unix:${join(dir, 'nbd.sock')}`],
        exports: {
          disk: { backstore: 'disk', description: 'thin file disk' },
          ro: { backstore: 'ro', readOnly: true, description: 'read-only ramdisk' },
          map: { backstore: 'map' },
        },
      },
    }),
  );
  port = rt.nbdAddresses()[0].port;
}, 30_000);

afterAll(async () => {
  await rt?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('nbdinfo', () => {
  it('lists the exports with their descriptions', async () => {
    const { stdout } = await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${port}`], { timeout: 30_000 });
    const info = JSON.parse(stdout) as { exports: Array<{ 'export-name': string; description?: string; 'export-size': number }> };
    const byName = new Map(info.exports.map((e) => [e['export-name'], e]));
    expect([...byName.keys()].sort()).toEqual(['disk', 'map', 'ro']);
    expect(byName.get('disk')?.description).toBe('thin file disk');
    expect(byName.get('ro')?.['export-size']).toBe(4 * 1024 * 1024);
  });

  it('shows size, flags and block size of a writable thin export', async () => {
    const { stdout } = await run('nbdinfo', ['--json', `nbd://127.0.0.1:${port}/disk`], { timeout: 30_000 });
    const info = JSON.parse(stdout) as Record<string, unknown>;
    expect(info.protocol).toBe('newstyle-fixed');
    const exp = (info.exports as Array<Record<string, unknown>>)[0];
    expect(exp['export-size']).toBe(32 * 1024 * 1024);
    expect(exp.is_read_only).toBe(false);
    expect(exp.can_flush).toBe(true);
    expect(exp.can_fua).toBe(true);
    expect(exp.can_trim).toBe(true);
    expect(exp.can_zero).toBe(true);
    expect(exp.block_size_minimum).toBe(512);
    expect(exp.block_size_maximum).toBe(32 * 1024 * 1024);
  });

  it('shows a read-only export as read-only with its 4 KiB blocks', async () => {
    const { stdout } = await run('nbdinfo', ['--json', `nbd://127.0.0.1:${port}/ro`], { timeout: 30_000 });
    const exp = ((JSON.parse(stdout) as Record<string, unknown>).exports as Array<Record<string, unknown>>)[0];
    expect(exp.is_read_only).toBe(true);
    expect(exp.can_trim).toBe(false);
    expect(exp.can_zero).toBe(false);
    expect(exp.block_size_minimum).toBe(4096);
  });
});

describe('qemu-img over nbd://', () => {
  it('copies a random 16 MiB image in and back out byte-identical', async () => {
    const src = join(dir, 'src.raw');
    const back = join(dir, 'back.raw');
    const data = randomBytes(16 * 1024 * 1024);
    await writeFile(src, data);
    const url = `nbd://127.0.0.1:${port}/disk`;
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url], { timeout: 120_000 });
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, back], { timeout: 120_000 });
    const got = await readFile(back);
    // The export is 32 MiB: the first 16 MiB are the image, the rest never written (zeroes).
    expect(got.length).toBe(32 * 1024 * 1024);
    expect(got.subarray(0, data.length).equals(data)).toBe(true);
    expect(got.subarray(data.length).every((b) => b === 0)).toBe(true);
    const file = await readFile(join(dir, 'disk.img'));
    expect(file.subarray(0, data.length).equals(data)).toBe(true);
  }, 180_000);

  it('refuses writes to a read-only export', async () => {
    const src = join(dir, 'small.raw');
    await writeFile(src, randomBytes(64 * 1024));
    await expect(
      run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, `nbd://127.0.0.1:${port}/ro`], { timeout: 60_000 }),
    ).rejects.toThrow();
  }, 90_000);
});

describe('base:allocation', () => {
  it('nbdinfo lists base:allocation among the contexts', async () => {
    const { stdout } = await run('nbdinfo', ['--json', `nbd://127.0.0.1:${port}/map`], { timeout: 30_000 });
    const exp = ((JSON.parse(stdout) as Record<string, unknown>).exports as Array<Record<string, unknown>>)[0];
    expect(exp.contexts).toContain('base:allocation');
    expect(exp.can_cache).toBe(true);
    expect(exp.can_fast_zero).toBe(true);
  });

  it('nbdinfo --map shows the 1 MiB qemu-img wrote as data and the rest as a zero hole', async () => {
    const src = join(dir, 'one.raw');
    await writeFile(src, randomBytes(1024 * 1024));
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, `nbd://127.0.0.1:${port}/map`], { timeout: 60_000 });
    const { stdout } = await run('nbdinfo', ['--map', '--json', `nbd://127.0.0.1:${port}/map`], { timeout: 30_000 });
    const map = JSON.parse(stdout) as Array<{ offset: number; length: number; type: number }>;
    expect(map[0]).toMatchObject({ offset: 0, length: 1024 * 1024, type: 0 });
    expect(map.slice(1).every((e) => e.type === 3)).toBe(true);
    const last = map[map.length - 1];
    expect(last.offset + last.length).toBe(16 * 1024 * 1024);
  }, 90_000);
});

describe('Unix socket listener', () => {
  it('nbdinfo reaches an export over nbd+unix://', async () => {
    const sock = join(dir, 'nbd.sock');
    const { stdout } = await run('nbdinfo', ['--json', `nbd+unix:///map?socket=${sock}`], { timeout: 30_000 });
    const exp = ((JSON.parse(stdout) as Record<string, unknown>).exports as Array<Record<string, unknown>>)[0];
    expect(exp['export-name']).toBe('map');
    expect(exp['export-size']).toBe(16 * 1024 * 1024);
  });
});
