// Filters on a live daemon (issue 13 acceptance): an `error` filter toggled
// through the control socket (`lunkit backstore filter`) while libiscsi's
// iscsi-perf reads the LUN: the injected writes get MEDIUM ERROR / SPACE
// ALLOCATION FAILED / WRITE PROTECTED sense over iSCSI and EIO / ENOSPC /
// EPERM over NBD (qemu-io), everything else GOOD, and iscsi-perf sees no
// error; a `delay` of 200 ms under libiscsi's ABORT TASK test; a `readonly`
// filter refusing writes over iSCSI, NBD and FUSE. Read faults get UNRECOVERED
// READ ERROR. A backstore that hangs (a 60 s delay): ABORT TASK and LUN RESET
// answer within the core's TMF bound while the I/O is still stuck, the other
// LUN keeps serving, and the daemon still stops cleanly (limits.shutdownIoWait).
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUrl, read16, testUnitReady, write16, type IscsiSession } from '../../src/initiator/index.js';
import { cliOk, freePort, runCli, startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-12.io.lunkit:filters';
const BS = 512;

let dir: string;
let daemon: DaemonProcess | undefined;
let iscsiPort: number;
let nbdPort: number;
let mnt: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-filters-'));
  iscsiPort = await freePort();
  nbdPort = await freePort();
  mnt = join(dir, 'mnt');
  const config = {
    backstores: {
      disk: {
        type: 'file',
        path: join(dir, 'disk.img'),
        size: '64M',
        // Outermost first: the delay sits nearest the core, the error filter below it.
        filters: [
          { type: 'delay', enabled: false, read: '200ms', write: '200ms' },
          { type: 'error', enabled: false },
        ],
      },
      ro: { type: 'ramdisk', size: '16M', filters: [{ type: 'readonly' }] },
    },
    iscsi: {
      targets: {
        [IQN]: { tpgs: { '1': { portals: [`127.0.0.1:${iscsiPort}`], luns: { '0': 'disk', '1': 'ro' }, attributes: { generateNodeAcls: true } } } },
      },
    },
    nbd: { listen: [`127.0.0.1:${nbdPort}`], exports: { disk: { backstore: 'disk' }, ro: { backstore: 'ro' } } },
    fuse: { [mnt]: { exports: { ro: { backstore: 'ro' } } } },
    // The hang test leaves I/O stuck for 60 s: shutdown must not wait for it,
    // and TMFs answer after 2 s of waiting for it (limits.tmfTaskWait).
    limits: { shutdownIoWait: 2, tmfTaskWait: 2 },
  };
  const file = join(dir, 'lunkit.json');
  await writeFile(file, JSON.stringify(config));
  daemon = await startDaemon({ dir, config: file });
}, 60_000);

afterAll(async () => {
  // 0, not the SIGKILL the helper sends after 10 s: the stuck I/O of the hang test did not hang shutdown.
  const code = await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
  expect(code).toBe(0);
}, 30_000);

const lunUrl = (lun: number): string => `iscsi://127.0.0.1:${iscsiPort}/${IQN}/${lun}`;

/** A session to a LUN with its POWER ON unit attention consumed (TEST UNIT READY until GOOD). */
async function openLun(lun: number): Promise<IscsiSession> {
  const { session } = await openUrl(lunUrl(lun), { env: {} });
  for (let i = 0; i < 4 && !(await testUnitReady(session, lun)).ok; i++);
  return session;
}

/** qemu-io on an NBD export: its stderr/stdout names the errno of a failed write. */
async function qemuIoWrite(exportName: string, offset: number): Promise<string> {
  const r = await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${offset} 4k`, `nbd://127.0.0.1:${nbdPort}/${exportName}`], { timeout: 30_000 }).catch(
    (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
  return `${r.stdout}${r.stderr}`;
}

describe('error filter under iscsi-perf load', () => {
  it('injects MEDIUM ERROR, SPACE ALLOCATION FAILED and WRITE PROTECTED on the chosen LBAs only, and the NBD errnos', async () => {
    const socket = daemon!.socket;
    // A real peer reads the whole LUN meanwhile; it must see no error at all.
    const perf = spawn('iscsi-perf', ['-m', '16', '-b', '8', '-t', '12', '-r', lunUrl(0)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let perfOut = '';
    perf.stdout.on('data', (d: Buffer) => (perfOut += d.toString()));
    perf.stderr.on('data', (d: Buffer) => (perfOut += d.toString()));
    const perfDone = new Promise<number | null>((resolve) => perf.once('close', resolve));

    let session: IscsiSession | undefined;
    try {
      session = await openLun(0);
      const cases: Array<[string, [number, number, number], RegExp]> = [
        ['EIO', [0x3, 0x0c, 0x00], /Input\/output error/],
        ['ENOSPC', [0x7, 0x27, 0x07], /No space left on device/],
        ['EROFS', [0x7, 0x27, 0x00], /Operation not permitted/],
      ];
      for (const [errno, [key, asc, ascq], nbdMessage] of cases) {
        const rules = JSON.stringify([{ error: errno, ops: ['write'], lba: { start: 0, count: 2048 } }]);
        await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'error', '--rules', rules, '--on']);
        // Inside the range: the injected failure, as sense.
        const bad = await write16(session, 0, 8, Buffer.alloc(8 * BS, 1), { blockSize: BS });
        expect(bad.ok, errno).toBe(false);
        if (!bad.ok) expect([bad.status, bad.sense?.key, bad.sense?.asc, bad.sense?.ascq], errno).toEqual([0x02, key, asc, ascq]);
        // Outside it, and every read: GOOD.
        const good = await write16(session, 0, 4096, Buffer.alloc(8 * BS, 2), { blockSize: BS });
        expect(good.ok, errno).toBe(true);
        const read = await read16(session, 0, 8, 8, { blockSize: BS });
        expect(read.ok, errno).toBe(true);
        // The same failure through the NBD door, to a real NBD client.
        expect(await qemuIoWrite('disk', 0), errno).toMatch(nbdMessage);
        expect(await qemuIoWrite('disk', 4 << 20), errno).toMatch(/wrote 4096\/4096 bytes/);
      }
      const shown = JSON.parse(await cliOk(socket, ['backstore', 'filter', 'disk', '--json'])) as {
        filters: Array<{ type: string; enabled?: boolean; stats?: { injected: Record<string, number> } }>;
      };
      expect(shown.filters.map((f) => f.type)).toEqual(['delay', 'error']);
      expect(shown.filters[1].enabled).toBe(true);
      // One iSCSI and one NBD write per errno were injected (NBD clients may retry none).
      expect(shown.filters[1].stats?.injected.write).toBeGreaterThanOrEqual(6);
      await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'error', '--off']);
      expect((await write16(session, 0, 8, Buffer.alloc(8 * BS, 3), { blockSize: BS })).ok).toBe(true);
    } finally {
      await session?.logout().catch(() => undefined);
      const code = await perfDone;
      expect(code, perfOut).toBe(0);
    }
  }, 120_000);

  it('EIO on reads: UNRECOVERED READ ERROR (03/11/00) over iSCSI, EIO over NBD; writes unaffected', async () => {
    const socket = daemon!.socket;
    const session = await openLun(0);
    try {
      const rules = JSON.stringify([{ error: 'EIO', ops: ['read'], lba: { start: 0, count: 2048 } }]);
      await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'error', '--rules', rules, '--on']);
      const bad = await read16(session, 0, 8, 8, { blockSize: BS });
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect([bad.status, bad.sense?.key, bad.sense?.asc, bad.sense?.ascq]).toEqual([0x02, 0x3, 0x11, 0x00]);
      expect((await read16(session, 0, 4096, 8, { blockSize: BS })).ok).toBe(true);
      expect((await write16(session, 0, 8, Buffer.alloc(8 * BS, 4), { blockSize: BS })).ok).toBe(true);
      const r = await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4k', `nbd://127.0.0.1:${nbdPort}/disk`], { timeout: 30_000 }).catch(
        (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
      );
      expect(`${r.stdout}${r.stderr}`).toMatch(/Input\/output error/);
    } finally {
      await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'error', '--off']);
      await session.logout().catch(() => undefined);
    }
  }, 60_000);

  it('a filter named wrongly is a clear error, and changes nothing', async () => {
    const r = await runCli(daemon!.socket, ['backstore', 'filter', 'ro', '--type', 'error', '--on']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/backstore "ro" has no error filter/);
    const bad = await runCli(daemon!.socket, ['backstore', 'filter', 'disk', '--type', 'error', '--rules', '[{"error":"EWHAT"}]']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/ERR_INVALID_PARAMS/);
  });
});

describe('delay filter', () => {
  it('200 ms per I/O: libiscsi ABORT TASK aborts cleanly', async () => {
    const socket = daemon!.socket;
    await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'delay', '--on']);
    try {
      const r = await run('iscsi-test-cu', ['-d', '-t', 'iSCSI.iSCSITMF.AbortTaskSimpleAsync', lunUrl(0)], { timeout: 120_000 }).catch(
        (e: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''} exit ${e.code}` }),
      );
      const out = `${r.stdout}${r.stderr}`;
      // CUnit's summary: tests Total 1, Ran 1, Passed 1, Failed 0.
      expect(out, out).toMatch(/AbortTaskSimpleAsync \.\.\.passed/);
      expect(out, out).toMatch(/tests\s+1\s+1\s+1\s+0\b/);
      const shown = JSON.parse(await cliOk(socket, ['backstore', 'filter', 'disk', '--json'])) as { filters: Array<{ stats?: { delayed?: Record<string, number> } }> };
      expect(Object.values(shown.filters[0].stats?.delayed ?? {}).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'delay', '--off']);
    }
    // The daemon still serves after the abort.
    const session = await openLun(0);
    try {
      expect((await read16(session, 0, 0, 8, { blockSize: BS })).ok).toBe(true);
    } finally {
      await session.logout().catch(() => undefined);
    }
  }, 180_000);
});

describe('readonly filter', () => {
  it('refuses writes over iSCSI (WRITE PROTECTED), NBD (EPERM) and FUSE (EROFS); reads work', async () => {
    const session = await openLun(1);
    try {
      const w = await write16(session, 1, 0, Buffer.alloc(BS), { blockSize: BS });
      expect(w.ok).toBe(false);
      if (!w.ok) expect([w.sense?.key, w.sense?.asc, w.sense?.ascq]).toEqual([0x7, 0x27, 0x00]);
      expect((await read16(session, 1, 0, 8, { blockSize: BS })).ok).toBe(true);
    } finally {
      await session.logout().catch(() => undefined);
    }
    // The export is read-only (the LU is write protected): qemu-io cannot write.
    expect(await qemuIoWrite('ro', 0)).toMatch(/Operation not permitted|Read-only|read-only|Permission denied/);
    const fuseFile = join(mnt, 'ro');
    const dd = await run('dd', ['if=/dev/zero', `of=${fuseFile}`, 'bs=4096', 'count=1', 'conv=notrunc'], { timeout: 30_000 }).catch((e: { stderr?: string }) => ({ stderr: e.stderr ?? '' }));
    expect(dd.stderr).toMatch(/Read-only file system/);
    const rd = await run('dd', [`if=${fuseFile}`, 'of=/dev/null', 'bs=4096', 'count=4'], { timeout: 30_000 });
    expect(rd.stderr).toMatch(/16384 bytes/);
  }, 60_000);
});

describe('a backstore that hangs (60 s delay)', () => {
  /** Operations the delay filter holds right now. */
  async function pending(): Promise<number> {
    const shown = JSON.parse(await cliOk(daemon!.socket, ['backstore', 'filter', 'disk', '--json'])) as { filters: Array<{ stats?: { pending?: number } }> };
    return shown.filters[0].stats?.pending ?? 0;
  }

  async function untilPending(n: number): Promise<void> {
    for (let i = 0; i < 200 && (await pending()) < n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await pending()).toBeGreaterThanOrEqual(n);
  }

  it('ABORT TASK and LUN RESET complete while the I/O is still stuck; the other LUN keeps serving', async () => {
    const socket = daemon!.socket;
    await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'delay', '--delays', JSON.stringify({ read: '60s', write: '60s' }), '--on']);
    const session = await openLun(0);
    const other = await openLun(1);
    try {
      // ABORT TASK of a write stuck in the backstore: answered at the TMF bound, not after 60 s.
      const ac = new AbortController();
      const stuck = write16(session, 0, 16, Buffer.alloc(8 * BS, 5), { blockSize: BS, signal: ac.signal });
      await untilPending(1);
      ac.abort();
      await expect(stuck).rejects.toMatchObject({ code: 'ERR_ISCSI_ABORTED' });
      expect(await pending()).toBe(1); // the write is still held: the abort did not wait for it

      // LUN RESET with a read and a write stuck: FUNCTION COMPLETE, the I/O still held.
      const r = read16(session, 0, 512, 8, { blockSize: BS }).catch((e: unknown) => e);
      const w = write16(session, 0, 1024, Buffer.alloc(8 * BS, 6), { blockSize: BS }).catch((e: unknown) => e);
      await untilPending(3);
      await session.lunReset(0);
      expect(await pending()).toBe(3);

      // Meanwhile LUN 1 (another backstore) answers at once, and LUN 0 answers what needs no I/O.
      for (let i = 0; i < 4; i++) expect((await read16(other, 1, i * 8, 8, { blockSize: BS })).ok).toBe(true);
      let tur = await testUnitReady(session, 0);
      for (let i = 0; i < 4 && !tur.ok; i++) tur = await testUnitReady(session, 0);
      expect(tur.ok).toBe(true);

      // The delay off: new I/O to other blocks flows; the held operations stay held (shutdown deals with them).
      await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'delay', '--off']);
      expect((await write16(session, 0, 8192, Buffer.alloc(8 * BS, 7), { blockSize: BS })).ok).toBe(true);
      expect((await read16(session, 0, 8192, 8, { blockSize: BS })).ok).toBe(true);
      expect(await pending()).toBe(3);
      // Their answers are suppressed (aborted by the reset); the promises end when the session does.
      void r;
      void w;
    } finally {
      await cliOk(socket, ['backstore', 'filter', 'disk', '--type', 'delay', '--delays', JSON.stringify({ read: '200ms', write: '200ms' })]);
      await other.logout().catch(() => undefined);
      await session.logout().catch(() => undefined);
    }
  }, 90_000);
});
