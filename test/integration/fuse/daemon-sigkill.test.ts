// Acceptance of issue 5 (as root): a `lunkit daemon` whose configuration has
// a `fuse` section is killed with SIGKILL while its FUSE file is in use, then
// started again with the same configuration: it comes up without manual
// cleanup (the stale FUSE mount is cleared) and serves the same bytes. Also
// when a loop device (with ext4 mounted on it) still points at the dead file:
// the restart succeeds and names the loop device, which the user re-attaches
// (docs/fuse.md "After a crash").
//
// The daemon is the process the test spawned (bin/lunkit.js no longer runs it
// as a child with malloc settings); the test still checks for stray children,
// so a re-exec coming back would be noticed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { checkTree, mountsUnder, run, waitFor, writeTree } from './helpers.js';

const SIZE = 64 * 1024 * 1024;
let base = '';
const pids = new Set<number>();
const loops = new Set<string>();
const fsMounts = new Set<string>();
const exportNames = new Set<string>();

function alive(pid: number): boolean {
  try {
    // A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** PIDs of the processes whose parent is pid (from /proc/PID/stat). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const s = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const m = /^\d+ \(.*\) \S (\d+) /.exec(s);
    if (m && Number(m[1]) === pid) out.push(Number(p));
  }
  return out;
}

/** The spawned process and the daemon that serves FUSE (the same PID without a re-exec). */
async function daemonPids(d: DaemonProcess): Promise<{ spawned: number; server: number }> {
  const spawned = d.child.pid!;
  pids.add(spawned);
  const kids = await childrenOf(spawned);
  for (const k of kids) pids.add(k);
  // The server is the process that holds /dev/fuse open.
  for (const pid of [spawned, ...kids]) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target === '/dev/fuse') return { spawned, server: pid };
    }
  }
  throw new Error(`no process of daemon ${spawned} holds /dev/fuse`);
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Writes random data at a few offsets (start, middle, unaligned, end) and fsyncs. */
async function scribble(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    for (const [pos, len] of [
      [0, 1 << 20],
      [17 * (1 << 20), 3 * (1 << 20)],
      [40 * (1 << 20) + 4096, 128 * 1024],
      [SIZE - (1 << 20), 1 << 20],
    ]) {
      await fh.write(randomBytes(len), 0, len, pos);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface Setup {
  dir: string;
  config: string;
  image: string;
  mnt: string;
  file: string;
}

async function setup(name: string): Promise<Setup> {
  const dir = join(base, name);
  await mkdir(dir);
  const image = join(dir, 'disk.img');
  await writeFile(image, '');
  await truncate(image, SIZE);
  const mnt = join(dir, 'fuse');
  // A unique file name: after the stale mount is cleared the kernel shows a
  // loop device's backing file as "/<name>", which cleanup must recognise.
  const exportName = `sigkill-${randomBytes(4).toString('hex')}`;
  exportNames.add(exportName);
  const config = join(dir, 'lunkit.json');
  await writeFile(
    config,
    JSON.stringify({
      backstores: { f0: { type: 'file', path: image } },
      fuse: { [mnt]: { exports: { [exportName]: { backstore: 'f0' } } } },
    }),
  );
  return { dir, config, image, mnt, file: join(mnt, exportName) };
}

async function start(s: Setup): Promise<DaemonProcess> {
  const d = await startDaemon({ dir: s.dir, config: s.config });
  await daemonPids(d);
  return d;
}

async function sigkill(pid: number, all: number[]): Promise<void> {
  process.kill(pid, 'SIGKILL');
  // Every process of that daemon must go (a re-exec child follows its parent).
  expect(await waitFor(async () => all.every((p) => !alive(p)), 10_000)).toBe(true);
}

/** The FUSE mount left behind is dead: a lookup fails with ENOTCONN (ECONNABORTED when the kernel aborted requests in flight). */
async function expectStale(s: Setup): Promise<void> {
  expect((await mountsUnder(s.mnt)).length).toBeGreaterThan(0);
  const err = await stat(join(s.mnt, 'no-such-name')).then(
    () => undefined,
    (e: NodeJS.ErrnoException) => e.code,
  );
  expect(['ENOTCONN', 'ECONNABORTED']).toContain(err);
}

async function losetup(file: string): Promise<string> {
  const r = await run('losetup', ['--find', '--show', file]);
  const dev = r.stdout.trim();
  expect(dev, r.stderr).toMatch(/^\/dev\/loop\d+$/);
  loops.add(dev);
  return dev;
}

async function cleanup(): Promise<void> {
  for (const d of fsMounts) await run('umount', ['-l', d]);
  for (const l of loops) {
    const r = await run('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE', l]);
    const back = r.stdout.trim();
    if (back.includes(base) || [...exportNames].some((n) => back === `/${n}` || back.endsWith(`/${n}`))) await run('losetup', ['-d', l]);
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const m of await mountsUnder(base)) await run('umount', ['-l', m.split(' ')[1]]);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-fuse-sigkill-'));
});

afterAll(async () => {
  await cleanup();
  await rm(base, { recursive: true, force: true });
}, 60_000);

describe('daemon with a FUSE export killed with SIGKILL', () => {
  it('comes back on the same config and serves the same bytes, no manual cleanup', async () => {
    const s = await setup('plain');
    const d1 = await start(s);
    const p1 = await daemonPids(d1);
    // One process: the one started serves /dev/fuse itself.
    expect(p1.server).toBe(p1.spawned);
    expect(await childrenOf(p1.spawned)).toEqual([]);

    expect((await stat(s.file)).size).toBe(SIZE);
    await scribble(s.file);
    const sum = await sha256File(s.file);
    expect(await sha256File(s.image)).toBe(sum);

    // Kill the process the user started.
    await sigkill(p1.spawned, [p1.spawned, p1.server]);
    await expectStale(s);

    const d2 = await start(s);
    try {
      expect(d2.stderr()).toMatch(/cleared a stale FUSE mount/);
      expect(await sha256File(s.file)).toBe(sum);
      // Served read-write again.
      await scribble(s.file);
      expect(await sha256File(s.file)).toBe(await sha256File(s.image));
    } finally {
      expect(await d2.stop()).toBe(0);
    }
    expect(await mountsUnder(s.mnt)).toEqual([]);
  });

  it('a daemon without a fuse section is one process too', async () => {
    const dir = join(base, 'nofuse');
    await mkdir(dir);
    const config = join(dir, 'lunkit.json');
    await writeFile(config, JSON.stringify({ backstores: { r0: { type: 'ramdisk', size: '1M' } } }));
    const d = await startDaemon({ dir, config });
    try {
      pids.add(d.child.pid!);
      expect(await childrenOf(d.child.pid!)).toEqual([]);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  it('restarts while a loop device with ext4 on it still uses the dead file, and names that device', async () => {
    const s = await setup('loop');
    const d1 = await start(s);
    const p1 = await daemonPids(d1);
    const loop1 = await losetup(s.file);
    const mk = await run('mkfs.ext4', ['-q', '-F', loop1]);
    expect(mk.code, mk.stderr).toBe(0);
    const fsDir = join(s.dir, 'fs');
    await mkdir(fsDir);
    const m1 = await run('mount', [loop1, fsDir]);
    expect(m1.code, m1.stderr).toBe(0);
    fsMounts.add(fsDir);
    const sums = await writeTree(fsDir, 1);
    // syncfs: ext4's data and journal reach the loop device, whose flush is an fsync of the FUSE file.
    expect((await run('sync', ['-f', fsDir])).code).toBe(0);

    // Kill the FUSE server itself.
    await sigkill(p1.server, [p1.spawned, p1.server]);
    await expectStale(s);

    const d2 = await start(s);
    try {
      // Up, and it says which loop device is left on the dead file and what to do.
      expect(d2.stderr()).toContain(`loop device ${loop1} still uses ${s.file}`);
      expect(d2.stderr()).toContain(`umount ${fsDir}, run \`losetup -d ${loop1}\``);
      // The old device fails I/O (reads of pages still cached aside): nothing
      // can revive a dead FUSE connection. Bytes 0-511 are unused by ext4.
      const dead = await run('dd', ['if=/dev/zero', `of=${loop1}`, 'bs=512', 'count=1', 'oflag=direct,sync']);
      expect(dead.code, dead.stderr).not.toBe(0);

      // What the user then does: drop the old filesystem mount and loop device, attach the new file.
      expect((await run('umount', ['-l', fsDir])).code).toBe(0);
      fsMounts.delete(fsDir);
      expect((await run('losetup', ['-d', loop1])).code).toBe(0);
      loops.delete(loop1);
      const loop2 = await losetup(s.file);
      const m2 = await run('mount', [loop2, fsDir]);
      expect(m2.code, m2.stderr).toBe(0);
      fsMounts.add(fsDir);
      expect(await checkTree(fsDir, sums)).toEqual([]);
      expect((await run('umount', [fsDir])).code).toBe(0);
      fsMounts.delete(fsDir);
      expect((await run('losetup', ['-d', loop2])).code).toBe(0);
      loops.delete(loop2);
    } finally {
      expect(await d2.stop()).toBe(0);
    }
    expect(await mountsUnder(s.dir)).toEqual([]);
  });
});
