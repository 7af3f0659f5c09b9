// `lunkit daemon` under a fake systemd: NOTIFY_SOCKET is a Unix datagram
// socket this test owns. READY=1 must come from the daemon's own PID only
// once every portal (two iSCSI, one NBD) accepts connections, STOPPING=1 when
// SIGTERM starts the shutdown and before the process exits; a start that
// fails sends no READY=1, a STATUS that says why, and exits 1.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { freePort, runCli } from '../../helpers/daemon-process.js';
import { startLunkit } from '../../helpers/lunkit-process.js';
import { startFakeNotifySocket, type FakeNotifySocket } from '../../helpers/notify-socket.js';

const IQN = 'iqn.2026-12.io.lunkit.test:systemd';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function setup(): Promise<{ dir: string; notify: FakeNotifySocket; file: string; ports: number[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-systemd-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const notify = await startFakeNotifySocket();
  cleanups.push(() => notify.close());
  const ports = [await freePort(), await freePort(), await freePort()];
  const config = {
    backstores: { rd: { type: 'ramdisk', size: '1M' } },
    iscsi: {
      targets: {
        [IQN]: { tpgs: { '1': { portals: [`127.0.0.1:${ports[0]}`, `127.0.0.1:${ports[1]}`], luns: { '0': 'rd' }, attributes: { generateNodeAcls: true } } } },
      },
    },
    nbd: { listen: [`127.0.0.1:${ports[2]}`], exports: { rd: { backstore: 'rd' } } },
  };
  const file = join(dir, 'lunkit.json');
  await writeFile(file, JSON.stringify(config));
  return { dir, notify, file, ports };
}

describe('lunkit daemon with NOTIFY_SOCKET', () => {
  it('sends READY=1 once every portal listens and STOPPING=1 on SIGTERM, from its own PID', async () => {
    const { dir, notify, file, ports } = await setup();
    const env = { ...process.env, NOTIFY_SOCKET: notify.path };
    const d = await startLunkit(['daemon', '--socket', join(dir, 's.sock'), '--config', file, '--log-level', 'warn'], { dir, env });
    cleanups.push(async () => {
      await d.stop();
    });
    const ready = await notify.waitFor(/^READY=1$/m);
    // What READY=1 promises: every portal takes connections now.
    for (const p of ports) expect(await accepts(p), `port ${p} accepts at READY=1`).toBe(true);
    expect(ready.pid).toBe(d.child.pid);
    expect(ready.text).toMatch(new RegExp(`^MAINPID=${d.child.pid}$`, 'm'));
    expect(ready.text).toMatch(/^STATUS=serving: 3 portal\(s\) listening/m);

    const code = await d.stop();
    expect({ code, signal: d.child.signalCode, stderr: d.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
    const stopping = await notify.waitFor(/^STOPPING=1$/m, 5_000);
    expect(stopping.pid).toBe(d.child.pid);
    // Nothing before READY=1 claimed readiness or stopping, and STOPPING=1 came after it.
    const order = notify.messages.map((m) => (/^READY=1$/m.test(m.text) ? 'READY' : /^STOPPING=1$/m.test(m.text) ? 'STOPPING' : 'other'));
    expect(order.filter((o) => o !== 'other')).toEqual(['READY', 'STOPPING']);
    expect(d.stderr()).not.toMatch(/notification not delivered|NOTIFY_SOCKET/);
  });

  it('does not send READY=1 when the start fails, says why and exits 1', async () => {
    const { dir, notify, file, ports } = await setup();
    // Take one of the iSCSI portal ports so the configuration cannot be applied.
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(ports[1], '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const r = await runCli(undefined, ['daemon', '--socket', join(dir, 's.sock'), '--config', file, '--log-level', 'warn'], {
      cwd: dir,
      env: { NOTIFY_SOCKET: notify.path },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EADDRINUSE|in use/i);
    const status = await notify.waitFor(/^STATUS=failed to start: /m, 5_000);
    expect(status.text).toMatch(new RegExp(String(ports[1])));
    expect(notify.messages.some((m) => /^READY=1$/m.test(m.text))).toBe(false);
  });
});
