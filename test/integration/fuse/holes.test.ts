// Holes through the FUSE file (issue 16): `fallocate -p` on the LUN file
// deallocates on the thin backstore, and SEEK_DATA/SEEK_HOLE on the file (what
// `qemu-img map` and `cp --sparse` use) report the backstore's extents.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import { FileBackstore } from '../../../src/backstores/file/file.js';
import { FuseFabric } from '../../../src/fabrics/fuse/fabric.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let dir: string;
let core: ScsiCore;
let ops: FileBackstore;
let fabric: FuseFabric;
let lunFile: string;
let backing: string;

interface MapEntry {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
}

/** Allocated ranges as qemu-img map sees them (adjacent ranges of one kind merged). */
async function dataRanges(file: string): Promise<Array<[number, number]>> {
  const { stdout } = await run('qemu-img', ['map', '--output=json', '-f', 'raw', file]);
  const out: Array<[number, number]> = [];
  for (const e of JSON.parse(stdout) as MapEntry[]) {
    if (!e.data) continue;
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === e.start) last[1] += e.length;
    else out.push([e.start, e.length]);
  }
  return out;
}

const allocated = async (file: string): Promise<number> => (await stat(file)).blocks * 512;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-fuse-holes-'));
  backing = join(dir, 'thin.img');
  core = new ScsiCore();
  ops = await FileBackstore.open({ name: 'thin', path: backing, size: 64 * MiB, create: true, sparse: true, blockSize: 512 });
  const device = core.createDevice(ops, { name: 'thin' });
  fabric = new FuseFabric(core, { mountpoint: join(dir, 'mnt') });
  await fabric.setExport('disk', { device });
  await fabric.mount();
  lunFile = fabric.pathOf('disk');
});

afterAll(async () => {
  await fabric?.close();
  await core?.flushAll();
  await ops?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('holes through the FUSE file', () => {
  it('fallocate -p deallocates on the thin backstore and reads back zeroes', async () => {
    await run('dd', ['if=/dev/urandom', `of=${lunFile}`, 'bs=1M', 'count=16', 'oflag=direct', 'conv=notrunc,fsync', 'status=none']);
    const before = await allocated(backing);
    expect(before).toBeGreaterThanOrEqual(16 * MiB);
    await run('fallocate', ['-p', '-o', String(4 * MiB), '-l', String(8 * MiB), lunFile]);
    const after = await allocated(backing);
    expect(before - after).toBeGreaterThanOrEqual(8 * MiB - 64 * 1024);
    const { stdout } = await run('cmp', ['-n', String(8 * MiB), '-i', `${4 * MiB}:0`, lunFile, '/dev/zero']).catch((e: { stdout: string }) => ({ stdout: `differs: ${e.stdout}` }));
    expect(stdout).toBe('');
  });

  it('qemu-img map of the FUSE file matches the backstore file; cp --sparse keeps the holes', async () => {
    const viaFuse = await dataRanges(lunFile);
    const direct = await dataRanges(backing);
    expect(viaFuse).toEqual(direct);
    expect(viaFuse).toEqual([
      [0, 4 * MiB],
      [12 * MiB, 4 * MiB],
    ]);
    const copy = join(dir, 'copy.img');
    await run('cp', ['--sparse=always', lunFile, copy]);
    expect(await allocated(copy)).toBeLessThanOrEqual(8 * MiB + 64 * 1024);
  });

  it('fallocate --zero-range zeroes; mode 0 inside the file is accepted; growing the file is refused', async () => {
    await run('fallocate', ['-z', '-o', '100', '-l', String(MiB), lunFile]);
    const buf = (await run('dd', [`if=${lunFile}`, 'bs=1', 'skip=90', 'count=20', 'status=none'], { encoding: 'buffer' })).stdout as unknown as Buffer;
    expect([...buf.subarray(10)]).toEqual(new Array(10).fill(0));
    expect(buf.subarray(0, 10).some((b) => b !== 0)).toBe(true);
    await run('fallocate', ['-o', '0', '-l', String(MiB), lunFile]);
    await expect(run('fallocate', ['-o', String(60 * MiB), '-l', String(8 * MiB), lunFile])).rejects.toThrow();
  });
});
