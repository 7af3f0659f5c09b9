// Acceptance of issue 5 (as root): a 256 MiB file LUN shown as a FUSE file
// carries an ext4 filesystem through a loop device across unmount/remount;
// `lunkit mount`/`umount` leave nothing behind, also when mount(8) fails
// part-way; a holder killed with SIGKILL is recovered on the next start.
// Every FUSE mount is served by a child process, never by the test itself.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTree, holderPids, killHoldersAndFuseMounts, loopsUnder, lunkit, mountsUnder, run, waitFor, writeTree } from './helpers.js';

const SIZE = 256 * 1024 * 1024;
let base = '';
let runDir = '';
const loops = new Set<string>();
const fsMounts = new Set<string>();

async function cleanup(): Promise<void> {
  for (const d of fsMounts) await run('umount', ['-l', d]);
  for (const l of loops) {
    const r = await run('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE', l]);
    if (r.stdout.includes(base)) await run('losetup', ['-d', l]);
  }
  await killHoldersAndFuseMounts(runDir, base);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-fuse-'));
  runDir = join(base, 'run');
});

afterAll(async () => {
  await cleanup();
  await rm(base, { recursive: true, force: true });
}, 60_000);

async function image(name: string): Promise<string> {
  const p = join(base, name);
  await writeFile(p, '');
  await truncate(p, SIZE);
  return p;
}

async function nothingLeft(): Promise<void> {
  expect(await mountsUnder(base)).toEqual([]);
  expect(await loopsUnder(base)).toEqual([]);
  expect(await waitFor(async () => (await holderPids(runDir)).length === 0, 5000)).toBe(true);
}

describe('FUSE file of a 256 MiB file LUN', () => {
  it('carries ext4 through losetup across unmount and remount, checksums intact', async () => {
    const img = await image('accept.img');
    const mnt = join(base, 'accept-mnt');
    await mkdir(mnt);
    const att = await lunkit(runDir, ['attach', img, '--json']);
    expect(att.stderr).toBe('');
    expect(att.code).toBe(0);
    const state = JSON.parse(att.stdout) as { file: string; pid: number };
    expect(state.file.startsWith(runDir)).toBe(true);

    const attachLoop = async (): Promise<string> => {
      const l = (await run('losetup', ['--find', '--show', state.file])).stdout.trim();
      expect(l).toMatch(/^\/dev\/loop\d+$/);
      loops.add(l);
      return l;
    };
    const loop = await attachLoop();
    expect((await run('mkfs.ext4', ['-q', '-F', loop])).code).toBe(0);
    expect((await run('mount', [loop, mnt])).code).toBe(0);
    fsMounts.add(mnt);
    const sums = await writeTree(mnt, 1);
    expect((await run('umount', [mnt])).code).toBe(0);
    expect((await run('losetup', ['-d', loop])).code).toBe(0);

    // Remount through the same FUSE file, write more, check everything.
    const loop2 = await attachLoop();
    expect((await run('mount', [loop2, mnt])).code).toBe(0);
    expect(await checkTree(mnt, sums)).toEqual([]);
    const more = await writeTree(mnt, 2);
    expect((await run('umount', [mnt])).code).toBe(0);
    expect((await run('losetup', ['-d', loop2])).code).toBe(0);
    fsMounts.delete(mnt);

    // Stop the holder (SIGTERM: flush + unmount): the bytes are in the image file itself.
    expect((await lunkit(runDir, ['detach', state.file])).code).toBe(0);
    await nothingLeft();
    const direct = (await run('losetup', ['--find', '--show', '--read-only', img])).stdout.trim();
    loops.add(direct);
    expect((await run('mount', ['-o', 'ro', direct, mnt])).code).toBe(0);
    fsMounts.add(mnt);
    expect(await checkTree(mnt, sums)).toEqual([]);
    expect(await checkTree(mnt, more)).toEqual([]);
    expect((await run('umount', [mnt])).code).toBe(0);
    fsMounts.delete(mnt);
    expect((await run('losetup', ['-d', direct])).code).toBe(0);
    const fsck = await run('e2fsck', ['-fn', img]);
    expect(fsck.code).toBe(0);
  }, 180_000);
});

describe('lunkit mount / umount', () => {
  it('mount --mkfs ext4, write, umount, mount again: data kept, nothing left behind', async () => {
    const img = await image('m1.img');
    const dir = join(base, 'm1');
    await mkdir(dir);
    const m = await lunkit(runDir, ['mount', img, dir, '--mkfs', 'ext4', '--json']);
    expect(m.code, m.stderr).toBe(0);
    const st = JSON.parse(m.stdout) as { loop: string };
    loops.add(st.loop);
    fsMounts.add(dir);
    const sums = await writeTree(dir, 3);
    expect((await lunkit(runDir, ['umount', dir])).code).toBe(0);
    await nothingLeft();
    const m2 = await lunkit(runDir, ['mount', img, dir, '-o', 'ro,noatime', '--json']);
    expect(m2.code, m2.stderr).toBe(0);
    loops.add((JSON.parse(m2.stdout) as { loop: string }).loop);
    expect((await mountsUnder(dir)).join('\n')).toMatch(/ ro[ ,]/);
    expect(await checkTree(dir, sums)).toEqual([]);
    expect((await lunkit(runDir, ['umount', dir])).code).toBe(0);
    fsMounts.delete(dir);
    await nothingLeft();
  }, 120_000);

  it('a mount that fails part-way (wrong -t, bad -o) leaves no loop device, FUSE mount or process', async () => {
    const img = await image('m2.img');
    const dir = join(base, 'm2');
    await mkdir(dir);
    const ok = await lunkit(runDir, ['mount', img, dir, '--mkfs', 'ext4', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    loops.add((JSON.parse(ok.stdout) as { loop: string }).loop);
    expect((await lunkit(runDir, ['umount', dir])).code).toBe(0);

    const xfs = await lunkit(runDir, ['mount', img, dir, '-t', 'xfs']);
    expect(xfs.code).toBe(1);
    expect(xfs.stderr).toMatch(/mounting the filesystem failed.*ERR_MOUNT_STEP/s);
    await nothingLeft();

    const bad = await lunkit(runDir, ['mount', img, dir, '-o', 'no_such_option_xyz']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ERR_MOUNT_STEP/);
    await nothingLeft();

    const missing = await lunkit(runDir, ['mount', join(base, 'nope.img'), dir]);
    expect(missing.code).toBe(1);
    await nothingLeft();
    expect((await lunkit(runDir, ['umount', dir])).stderr).toMatch(/ERR_MOUNT_NOT_FOUND/);
  }, 120_000);

  it('says clearly when not root', async () => {
    const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(__dirname, 'lunkit-fuse-cli.mjs'), 'mount', 'x.img', '/tmp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs root.*\(ERR_NOT_ROOT\)/);
  });
});

describe('crash recovery', () => {
  it('a holder killed with SIGKILL while mounted: the next mount on the dir recovers without manual cleanup', async () => {
    const img = await image('k1.img');
    const dir = join(base, 'k1');
    await mkdir(dir);
    const m = await lunkit(runDir, ['mount', img, dir, '--mkfs', 'ext4', '--json']);
    expect(m.code, m.stderr).toBe(0);
    const st = JSON.parse(m.stdout) as { loop: string; attachId: string };
    loops.add(st.loop);
    fsMounts.add(dir);
    const sums = await writeTree(dir, 4);
    await run('sync', ['-f', join(dir, 'dir4-0')]);
    const holder = JSON.parse(await readFile(join(runDir, 'attach', `${st.attachId}.json`), 'utf8')) as { pid: number; mountpoint: string };
    process.kill(holder.pid, 'SIGKILL');
    expect(await waitFor(async () => (await holderPids(runDir)).length === 0)).toBe(true);

    const again = await lunkit(runDir, ['mount', img, dir, '--json']);
    expect(again.code, again.stderr).toBe(0);
    loops.add((JSON.parse(again.stdout) as { loop: string }).loop);
    expect(await checkTree(dir, sums)).toEqual([]);
    expect((await lunkit(runDir, ['umount', dir])).code).toBe(0);
    fsMounts.delete(dir);
    await nothingLeft();
  }, 120_000);

  it('attach on a directory whose holder was SIGKILLed clears the stale FUSE mount; a live one is refused', async () => {
    const img = await image('k2.img');
    const file = join(base, 'k2dir', 'disk');
    const first = await lunkit(runDir, ['attach', img, file, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const st = JSON.parse(first.stdout) as { pid: number };
    const busy = await lunkit(runDir, ['attach', img, file]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/in use by a live mount.*ERR_FUSE_MOUNTPOINT_IN_USE/s);

    process.kill(st.pid, 'SIGKILL');
    expect(await waitFor(async () => (await holderPids(runDir)).length === 0)).toBe(true);
    // The kernel mount is still there, with no server behind it.
    expect(await mountsUnder(join(base, 'k2dir'))).toHaveLength(1);
    expect((await run('stat', [file])).stderr).toMatch(/not connected/);

    const second = await lunkit(runDir, ['attach', img, file, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect((await run('stat', ['-c', '%s', file])).stdout.trim()).toBe(String(SIZE));
    expect(await mountsUnder(join(base, 'k2dir'))).toHaveLength(1);
    expect((await lunkit(runDir, ['detach', file])).code).toBe(0);
    await nothingLeft();
  }, 120_000);
});
