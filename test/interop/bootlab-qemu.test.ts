// Issue 15 acceptance, the real lab topology: a network namespace with a
// bridge (no route out), Debian's dnsmasq as the site DHCP server handing out
// addresses only, a lunkit daemon in the namespace running a boot lab on the
// bridge address (proxy DHCP + TFTP + HTTP + iSCSI), and diskless QEMU guests
// (TCG, iPXE NIC ROM) that PXE-boot, get their script from lunkit, sanboot
// their own overlay of the golden image and boot Linux with the root on it
// through the iBFT (scripts/bootlab-golden.sh builds the image; its root init
// prints LUNKIT-GUEST lines, writes /persist/boot-N and waits for commands).
//
// Client 1 boots, is checked across a golden swap while logged in, boots again
// and sees its file, is reset and boots the new golden without it; client 2,
// added after the swap, boots the new golden and never sees client 1's file.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientInitiatorIqn } from '../../src/bootlab/names.js';
import { ControlClient } from '../../src/daemon/control-client.js';
import { createLabNet, guestLines, startGuest, stopChild, type GuestLine, type LabNet, type LabProcess } from '../helpers/bootlab-vm.js';
import { LUNKIT_BIN, ROOT } from '../helpers/lunkit-process.js';

const run = promisify(execFile);
const BOOT_TIMEOUT_MS = 240_000;
const MAC1 = '52:54:00:15:01:01';
const MAC2 = '52:54:00:15:01:02';

let dir: string;
let net: LabNet | undefined;
let daemon: LabProcess | undefined;
let control: ControlClient | undefined;
const golden: Record<'v1' | 'v2', { path: string; sha: string }> = { v1: { path: '', sha: '' }, v2: { path: '', sha: '' } };

interface ClientStatus {
  name: string;
  loggedIn: boolean;
  golden: string;
  deltaBytes: number;
}

async function buildGolden(label: 'v1' | 'v2'): Promise<void> {
  const path = join(dir, `golden-${label}.img`);
  const t = Date.now();
  const built = await run('bash', [join(ROOT, 'scripts', 'bootlab-golden.sh'), path, '--label', `lab-${label}`], { timeout: 600_000 });
  const sha = /golden_sha ([0-9a-f]{64})/.exec(built.stderr)?.[1] ?? '';
  expect(sha).toMatch(/^[0-9a-f]{64}$/);
  console.log(`bootlab: golden ${label} built in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  golden[label] = { path, sha };
}

async function status(): Promise<{ clients: ClientStatus[]; services: { http: { requests: number }; proxyDhcp?: Record<string, number> } }> {
  const res = await control!.call<{ lab: { clients: ClientStatus[]; services: { http: { requests: number }; proxyDhcp?: Record<string, number> } } }>('bootlab.status', { name: 'lab' });
  return res.lab;
}

async function waitLoggedOut(name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = (await status()).clients.find((x) => x.name === name)!;
    if (!c.loggedIn) return;
    if (Date.now() > deadline) throw new Error(`${name} still logged in after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Boots a guest until its root init waits for a command; `whileUp` runs then
 * (the guest is logged in); then `check` (page cache dropped, golden data
 * hashed again through the target) and `off`.
 */
async function boot(label: string, mac: string, tap: string, whileUp?: () => Promise<void>): Promise<{ hello: GuestLine; files: string; shaAfter: string }> {
  const guest = startGuest(net!, { mac, tap, timeoutMs: BOOT_TIMEOUT_MS });
  try {
    await guest.waitFor(/LUNKIT-GUEST waiting/, BOOT_TIMEOUT_MS);
    const up = guest.elapsedMs() / 1000;
    const lines = guestLines(guest.output());
    const hello = lines.find((l) => 'initiator' in l)!;
    const files = lines.find((l) => 'files' in l)?.files ?? '';
    await whileUp?.();
    const mark = guest.mark();
    guest.send('check');
    const again = await guest.waitFor(/LUNKIT-GUEST golden_sha=([0-9a-f]{64})/, 60_000, mark);
    await guest.waitFor(/LUNKIT-GUEST waiting/, 30_000, mark);
    guest.send('off');
    expect(await guest.exited).toBe(0);
    console.log(`bootlab: ${label}: root up at ${up.toFixed(1)} s, off at ${(guest.elapsedMs() / 1000).toFixed(1)} s, files=${files}`);
    return { hello, files, shaAfter: again[1] };
  } catch (e) {
    console.log(`bootlab: ${label} console:\n${guest.output().slice(-8000)}`);
    console.log(`bootlab: daemon log:\n${daemon?.output().slice(-6000)}`);
    throw e;
  } finally {
    await guest.kill();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-bootlab-qemu-'));
  await buildGolden('v1');
  await buildGolden('v2');
  expect(golden.v1.sha).not.toBe(golden.v2.sha);
  net = await createLabNet();
  await net.addTap('tap0');
  await net.addTap('tap1');
  // The site's DHCP server: addresses only, no boot options.
  await net.startDnsmasq();
  const sock = join(dir, 'lunkit.sock');
  daemon = net.start(process.execPath, [LUNKIT_BIN, 'daemon', '--socket', sock, '--log-level', 'info']);
  const deadline = Date.now() + 20_000;
  while (!/^ready$/m.test(daemon.output())) {
    if (Date.now() > deadline) throw new Error(`lunkit daemon did not start:\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  control = await ControlClient.connect(sock);
  await control.call('bootlab.create', { name: 'lab', golden: golden.v1.path, listen: net.address, proxyDhcp: net.bridge, dir: join(dir, 'overlays') });
  await control.call('bootlab.client.add', { lab: 'lab', mac: MAC1, name: 'pc01' });
}, 900_000);

afterAll(async () => {
  control?.close();
  if (daemon) await stopChild(daemon.child, 30_000);
  await net?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('boot lab with real PXE guests', () => {
  it('client 1 boots its overlay through proxy DHCP, HTTP and iSCSI; a golden swap while it runs does not disturb it', async () => {
    const first = await boot('pc01 boot 1', MAC1, 'tap0', async () => {
      expect((await status()).clients[0].loggedIn).toBe(true);
      const swap = await control!.call<{ stillOnPrevious: string[] }>('bootlab.golden', { name: 'lab', path: golden.v2.path });
      expect(swap.stillOnPrevious).toEqual(['pc01']);
    });
    expect(first.hello).toEqual({ initiator: clientInitiatorIqn('lab', 'pc01'), golden: 'lab-v1', golden_sha: golden.v1.sha });
    expect(first.files).toBe('none');
    // Read again through the target after the swap: still the old golden.
    expect(first.shaAfter).toBe(golden.v1.sha);
    // dnsmasq gave no boot file: lunkit's proxy DHCP and HTTP did the telling.
    const st = await status();
    expect(st.services.proxyDhcp?.offers ?? 0).toBeGreaterThan(0);
    expect(st.services.http.requests).toBeGreaterThanOrEqual(2);
  });

  it('a second boot of client 1 sees its file (still on the old golden image)', async () => {
    const second = await boot('pc01 boot 2', MAC1, 'tap0');
    expect(second.hello.golden).toBe('lab-v1');
    expect(second.files).toBe('boot-1');
  });

  it('client 2, added after the swap, boots the new golden image and never sees client 1\'s file', async () => {
    await control!.call('bootlab.client.add', { lab: 'lab', mac: MAC2, name: 'pc02' });
    const b = await boot('pc02 boot 1', MAC2, 'tap1');
    expect(b.hello).toEqual({ initiator: clientInitiatorIqn('lab', 'pc02'), golden: 'lab-v2', golden_sha: golden.v2.sha });
    expect(b.files).toBe('none');
  });

  it('after client reset, client 1 boots the new golden image and its file is gone', async () => {
    // A powered-off guest never logged out: its session ends at the target's NOP-In timeout.
    await waitLoggedOut('pc01', 120_000);
    await control!.call('bootlab.client.reset', { lab: 'lab', client: 'pc01' });
    const b = await boot('pc01 after reset', MAC1, 'tap0');
    expect(b.hello.golden).toBe('lab-v2');
    expect(b.files).toBe('none');
    const st = await status();
    for (const c of st.clients) expect(c.golden).toBe(golden.v2.path);
  });

  it('nothing is left: the daemon stops, the namespace goes', async () => {
    const ns = net!.ns;
    control?.close();
    control = undefined;
    await stopChild(daemon!.child, 30_000);
    daemon = undefined;
    await net!.destroy();
    net = undefined;
    expect((await run('ip', ['netns', 'list'])).stdout).not.toContain(ns);
  });
});
