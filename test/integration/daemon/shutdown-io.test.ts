// SIGTERM with backstore I/O in flight (issue 17): closing the sessions
// aborts their tasks, but a write already handed to the backstore must land
// before the final flush, and a backstore that hangs must not hang the
// shutdown past limits.shutdownIoWait. The `delay` filter holds a write
// inside the backstore stack: longer than the iSCSI server's logout grace
// (5 s), so the sessions are gone and their tasks aborted while it waits.
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openUrl, testUnitReady, write16 } from '../../../src/initiator/index.js';
import { freePort, runCli, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';

const IQN = 'iqn.2026-12.io.lunkit:shutdown-io';
const BS = 512;
const LBA = 100;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function daemonWith(writeDelay: string, limits?: Record<string, unknown>): Promise<{ daemon: DaemonProcess; dir: string; port: number; img: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-shutdown-io-'));
  const port = await freePort();
  const img = join(dir, 'slow.img');
  const config = {
    backstores: { slow: { type: 'file', path: img, size: '4M', filters: [{ type: 'delay', write: writeDelay }] } },
    iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: [`127.0.0.1:${port}`], luns: { '0': 'slow' }, attributes: { generateNodeAcls: true } } } } } },
    ...(limits ? { limits } : {}),
  };
  const file = join(dir, 'lunkit.json');
  await writeFile(file, JSON.stringify(config));
  const daemon = await startDaemon({ dir, config: file });
  cleanups.push(async () => {
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return { daemon, dir, port, img };
}

/** Starts a WRITE(16) of 0x5a at LBA and waits until the delay filter holds it. */
async function writeInFlight(daemon: DaemonProcess, port: number): Promise<void> {
  const { session } = await openUrl(`iscsi://127.0.0.1:${port}/${IQN}/0`, { env: {} });
  for (let i = 0; i < 4 && !(await testUnitReady(session, 0)).ok; i++);
  // Its answer never comes (the session is dropped at shutdown): only what reaches the file counts.
  write16(session, 0, LBA, Buffer.alloc(BS, 0x5a), { blockSize: BS }).catch(() => undefined);
  for (let i = 0; i < 200; i++) {
    const r = await runCli(daemon.socket, ['backstore', 'filter', 'slow', '--json']);
    const state = JSON.parse(r.stdout) as { filters: Array<{ stats?: { pending: number } }> };
    if ((state.filters[0]?.stats?.pending ?? 0) === 1) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('the write never reached the delay filter');
}

/** SIGTERM; resolves with the exit code, or 'hung' if the process outlives `ms`. */
function terminate(daemon: DaemonProcess, ms: number): Promise<number | null | 'hung'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('hung'), ms);
    daemon.child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    daemon.child.kill('SIGTERM');
  });
}

async function blockOf(img: string): Promise<Buffer> {
  const fh = await open(img, 'r');
  try {
    const b = Buffer.alloc(BS);
    await fh.read(b, 0, BS, LBA * BS);
    return b;
  } finally {
    await fh.close();
  }
}

describe('shutdown waits for backstore I/O in flight', () => {
  it('a write held in the backstore at SIGTERM is on disk after the daemon exits', async () => {
    const { daemon, port, img } = await daemonWith('7s');
    await writeInFlight(daemon, port);
    // Well past the 7 s hold; the hold, not this bound, decides what lands.
    expect(await terminate(daemon, 40_000)).toBe(0);
    expect((await blockOf(img)).every((b) => b === 0x5a)).toBe(true);
  }, 60_000);

  it('a backstore that hangs (60 s) does not hang shutdown: the wait ends at shutdownIoWait (2 s)', async () => {
    const { daemon, port, img } = await daemonWith('60s', { shutdownIoWait: 2 });
    await writeInFlight(daemon, port);
    // 5 s logout grace + 2 s shutdownIoWait + the final flush: far less than the 60 s hang.
    const code = await terminate(daemon, 30_000);
    expect(code).toBe(0);
    expect(daemon.stderr()).toMatch(/backstore I\/O still in progress at shutdown/);
    // The held write never reached the file (the delay filter fails it at close).
    expect((await blockOf(img)).every((b) => b === 0)).toBe(true);
  }, 60_000);
});
