// Issue 19: `lunkit demo` is the daemon. Started as scripts and CI start it
// (no terminal), the verbs of another process reach it without --socket:
// `lunkit ls` shows the embedded default (iSCSI target, NBD export, FUSE
// file), `lunkit sessions --json` an iscsi-perf session and an NBD client,
// the stats snapshot names the export with its connection and the FUSE file;
// a second demo on the same socket refuses with what to do; SIGTERM stops it
// cleanly (exit 0, socket and mount gone).
//
// The socket is set through LUNKIT_SOCKET (the variable the demo and every
// verb read), because the default /run/lunkit/lunkit.sock may be in use by
// tests running in parallel; the default itself is the same code path.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

import { startDemoDaemon, userSocketPath } from '../../../src/cli/commands/demo.js';
import { ControlClient } from '../../../src/daemon/control-client.js';
import type { LunkitDaemon } from '../../../src/daemon/daemon.js';
import { DEFAULT_SOCKET_PATH } from '../../../src/daemon/paths.js';
import { LunkitError } from '../../../src/protocols/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import type { StatsSnapshot } from '../../../src/daemon/metrics.js';
import { LUNKIT_BIN, startLunkit, type LunkitProcess } from '../../helpers/lunkit-process.js';
import { Wire } from '../../helpers/nbd-wire.js';

const run = promisify(execFile);
const INITIATOR = 'iqn.2026-11.io.t:demo-perf';

let demo: LunkitProcess | undefined;
let perf: ChildProcess | undefined;
let nbd: Socket | undefined;
let dir: string | undefined;

afterEach(async () => {
  nbd?.destroy();
  if (perf && perf.exitCode === null && perf.signalCode === null) perf.kill('SIGKILL');
  await demo?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  demo = perf = nbd = dir = undefined;
});

/** `lunkit ARGS` as another terminal runs it: no flags but the environment. */
function lunkit(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [LUNKIT_BIN, ...args], { env, timeout: 15_000 });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** An NBD client (fixed newstyle, NBD_OPT_EXPORT_NAME) left in transmission on `name`. */
async function nbdClient(host: string, port: number, name: string): Promise<Socket> {
  const sock = connect(port, host);
  await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
  const w = new Wire(sock);
  const hello = await w.read(18);
  expect(hello.subarray(0, 8).toString('latin1')).toBe('NBDMAGIC');
  const opt = Buffer.alloc(16 + name.length);
  // Client flags: FIXED_NEWSTYLE | NO_ZEROES (RFC: proto.md "Newstyle negotiation").
  sock.write(Buffer.from([0, 0, 0, 3]));
  opt.write('IHAVEOPT', 0, 'latin1');
  opt.writeUInt32BE(1, 8); // NBD_OPT_EXPORT_NAME
  opt.writeUInt32BE(name.length, 12);
  opt.write(name, 16, 'latin1');
  sock.write(opt);
  const reply = await w.read(10); // export size (8) and transmission flags (2)
  expect(reply.readBigUInt64BE(0)).toBe(64n << 20n);
  return sock;
}

describe('lunkit demo as a daemon', () => {
  it('answers lunkit ls, sessions --json and stats from another process through the socket it announces', { timeout: 60_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-demo-daemon-'));
    const socket = join(dir, 'lunkit.sock');
    const fuseDir = join(dir, 'fuse');
    const env = { ...process.env, LUNKIT_SOCKET: socket };
    demo = await startLunkit(['demo', '--port', '0', '--nbd-port', '0', '--size', '64M', '--log-level', 'warn', '--fuse-dir', fuseDir], { env });
    const out = demo.stdout();
    // The banner names the socket (with the variable to export, as it is not the default) and the verbs.
    expect(out).toContain(`  control:   ${socket}  (export LUNKIT_SOCKET=${socket} in the other terminal)`);
    expect(out).toMatch(/manage: +lunkit ls \| lunkit sessions --json \| lunkit top \| lunkit stats/);
    // What users rely on is still there.
    expect(out).toContain(`file:      ${fuseDir}/demo`);
    const url = /URL:\s+(iscsi:\/\/\S+)/.exec(out)![1];
    const nbdUrl = /NBD:\s+nbd:\/\/([\d.]+):(\d+)\/demo/.exec(out)!;

    const ls = await lunkit(env, 'ls');
    expect(ls.stdout).toContain('iqn.2026-11.io.lunkit:demo');
    expect(ls.stdout).toMatch(/o- ram0 .*\[64M\]/);
    expect(ls.stdout).toMatch(/o- demo .*\[ram0 "lunkit demo ramdisk"\]/);
    expect(ls.stdout).toContain(`o- ${fuseDir} `);

    // An iSCSI session (iscsi-perf reads for up to 30 s) and an NBD client on the export.
    perf = spawn('iscsi-perf', ['-i', INITIATOR, '-t', '30', url], { stdio: 'ignore' });
    nbd = await nbdClient(nbdUrl[1], Number(nbdUrl[2]), 'demo');
    const sessions = await until('both sessions in lunkit sessions --json', async () => {
      const list = JSON.parse((await lunkit(env, 'sessions', '--json')).stdout) as { sessions: Array<Record<string, unknown>> };
      const iscsi = list.sessions.find((s) => s.fabric === 'iscsi' && s.initiator === INITIATOR);
      const client = list.sessions.find((s) => s.fabric === 'nbd' && s.export === 'demo');
      return iscsi && client ? { iscsi, client } : undefined;
    });
    expect(sessions.iscsi).toMatchObject({ target: 'iqn.2026-11.io.lunkit:demo', tpg: 1, type: 'normal' });
    expect(sessions.client.address).toMatch(/^127\.0\.0\.1:\d+$/);

    // The snapshot `lunkit top` draws: reads counted on ram0, the export with its connection, the FUSE file.
    const c = await ControlClient.connect(socket);
    try {
      const snap = await until('reads on ram0', async () => {
        const s = await c.call<StatsSnapshot>('stats.snapshot');
        return (s.core.luns.find((l) => l.name === 'ram0')?.readBytes ?? 0) > 0 ? s : undefined;
      });
      expect(snap.exports?.nbd).toEqual([{ name: 'demo', backstore: 'ram0', readOnly: false, connections: [expect.objectContaining({ remote: sessions.client.address, tls: false })] }]);
      expect(snap.exports?.fuse).toEqual([{ mountpoint: fuseDir, mounted: true, files: [{ path: `${fuseDir}/demo`, backstore: 'ram0', readOnly: false }] }]);
    } finally {
      c.close();
    }
    const stats = await lunkit(env, 'stats');
    expect(stats.stdout).toMatch(/ram0\s+ramdisk\s+64\.0MiB\s+iqn\.2026-11\.io\.lunkit:demo\/0/);

    // A second demo on the same socket: refused before binding anything, with the way out.
    const second = await run(process.execPath, [LUNKIT_BIN, 'demo', '--port', '0', '--nbd-port', '0', '--no-fuse'], { env, timeout: 15_000 }).then(
      () => undefined,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(second?.code).toBe(1);
    expect(second?.stderr).toContain(`a lunkit daemon already runs on ${socket}`);
    expect(second?.stderr).toContain('lunkit demo --socket');
    // ... and the first one is untouched.
    expect((await lunkit(env, 'ls')).stdout).toContain('iqn.2026-11.io.lunkit:demo');

    perf.kill('SIGTERM');
    nbd.destroy();
    const code = await demo.stop();
    demo = undefined;
    expect(code).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(await readFile('/proc/self/mounts', 'utf8')).not.toContain(fuseDir);
  });
});

// The socket choice (startDemoDaemon), in process: a run as a user without
// /run/lunkit cannot be staged portably (the checkout may not be readable by
// another user), so the start is faked and the errors are the real ones.
describe('lunkit demo: which control socket', () => {
  const eacces = (): Error => Object.assign(new Error("EACCES: permission denied, mkdir '/run/lunkit'"), { code: 'EACCES' });
  const fakeDaemon = {} as LunkitDaemon;

  it('falls back to the per-user socket when the default one may not be created', async () => {
    const tried: string[] = [];
    const got = await startDemoDaemon(DEFAULT_SOCKET_PATH, false, silentLogger, (o) => {
      tried.push(o.socketPath);
      return o.socketPath === DEFAULT_SOCKET_PATH ? Promise.reject(eacces()) : Promise.resolve(fakeDaemon);
    });
    expect(got).toBe(fakeDaemon);
    expect(tried).toEqual([DEFAULT_SOCKET_PATH, userSocketPath()]);
  });

  it('keeps a socket the user chose (--socket or LUNKIT_SOCKET): the error stands', async () => {
    await expect(startDemoDaemon('/x/lunkit.sock', true, silentLogger, () => Promise.reject(eacces()))).rejects.toThrow(/EACCES/);
  });

  it('a socket a live daemon holds ends the demo with what to do', async () => {
    const inUse = new LunkitError('ERR_CONTROL_SOCKET_IN_USE', 'another lunkit daemon is listening');
    const e = await startDemoDaemon(DEFAULT_SOCKET_PATH, false, silentLogger, () => Promise.reject(inUse)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LunkitError);
    expect((e as LunkitError).code).toBe('ERR_CONTROL_SOCKET_IN_USE');
    expect((e as Error).message).toMatch(/already runs on \/run\/lunkit\/lunkit\.sock.*lunkit demo --socket .*LUNKIT_SOCKET=/);
  });

  it('the per-user socket: under XDG_RUNTIME_DIR, else /tmp/lunkit-UID', () => {
    expect(userSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe('/run/user/1000/lunkit/lunkit.sock');
    expect(userSocketPath({}, 1000)).toBe(join(tmpdir(), 'lunkit-1000', 'lunkit.sock'));
  });
});
