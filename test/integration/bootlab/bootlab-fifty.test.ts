// Issue 15 acceptance, scale: 50 clients on one 1 GiB golden image, each
// "booted" by an initiator writing 2 MiB through its own LUN 0. Every overlay
// stays under 1% of the golden image, `qemu-img check` finds each clean, and
// `lunkit bootlab status --json` (the real CLI against a daemon process)
// lists all 50 with their sizes. The CLI's refusals are checked here too.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../../src/daemon/control-client.js';
import { IscsiSession, synchronizeCache16, write16 } from '../../../src/initiator/index.js';
import { clientInitiatorIqn, labTargetIqn } from '../../../src/bootlab/names.js';
import { cliOk, freePort, runCli, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';

const run = promisify(execFile);
const GOLDEN = 1024 * 1024 * 1024;
const CLIENTS = 50;
let dir: string;
let d: DaemonProcess;
let iscsiPort: number;

const mac = (i: number): string => `52:54:00:aa:00:${i.toString(16).padStart(2, '0')}`;

async function boot(name: string): Promise<void> {
  const s = await IscsiSession.open({ host: '127.0.0.1', port: iscsiPort, targetName: labTargetIqn('lab50'), initiatorName: clientInitiatorIqn('lab50', name), keepaliveIntervalMs: 0 });
  try {
    const chunk = Buffer.alloc(256 * 1024, name);
    // 2 MiB spread over the disk, as an OS touching its filesystem would.
    for (let i = 0; i < 8; i++) {
      const lba = i * 131072;
      let r = await write16(s, 0, lba, chunk, { blockSize: 512 });
      if (!r.ok && r.sense?.key === 6) r = await write16(s, 0, lba, chunk, { blockSize: 512 });
      if (!r.ok) throw new Error(`${name}: WRITE at ${lba} failed (${r.sense?.keyName})`);
    }
    const f = await synchronizeCache16(s, 0);
    if (!f.ok) throw new Error(`${name}: SYNCHRONIZE CACHE failed`);
  } finally {
    await s.logout();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-bootlab50-'));
  await writeFile(join(dir, 'golden.img'), Buffer.alloc(0));
  await truncate(join(dir, 'golden.img'), GOLDEN);
  d = await startDaemon();
  iscsiPort = await freePort();
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('a boot lab with 50 clients', () => {
  it('refuses bad input from the CLI with a clear message and exit code', async () => {
    await cliOk(d.socket, ['bootlab', 'create', 'lab50', '--golden', join(dir, 'golden.img'), '--listen', '127.0.0.1', '--http-port', String(await freePort()), '--tftp-port', String(await freePort()), '--iscsi-port', String(iscsiPort), '--dir', join(dir, 'ovl')]);
    const bad = await runCli(d.socket, ['bootlab', 'client', 'add', 'lab50', '52:54:00:12:34']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"52:54:00:12:34" is not a MAC address');
    const none = await runCli(d.socket, ['bootlab', 'status', 'nolab', '--json']);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stderr)).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
    const port = await runCli(d.socket, ['bootlab', 'create', 'x', '--golden', join(dir, 'golden.img'), '--listen', '127.0.0.1', '--http-port', '70000']);
    expect(port.code).toBe(2);
  });

  it('registers 50 clients; each boot writes 2 MiB into its own overlay only', async () => {
    await cliOk(d.socket, ['bootlab', 'client', 'add', 'lab50', mac(0), '--name', 'pc00']);
    const c = await ControlClient.connect(d.socket);
    try {
      for (let i = 1; i < CLIENTS; i++) await c.call('bootlab.client.add', { lab: 'lab50', mac: mac(i), name: `pc${String(i).padStart(2, '0')}` });
    } finally {
      c.close();
    }
    const names = Array.from({ length: CLIENTS }, (_, i) => `pc${String(i).padStart(2, '0')}`);
    for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map(boot));

    const out = await cliOk(d.socket, ['bootlab', 'status', 'lab50', '--json']);
    const st = JSON.parse(out) as { lab: { clients: Array<{ name: string; overlay: string; deltaBytes: number; loggedIn: boolean }> } };
    expect(st.lab.clients).toHaveLength(CLIENTS);
    for (const cl of st.lab.clients) {
      expect(cl.loggedIn).toBe(false);
      expect(cl.deltaBytes, cl.name).toBeGreaterThan(2 * 1024 * 1024);
      expect(cl.deltaBytes, cl.name).toBeLessThan(GOLDEN / 100);
    }
    for (const cl of st.lab.clients) {
      const { stdout } = await run('qemu-img', ['check', '--output=json', cl.overlay]);
      const check = JSON.parse(stdout) as { 'check-errors': number; leaks?: number; corruptions?: number };
      expect(check['check-errors'], cl.name).toBe(0);
      expect(check.leaks ?? 0, cl.name).toBe(0);
      expect(check.corruptions ?? 0, cl.name).toBe(0);
    }
    const human = await cliOk(d.socket, ['bootlab', 'status', 'lab50']);
    expect(human).toMatch(/golden .*golden\.img \(current\): 50 clients/);
    const ls = await cliOk(d.socket, ['ls']);
    expect(ls).toMatch(/o- bootlabs \.+ \[Labs: 1\]/);
    expect(ls).toMatch(/o- pc49 \.+ \[52:54:00:aa:00:31, LUN 49\]/);
  }, 300_000);
});
