// Durability and local security on a live daemon (issue 17):
// - fsyncgate: an EIO injected on one flush (the `error` filter) latches the
//   LU. With the filter off again, SYNCHRONIZE CACHE and FUA WRITE still fail
//   with MEDIUM ERROR / WRITE ERROR (03/0C/00) over iSCSI, NBD FLUSH and FUA
//   writes with EIO, FUSE fsync with EIO, `lunkit ls` and `lunkit stats` show the state, and
//   `lunkit backstore clear-error` ends it;
// - files the daemon creates (thin and thick file backstores, qcow2 images
//   and snapshots, the saved configuration) are 0600;
// - a FUSE mount with allowOther: another local user (nobody, via setpriv)
//   can see the LUN file but cannot open it, for writing or at all.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUrl, synchronizeCache16, testUnitReady, write16, type IscsiSession } from '../../../src/initiator/index.js';
import { NbdClient } from '../../../src/nbd-client/index.js';
import { cliOk, freePort, runCli, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-12.io.lunkit:durability';
const BS = 512;

let dir: string;
let daemon: DaemonProcess | undefined;
let iscsiPort: number;
let nbdPort: number;
let mnt: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-durability-'));
  // Traversable by other users, so the FUSE test shows the file's own mode keeps them out.
  await chmod(dir, 0o755);
  iscsiPort = await freePort();
  nbdPort = await freePort();
  mnt = join(dir, 'mnt');
  const config = {
    backstores: {
      disk: { type: 'file', path: join(dir, 'disk.img'), size: '16M', filters: [{ type: 'error', enabled: false }] },
      thick: { type: 'file', path: join(dir, 'thick.img'), size: '1M', thin: false },
      q: { type: 'qcow2', path: join(dir, 'q.qcow2'), size: '16M', create: true },
      shared: { type: 'file', path: join(dir, 'shared.img'), size: '4M' },
      sharedRo: { type: 'file', path: join(dir, 'shared-ro.img'), size: '4M' },
    },
    iscsi: {
      targets: {
        [IQN]: { tpgs: { '1': { portals: [`127.0.0.1:${iscsiPort}`], luns: { '0': 'disk' }, attributes: { generateNodeAcls: true } } } },
      },
    },
    nbd: { listen: [`127.0.0.1:${nbdPort}`], exports: { disk: { backstore: 'disk' } } },
    fuse: { [mnt]: { allowOther: true, exports: { shared: { backstore: 'shared' }, ro: { backstore: 'sharedRo', readOnly: true }, disk: { backstore: 'disk' } } } },
  };
  const file = join(dir, 'lunkit.json');
  await writeFile(file, JSON.stringify(config));
  daemon = await startDaemon({ dir, config: file });
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function openLun(): Promise<IscsiSession> {
  const { session } = await openUrl(`iscsi://127.0.0.1:${iscsiPort}/${IQN}/0`, { env: {} });
  for (let i = 0; i < 4 && !(await testUnitReady(session, 0)).ok; i++);
  return session;
}

function senseCodes(r: { ok: boolean; sense?: { key: number; asc: number; ascq: number } }): [number, number, number] | 'GOOD' {
  if (r.ok) return 'GOOD';
  return [r.sense?.key ?? -1, r.sense?.asc ?? -1, r.sense?.ascq ?? -1];
}

async function nbdErrno(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (e) {
    const err = e as { code?: string; errno?: number };
    return `${err.code}:${err.errno}`;
  }
}

describe('a failed flush latches the LUN for every fabric (fsyncgate)', () => {
  it('EIO on one flush: later flushes and FUA writes fail (iSCSI 03/0C/00, NBD and FUSE EIO) until clear-error', async () => {
    const sock = daemon!.socket;
    const session = await openLun();
    const nbd = await NbdClient.connect(`nbd://127.0.0.1:${nbdPort}/disk`);
    try {
      expect(senseCodes(await synchronizeCache16(session, 0))).toBe('GOOD');
      await cliOk(sock, ['backstore', 'filter', 'disk', '--type', 'error', '--on', '--rules', JSON.stringify([{ ops: ['flush'], error: 'EIO' }])]);
      expect(senseCodes(await synchronizeCache16(session, 0))).toEqual([0x3, 0x0c, 0x00]);
      // The fault is gone (the kernel would say fdatasync succeeded now): the LUN still refuses.
      await cliOk(sock, ['backstore', 'filter', 'disk', '--type', 'error', '--off']);
      expect(senseCodes(await synchronizeCache16(session, 0))).toEqual([0x3, 0x0c, 0x00]);
      expect(senseCodes(await write16(session, 0, 8, Buffer.alloc(BS, 1), { blockSize: BS, fua: true }))).toEqual([0x3, 0x0c, 0x00]);
      // Plain writes promise nothing durable: they still work.
      expect(senseCodes(await write16(session, 0, 9, Buffer.alloc(BS, 2), { blockSize: BS }))).toBe('GOOD');
      // NBD: EIO is errno 5.
      expect(await nbdErrno(nbd.flush())).toBe('ERR_NBD_SERVER_ERROR:5');
      expect(await nbdErrno(nbd.write(Buffer.alloc(BS, 3), 0, { fua: true }))).toBe('ERR_NBD_SERVER_ERROR:5');
      expect(await nbdErrno(nbd.write(Buffer.alloc(BS, 3), 0))).toBe('OK');
      // FUSE: fsync of the LUN file fails the same way (EIO).
      const fsyncDd = await run('dd', ['if=/dev/zero', `of=${join(mnt, 'disk')}`, 'bs=4096', 'count=1', 'conv=notrunc,fsync'], { timeout: 30_000 }).then(
        () => 'OK',
        (e: { stderr?: string }) => e.stderr ?? '',
      );
      expect(fsyncDd).toMatch(/Input\/output error/);

      const ls = await cliOk(sock, ['ls', '/backstores/file']);
      expect(ls).toMatch(/disk .*\[MEDIUM ERROR: flush failed \(EIO\)/);
      expect(ls).not.toMatch(/thick .*MEDIUM ERROR/);
      const stats = await cliOk(sock, ['stats']);
      // 2 SYNCHRONIZE CACHE + 1 FUA WRITE + NBD FLUSH + FUA write + the FUSE fsync (the kernel may add a flush of its own).
      const refused = Number(/disk: MEDIUM ERROR since .* \(flush failed: EIO\); (\d+) flushes\/FUA writes refused/.exec(stats)?.[1]);
      expect(refused).toBeGreaterThanOrEqual(5);
      const snap = JSON.parse(await cliOk(sock, ['stats', '--json'])) as { core: { luns: Array<{ name: string; mediumError?: { code: string } }> } };
      expect(snap.core.luns.find((l) => l.name === 'disk')?.mediumError?.code).toBe('EIO');

      const cleared = await cliOk(sock, ['backstore', 'clear-error', 'disk']);
      expect(cleared).toMatch(/Cleared the medium error of backstore disk \(EIO at .*, \d+ flushes\/FUA writes refused since\)/);
      expect(senseCodes(await synchronizeCache16(session, 0))).toBe('GOOD');
      expect(senseCodes(await write16(session, 0, 8, Buffer.alloc(BS, 1), { blockSize: BS, fua: true }))).toBe('GOOD');
      expect(await nbdErrno(nbd.flush())).toBe('OK');
      expect(await cliOk(sock, ['ls', '/backstores/file'])).not.toMatch(/MEDIUM ERROR/);
      expect(await cliOk(sock, ['backstore', 'clear-error', 'disk'])).toMatch(/had no medium error; nothing changed/);
      const missing = await runCli(sock, ['backstore', 'clear-error', 'nosuch']);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/no backstore "nosuch"/);
    } finally {
      await nbd.disconnect().catch(() => undefined);
      await session.logout().catch(() => undefined);
    }
  }, 60_000);
});

describe('files the daemon creates are 0600', () => {
  it('thin and thick file backstores, a qcow2 image and its snapshot, the saved configuration', async () => {
    const sock = daemon!.socket;
    const modeOf = async (p: string): Promise<string> => ((await stat(p)).mode & 0o777).toString(8);
    expect(await modeOf(join(dir, 'disk.img'))).toBe('600');
    expect(await modeOf(join(dir, 'thick.img'))).toBe('600');
    expect(await modeOf(join(dir, 'q.qcow2'))).toBe('600');
    await cliOk(sock, ['backstore', 'create', 'file', 'made', '--path', join(dir, 'made.img'), '--size', '1M']);
    expect(await modeOf(join(dir, 'made.img'))).toBe('600');
    await cliOk(sock, ['backstore', 'snapshot', 'q', '--to', join(dir, 'q-2.qcow2')]);
    expect(await modeOf(join(dir, 'q-2.qcow2'))).toBe('600');
    await cliOk(sock, ['save', join(dir, 'saved.json')]);
    expect(await modeOf(join(dir, 'saved.json'))).toBe('600');
  }, 60_000);
});

describe('FUSE with allowOther keeps other local users out', () => {
  /** Runs `sh -c script` as nobody (uid/gid 65534, no groups); its exit code and stderr. */
  async function asNobody(script: string): Promise<{ code: number; stderr: string }> {
    const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script], { timeout: 10_000 }).then(
      (x) => ({ code: 0, stderr: x.stderr }),
      (e: { code?: number; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '' }),
    );
    return r;
  }

  it('the files are the mounting user\'s, 0600 (read-only 0400); nobody can stat them but not open them', async () => {
    const file = join(mnt, 'shared');
    const ro = join(mnt, 'ro');
    const st = await stat(file);
    expect({ mode: (st.mode & 0o777).toString(8), uid: st.uid }).toEqual({ mode: '600', uid: process.getuid!() });
    expect(((await stat(ro)).mode & 0o777).toString(8)).toBe('400');
    // nobody reaches the mount (allow_other): stat works, so a refusal below is the file's mode.
    expect((await asNobody(`stat -c %a ${file}`)).code).toBe(0);
    const rw = await asNobody(`exec 3<>${file}`);
    expect(rw.code).not.toBe(0);
    expect(rw.stderr).toMatch(/Permission denied/);
    const rd = await asNobody(`exec 3<${file}`);
    expect(rd.code).not.toBe(0);
    expect(rd.stderr).toMatch(/Permission denied/);
    // The owner (root here) still opens it read-write.
    const mine = await run('sh', ['-c', `exec 3<>${file} && echo ok`], { timeout: 10_000 });
    expect(mine.stdout.trim()).toBe('ok');
  }, 60_000);
});
