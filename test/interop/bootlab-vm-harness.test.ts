// The boot lab's harness proven with a stand-in for the boot lab itself
// (issue 15): scripts/bootlab-golden.sh builds the golden image, a qcow2
// overlay of it is served by a plain `lunkit serve` inside a private network
// namespace, dnsmasq hands out addresses AND the boot file (in the real test
// lunkit's proxy DHCP does the latter), a tiny HTTP server serves the iPXE
// script, and a diskless QEMU guest PXE-boots, sanboots the LUN and runs Linux
// from it with its root found through the iBFT. Booted twice: the second boot
// sees the file the first one wrote into the overlay.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLabNet, guestLines, startGuest, stopChild, type LabNet, type LabProcess } from '../helpers/bootlab-vm.js';
import { LUNKIT_BIN, ROOT } from '../helpers/lunkit-process.js';

const run = promisify(execFile);
const TARGET = 'iqn.2026-12.org.lunkit.test:boot';
const INITIATOR = 'iqn.2026-12.org.lunkit.test:pc01';
const LABEL = 'harness-golden-1';
const MAC = '52:54:00:15:00:01';
const HTTP_PORT = 8080;
// A TCG boot here takes well under a minute (see the printed times); the
// margins are for a loaded CI machine, and the whole file stays far inside
// vitest's 900 s.
const BOOT_TIMEOUT_MS = 240_000;

let dir: string;
let net: LabNet | undefined;
let goldenSha = '';
let imageSha = '';
let overlay = '';
// The lab's servers, whose logs are printed when a boot fails.
const servers: Array<{ name: string; proc: LabProcess }> = [];

const sha256File = (path: string): Promise<string> =>
  new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('end', () => res(h.digest('hex')))
      .on('error', rej);
  });

// Serves one directory over HTTP on the lab address; prints "http ready".
const HTTP_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const [dir, host, port] = process.argv.slice(1);
http.createServer((req, res) => {
  const file = path.join(dir, path.basename(decodeURIComponent(req.url.split('?')[0])));
  fs.readFile(file, (err, body) => {
    console.log(req.method, req.url, err ? 404 : 200);
    if (err) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/plain' }); res.end(body);
  });
}).listen(Number(port), host, () => console.log('http ready'));
`;

function waitForText(read: () => string, pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((res, rej) => {
    const tick = (): void => {
      if (pattern.test(read())) return res();
      if (Date.now() > deadline) return rej(new Error(`${what}: no ${pattern} within ${timeoutMs} ms:\n${read()}`));
      setTimeout(tick, 100);
    };
    tick();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-bootlab-'));
  const golden = join(dir, 'golden.img');
  let t = Date.now();
  const built = await run('bash', [join(ROOT, 'scripts', 'bootlab-golden.sh'), golden, '--label', LABEL], { timeout: 600_000 });
  console.log(`bootlab: golden image built in ${((Date.now() - t) / 1000).toFixed(1)} s\n${built.stderr.trim()}`);
  goldenSha = /golden_sha ([0-9a-f]{64})/.exec(built.stderr)?.[1] ?? '';
  expect(goldenSha).toMatch(/^[0-9a-f]{64}$/);
  imageSha = await sha256File(golden);
  overlay = join(dir, 'overlay.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', golden, '-F', 'raw', overlay]);

  t = Date.now();
  net = await createLabNet();
  const lab = net;
  const tap = await lab.addTap('tap0');
  expect(tap).toBe('tap0');

  // The target: a qcow2 backstore on the overlay, portal on the bridge.
  const config = join(dir, 'lunkit.json');
  await writeFile(
    config,
    JSON.stringify({
      backstores: { boot: { type: 'qcow2', path: overlay } },
      iscsi: {
        targets: {
          [TARGET]: { tpgs: { '1': { portals: [`${lab.address}:3260`], luns: { '0': 'boot' }, attributes: { generateNodeAcls: true } } } },
        },
      },
    }),
  );
  const lunkit = lab.start(process.execPath, [LUNKIT_BIN, 'serve', '--config', config, '--log-level', 'info'], { cwd: dir });
  servers.push({ name: 'lunkit serve', proc: lunkit });
  await waitForText(lunkit.output, /^ready$/m, 20_000, 'lunkit serve');

  // The iPXE script, over HTTP from the bridge address.
  const www = join(dir, 'www');
  await run('mkdir', ['-p', www]);
  await writeFile(join(www, 'boot.ipxe'), `#!ipxe\nset initiator-iqn ${INITIATOR}\nsanboot iscsi:${lab.address}::::${TARGET}\n`);
  const http = lab.start(process.execPath, ['-e', HTTP_SERVER, www, lab.address, String(HTTP_PORT)]);
  servers.push({ name: 'http', proc: http });
  await waitForText(http.output, /http ready/, 10_000, 'http server');

  const dnsmasq = await lab.startDnsmasq({ bootFile: `http://${lab.address}:${HTTP_PORT}/boot.ipxe` });
  servers.push({ name: 'dnsmasq', proc: dnsmasq });
  console.log(`bootlab: lab ${lab.ns} (${lab.address}) up in ${((Date.now() - t) / 1000).toFixed(1)} s`);
});

afterAll(async () => {
  await net?.destroy();
  // Safe twice: a second call is a no-op.
  await net?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function bootOnce(n: number, nic: 'virtio-net-pci' | 'e1000'): Promise<{ files: string; seconds: number }> {
  const lab = net!;
  const guest = startGuest(lab, { mac: MAC, tap: 'tap0', nic, timeoutMs: BOOT_TIMEOUT_MS });
  try {
    await guest.waitFor(/LUNKIT-GUEST waiting/, BOOT_TIMEOUT_MS);
    const bootSeconds = guest.elapsedMs() / 1000;
    const lines = guestLines(guest.output());
    const hello = lines.find((l) => 'initiator' in l);
    expect(hello).toEqual({ initiator: INITIATOR, golden: LABEL, golden_sha: goldenSha });
    const files = lines.find((l) => 'files' in l)?.files ?? '';

    // `check` drops the guest's page cache and hashes the golden data again:
    // this time every block comes through the target, overlay and backing file.
    // Both waits start before `check` was sent: the answer and the next
    // prompt may arrive in one chunk.
    const mark = guest.mark();
    guest.send('check');
    const again = await guest.waitFor(/LUNKIT-GUEST golden_sha=([0-9a-f]{64})/, 60_000, mark);
    expect(again[1]).toBe(goldenSha);
    await guest.waitFor(/LUNKIT-GUEST waiting/, 30_000, mark);
    guest.send('off');
    const code = await guest.exited;
    const seconds = guest.elapsedMs() / 1000;
    console.log(`bootlab: boot ${n} (${nic}): console lines at ${bootSeconds.toFixed(1)} s, powered off at ${seconds.toFixed(1)} s (exit ${code})`);
    expect(guest.output()).toMatch(/LUNKIT-GUEST poweroff/);
    expect(code).toBe(0);
    return { files, seconds };
  } catch (e) {
    console.log(`bootlab: boot ${n} console:\n${guest.output().slice(-8000)}`);
    for (const s of servers) console.log(`bootlab: ${s.name} log:\n${s.proc.output().slice(-4000)}`);
    throw e;
  } finally {
    await guest.kill();
  }
}

describe('boot-lab VM harness (stand-in target)', () => {
  it('PXE-boots a diskless guest from a qcow2 overlay twice (virtio, then e1000); the second boot sees the first boot\'s file', async () => {
    const first = await bootOnce(1, 'virtio-net-pci');
    expect(first.files).toBe('none');
    // The same client with the other NIC the golden initramfs has a driver for.
    const second = await bootOnce(2, 'e1000');
    expect(second.files).toBe('boot-1');
    // The guest wrote into the overlay, never into the golden image.
    expect((await stat(overlay)).size).toBeGreaterThan(256 * 1024);
    expect(await sha256File(join(dir, 'golden.img'))).toBe(imageSha);
  });

  it('destroys the lab: namespace gone, no process left', async () => {
    const lab = net!;
    const ns = lab.ns;
    // lunkit first, on its own, so its shutdown time (with the sessions of
    // guests that powered off without logging out) shows in the output.
    const lunkit = servers.find((s) => s.name === 'lunkit serve')!.proc.child;
    const t = Date.now();
    await stopChild(lunkit, 30_000);
    console.log(`bootlab: lunkit serve stopped in ${Date.now() - t} ms (${lunkit.signalCode ?? lunkit.exitCode})`);
    await lab.destroy();
    const list = await run('ip', ['netns', 'list']);
    expect(list.stdout).not.toContain(ns);
    net = undefined;
  });
});
