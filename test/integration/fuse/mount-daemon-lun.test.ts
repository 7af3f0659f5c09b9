// `lunkit mount lunkit:<backstore> <dir>` against a real `lunkit daemon`:
// the daemon serves the LUN on its own FuseFabric (fuse.export.add on a mount
// point under the run directory), lunkit puts a loop device on the file and
// mounts it; `lunkit umount` undoes all of it, the daemon's FUSE export too.
// A mount that fails part-way (-t xfs on a disk with no filesystem) leaves no
// loop device, FUSE mount, FUSE export or mount record. Needs root, /dev/fuse
// and a build (npm run build).

import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';
import { checkTree, holderPids, loopsUnder, mountsUnder, run, writeTree, type Ran } from './helpers.js';

let base = '';
let runDir = '';
let daemon: DaemonProcess | undefined;

const lunkit = (args: string[]): Promise<Ran> => run(process.execPath, [LUNKIT_BIN, ...args], { ...process.env, LUNKIT_RUN_DIR: runDir }, 120_000);

/** The daemon's FUSE exports as "<mountpoint>/<name>" (its `fuse` section). */
async function fuseExports(): Promise<string[]> {
  const r = await lunkit(['fuse', 'export', 'list', '--json', '--socket', (daemon as DaemonProcess).socket]);
  expect(r.code).toBe(0);
  const mounts = (JSON.parse(r.stdout) ?? {}) as Record<string, { exports: Record<string, unknown> }>;
  return Object.entries(mounts).flatMap(([mnt, m]) => Object.keys(m.exports).map((n) => `${mnt}/${n}`));
}

async function nothingLeft(): Promise<void> {
  expect(await mountsUnder(base)).toEqual([]);
  expect(await loopsUnder(base)).toEqual([]);
  expect(await holderPids(runDir)).toEqual([]);
  expect(await fuseExports()).toEqual([]);
  expect(await readdir(join(runDir, 'mounts')).catch(() => [])).toEqual([]);
  expect(await readdir(join(runDir, 'attach')).catch(() => [])).toEqual([]);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-mount-dlun-'));
  runDir = join(base, 'run');
  const config = join(base, 'lunkit.json');
  await writeFile(
    config,
    JSON.stringify({
      backstores: {
        disk0: { type: 'file', path: join(base, 'disk0.img'), size: '128M' },
        blank: { type: 'ramdisk', size: '64M' },
      },
    }),
  );
  await mkdir(join(base, 'd'));
  daemon = await startDaemon({ dir: join(base, 'd'), config });
}, 60_000);

afterAll(async () => {
  for (const m of (await mountsUnder(base)).reverse()) await run('umount', ['-l', m.split(' ')[1]]);
  for (const l of await loopsUnder(base)) await run('losetup', ['-d', l.split(':')[0]]);
  await daemon?.stop();
  for (const m of await mountsUnder(base)) await run('umount', ['-l', m.split(' ')[1]]);
  await rm(base, { recursive: true, force: true });
}, 60_000);

describe('lunkit mount lunkit:<backstore>', () => {
  it('mkfs + files through the daemon-served file survive umount and remount; umount removes the export', async () => {
    const socket = (daemon as DaemonProcess).socket;
    const mnt = join(base, 'mnt');
    await mkdir(mnt);
    const m1 = await lunkit(['mount', 'lunkit:disk0', mnt, '--socket', socket, '--mkfs', 'ext4', '--json']);
    expect(m1.stderr).toBe('');
    expect(m1.code).toBe(0);
    const st = JSON.parse(m1.stdout) as { loop: string; file: string };
    expect(st.file.startsWith(join(runDir, 'daemon-luns'))).toBe(true);
    // The daemon serves it: its own FUSE mount, no holder process.
    expect((await mountsUnder(runDir)).some((l) => l.includes(' fuse'))).toBe(true);
    expect(await holderPids(runDir)).toEqual([]);
    expect(await fuseExports()).toEqual([st.file]);

    const sums = await writeTree(mnt, 7);
    const u1 = await lunkit(['umount', mnt]);
    expect(u1.stderr).toBe('');
    expect(u1.code).toBe(0);
    await nothingLeft();

    const m2 = await lunkit(['mount', 'lunkit:disk0', mnt, '--socket', socket]);
    expect(m2.code).toBe(0);
    expect(await checkTree(mnt, sums)).toEqual([]);
    expect((await lunkit(['umount', mnt])).code).toBe(0);
    await nothingLeft();
  });

  it('attach lunkit:<backstore> [file] shows the file in the given directory; detach removes the export', async () => {
    const socket = (daemon as DaemonProcess).socket;
    // 'files/' does not exist yet: attach makes it, detach removes it again.
    const file = join(base, 'files', 'blank.img');
    const a = await lunkit(['attach', 'lunkit:blank', file, '--socket', socket, '--json']);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect((JSON.parse(a.stdout) as { file: string }).file).toBe(file);
    expect((await stat(file)).size).toBe(64 * 1024 * 1024);
    expect(await fuseExports()).toEqual([file]);
    const d = await lunkit(['detach', file]);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(await fuseExports()).toEqual([]);
    expect(await readdir(base)).not.toContain('files');
    await nothingLeft();
  });

  it('a failing mount (-t xfs on a blank disk) leaves nothing behind', async () => {
    const socket = (daemon as DaemonProcess).socket;
    const mnt = join(base, 'mnt-bad');
    await mkdir(mnt);
    const r = await lunkit(['mount', 'lunkit:blank', mnt, '--socket', socket, '-t', 'xfs']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERR_MOUNT_STEP');
    await nothingLeft();
  });

  it('an unknown backstore or an absent daemon fails cleanly', async () => {
    const mnt = join(base, 'mnt-none');
    await mkdir(mnt);
    const r1 = await lunkit(['mount', 'lunkit:nope', mnt, '--socket', (daemon as DaemonProcess).socket]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('ERR_ATTACH_START');
    const r2 = await lunkit(['mount', 'lunkit:disk0', mnt, '--socket', join(base, 'no.sock')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('ERR_CONTROL_CONNECT');
    await nothingLeft();
  });
});
