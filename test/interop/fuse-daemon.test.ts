// Issue 5, first acceptance line, through the daemon: one 256 MiB file LUN
// exported at once over FUSE (the `fuse` section), iSCSI and NBD. The FUSE
// file gets mkfs.ext4 through losetup, is mounted, receives a tree of files
// with known checksums, is unmounted and mounted again, and every checksum
// matches; then the whole LUN read over NBD (nbdcopy) and over iSCSI
// (qemu-img convert) is byte-identical to the FUSE file. Real peers: losetup,
// mkfs.ext4, mount, e2fsck, nbdcopy, qemu-img. Needs root and /dev/fuse.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/daemon/control-client.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const IQN = 'iqn.2026-11.io.lunkit.test:fuse-daemon';

async function sh(cmd: string, args: string[], timeout = 60_000): Promise<string> {
  return (await run(cmd, args, { timeout, maxBuffer: 16 * MiB })).stdout;
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface Listening {
  iscsi: Array<{ host: string; port: number }>;
  nbd: Array<{ host: string; port: number }>;
  fuse: Array<{ mountpoint: string; files: string[] }>;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  cleanups.length = 0;
});

describe('a file LUN over FUSE, iSCSI and NBD at once', () => {
  it('ext4 through losetup on the FUSE file keeps its checksums across remount, and iSCSI and NBD read the same bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lunkit-fused-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const fuseDir = join(dir, 'fuse');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const config = join(dir, 'lunkit.json');
    await writeFile(
      config,
      JSON.stringify({
        backstores: { disk0: { type: 'file', path: join(dir, 'disk0.img'), size: '256M' } },
        iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'disk0' }, attributes: { generateNodeAcls: true } } } } } },
        nbd: { listen: ['127.0.0.1:0'], exports: { disk0: { backstore: 'disk0' } } },
        fuse: { [fuseDir]: { exports: { disk0: { backstore: 'disk0' } } } },
      }),
    );
    const d: DaemonProcess = await startDaemon({ dir, config });
    cleanups.push(() => d.stop());
    const client = await ControlClient.connect(d.socket);
    const { listening } = await client.call<{ listening: Listening }>('ping');
    client.close();
    const file = join(fuseDir, 'disk0');
    expect(listening.fuse).toEqual([{ mountpoint: fuseDir, files: [file] }]);

    // losetup + mkfs.ext4 + mount on the FUSE file (cleanups undo them in reverse).
    const loop = (await sh('losetup', ['--find', '--show', file])).trim();
    cleanups.push(() => sh('losetup', ['-d', loop]));
    await sh('mkfs.ext4', ['-q', '-F', loop], 120_000);
    await sh('mount', [loop, mnt]);
    let mounted = true;
    cleanups.push(async () => {
      if (mounted) await sh('umount', [mnt]);
    });

    // A tree of files with known checksums.
    const sums = new Map<string, string>();
    for (let i = 0; i < 12; i++) {
      const sub = join(mnt, `d${i % 3}`);
      await mkdir(sub, { recursive: true });
      const data = randomBytes(64 * 1024 + i * 333_333);
      const name = join(`d${i % 3}`, `f${i}.bin`);
      await writeFile(join(mnt, name), data);
      sums.set(name, createHash('sha256').update(data).digest('hex'));
    }
    await sh('umount', [mnt]);
    await sh('mount', [loop, mnt]);
    for (const [name, sum] of sums) {
      expect(createHash('sha256').update(await readFile(join(mnt, name))).digest('hex'), name).toBe(sum);
    }
    await sh('umount', [mnt]);
    mounted = false;
    await sh('e2fsck', ['-fn', loop], 120_000);

    // The same bytes through the NBD and iSCSI exports of the LUN.
    const fuseSum = await sha256File(file);
    const n = listening.nbd[0];
    const viaNbd = join(dir, 'via-nbd.img');
    await sh('nbdcopy', [`nbd://${n.host}:${n.port}/disk0`, viaNbd], 120_000);
    expect(await sha256File(viaNbd)).toBe(fuseSum);
    await rm(viaNbd);
    const i = listening.iscsi[0];
    const viaIscsi = join(dir, 'via-iscsi.img');
    await sh('qemu-img', ['convert', '-O', 'raw', `iscsi://${i.host}:${i.port}/${IQN}/0`, viaIscsi], 120_000);
    expect(await sha256File(viaIscsi)).toBe(fuseSum);
  }, 300_000);
});
