// Issue 7 acceptance, second half: a filesystem made and mounted through
// `lunkit mount iscsi://...` on a LUN of tgtd (Debian's tgt, a userspace
// iSCSI target nobody here wrote), checksummed files surviving umount and
// remount, and `lunkit umount` leaving no loop device, FUSE mount, holder
// process or iSCSI session (tgtd's I_T nexus list is empty again: the holder
// logged out). tgtd runs in the foreground on a free port with its own
// control port and is stopped by PID. Needs root, /dev/fuse and loop devices.

import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LUNKIT_BIN } from '../helpers/lunkit-process.js';
import { startTgtd, type Tgtd } from '../../src/tools/tgtd.js';
import { checkTree, holderPids, killHoldersAndFuseMounts, loopsUnder, mountsUnder, run, waitFor, writeTree, type Ran } from '../integration/fuse/helpers.js';

const IQN = 'iqn.2024-01.org.lunkit.interop:tgtd-mount';
const SIZE = 256 << 20;

describe('lunkit mount iscsi:// against tgtd', () => {
  let base: string;
  let runDir: string;
  let tgtd: Tgtd | undefined;
  let port: number;
  const lunkit = (args: string[], timeoutMs = 120_000): Promise<Ran> => run(process.execPath, [LUNKIT_BIN, ...args], { ...process.env, LUNKIT_RUN_DIR: runDir }, timeoutMs);
  /** tgtd's I_T nexus list for our target (one "I_T nexus: N" line per session). */
  const nexuses = async (): Promise<number> => ((await tgtd!.adm('--op', 'show', '--mode', 'target')).stdout.match(/I_T nexus: \d+/g) ?? []).length;

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'lunkit-tgtd-mount-'));
    runDir = join(base, 'run');
    const fh = await open(join(base, 'lun1.img'), 'w');
    await fh.truncate(SIZE);
    await fh.close();
    // Keep the control port apart from bench/iscsi's and initiator-tgtd.test.ts's ranges.
    tgtd = await startTgtd({ controlBase: 7000, targets: [{ iqn: IQN, luns: [join(base, 'lun1.img')] }] });
    port = tgtd.port;
  }, 60_000);

  afterAll(async () => {
    // Whatever a failed run left: filesystems, loop devices, holders, FUSE mounts.
    if (base !== undefined) {
      for (const m of (await mountsUnder(base)).reverse()) await run('umount', ['-l', m.split(' ')[1]]);
      for (const l of await loopsUnder(base)) await run('losetup', ['-d', l.split(':')[0]]);
      await killHoldersAndFuseMounts(runDir, base);
    }
    await tgtd?.stop();
    if (base !== undefined) await rm(base, { recursive: true, force: true });
  }, 60_000);

  async function nothingLeft(): Promise<void> {
    expect(await mountsUnder(base)).toEqual([]);
    expect(await loopsUnder(base)).toEqual([]);
    expect(await loopsUnder(runDir)).toEqual([]);
    expect(await waitFor(async () => (await holderPids(runDir)).length === 0, 5000)).toBe(true);
    // The holder logged out: tgtd holds no session for us any more.
    expect(await waitFor(async () => (await nexuses()) === 0, 5000)).toBe(true);
  }

  it('mkfs.ext4 + a checksummed tree survive umount and remount; umount leaves nothing behind', async () => {
    const mnt = join(base, 'mnt');
    await mkdir(mnt);
    const url = `iscsi://127.0.0.1:${port}/${IQN}/1`;

    const m1 = await lunkit(['mount', url, mnt, '--mkfs', 'ext4', '--json']);
    expect(m1.stderr).toBe('');
    expect(m1.code).toBe(0);
    const state = JSON.parse(m1.stdout) as { loop: string; file: string; fsType: string };
    expect(state.loop).toMatch(/^\/dev\/loop\d+$/);
    expect(state.fsType).toBe('ext4');
    expect((await mountsUnder(mnt)).some((l) => l.startsWith(`${state.loop} ${mnt} ext4`))).toBe(true);

    // The holder's session is listed, as tgtd sees it.
    const ls = await lunkit(['sessions', '--initiator', '--json']);
    expect(ls.code).toBe(0);
    const held = (JSON.parse(ls.stdout) as { sessions: Array<{ target: string; portal: string; lun: number; tsih: number; isid: string; connections: unknown[]; file: string }> }).sessions;
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ target: IQN, portal: `127.0.0.1:${port}`, lun: 1, file: state.file });
    expect(held[0].tsih).toBeGreaterThan(0);
    expect(held[0].isid).toMatch(/^[0-9a-f]{12}$/);
    expect(held[0].connections.length).toBeGreaterThanOrEqual(1);
    expect(await nexuses()).toBe(1);

    const sums = await writeTree(mnt, 1);
    expect(sums.size).toBeGreaterThan(20);
    const u1 = await lunkit(['umount', mnt]);
    expect(u1.stderr).toBe('');
    expect(u1.code).toBe(0);
    await nothingLeft();

    // Again, asking for two connections: tgtd has no MC/S and grants one; the files are all there.
    const m2 = await lunkit(['mount', url, mnt, '--connections', '2', '--json']);
    expect(m2.stderr).toBe('');
    expect(m2.code).toBe(0);
    expect(await checkTree(mnt, sums)).toEqual([]);
    const more = await writeTree(mnt, 2);
    const u2 = await lunkit(['umount', mnt]);
    expect(u2.code).toBe(0);
    await nothingLeft();

    const m3 = await lunkit(['mount', url, mnt, '-o', 'ro', '--json']);
    expect(m3.code).toBe(0);
    expect(await checkTree(mnt, sums)).toEqual([]);
    expect(await checkTree(mnt, more)).toEqual([]);
    expect((await lunkit(['umount', mnt])).code).toBe(0);
    await nothingLeft();
    // The backing file is a clean ext4 filesystem (e2fsck -n exits 0).
    expect((await run('e2fsck', ['-fn', join(base, 'lun1.img')])).code).toBe(0);
  }, 300_000);
});
