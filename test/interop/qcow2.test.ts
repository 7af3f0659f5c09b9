// The qcow2 backstore against QEMU's own tools as the oracle (issue 14):
// images made by qemu-img (v2 and v3, small clusters, overlays over raw and
// qcow2 bases, compressed clusters) served over NBD read back exactly what
// QEMU reads from them (`qemu-img compare`); fio writes with verify through
// lunkit leave an image `qemu-img check` finds clean and `qemu-img compare`
// finds identical to what lunkit served; images lunkit creates are accepted
// by `qemu-img check` and `qemu-img info`; iscsi-test-cu ALL against a qcow2
// overlay of a raw file reaches 0 failures.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { LunkitRuntime } from '../../src/daemon/runtime.js';
import { formatCuSummary } from '../../src/tools/cu-report.js';
import { runConformance } from '../../src/tools/conformance.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-qcow2-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function qemuImg(args: string[]): Promise<string> {
  const { stdout } = await run('qemu-img', args, { timeout: 120_000, maxBuffer: 16 << 20 });
  return stdout;
}

async function qemuIo(image: string, fmt: string, cmds: string[]): Promise<void> {
  await run('qemu-io', ['-f', fmt, ...cmds.flatMap((c) => ['-c', c]), image], { timeout: 60_000 });
}

const IQN = 'iqn.2026-12.io.lunkit:qcow2';

/** A served runtime with one NBD export per image, and one iSCSI LUN per image (in the order given). */
async function serve(
  images: Record<string, Record<string, unknown>>,
): Promise<{ rt: LunkitRuntime; url: (name: string) => string; iscsiUrl: (name: string) => string }> {
  const names = Object.keys(images);
  const exportsCfg = Object.fromEntries(names.map((n) => [n, { backstore: n }]));
  const luns = Object.fromEntries(names.map((n, i) => [String(i), n]));
  const rt = await LunkitRuntime.start(
    parseConfig({
      backstores: images,
      nbd: { listen: ['127.0.0.1:0'], exports: exportsCfg },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns, attributes: { generateNodeAcls: true } } } } } },
    }),
  );
  const port = rt.nbdAddresses()[0].port;
  const iscsiPort = rt.addresses()[0].port;
  return { rt, url: (name) => `nbd://127.0.0.1:${port}/${name}`, iscsiUrl: (name) => `iscsi://127.0.0.1:${iscsiPort}/${IQN}/${names.indexOf(name)}` };
}

describe('qcow2 images made by QEMU, served by lunkit', () => {
  it('read back exactly what QEMU reads over NBD and iSCSI: v3, v2, 4K clusters, overlays over raw and qcow2, compressed', async () => {
    const base = join(dir, 'base.raw');
    await qemuImg(['create', '-f', 'raw', base, '64M']);
    await qemuIo(base, 'raw', ['write -P 0x11 0 8M', 'write -P 0x12 20M 3M']);
    const mid = join(dir, 'mid.qcow2');
    await qemuImg(['create', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', mid]);
    await qemuIo(mid, 'qcow2', ['write -P 0x21 4M 6M', 'write -z 21M 1M']);
    const top = join(dir, 'top.qcow2');
    await qemuImg(['create', '-f', 'qcow2', '-b', 'mid.qcow2', '-F', 'qcow2', '-o', 'cluster_size=4096', top]);
    await qemuIo(top, 'qcow2', ['write -P 0x31 5M 12345', 'write -P 0x32 30M 4096']);
    const v2 = join(dir, 'v2.qcow2');
    await qemuImg(['create', '-f', 'qcow2', '-o', 'compat=0.10', v2, '32M']);
    await qemuIo(v2, 'qcow2', ['write -P 0x41 0 1M', 'write -P 0x42 17M 100k']);
    const small = join(dir, 'small.qcow2');
    await qemuImg(['create', '-f', 'qcow2', '-o', 'cluster_size=512', small, '8M']);
    await qemuIo(small, 'qcow2', ['write -P 0x51 1000 70000']);
    const packed = join(dir, 'packed.qcow2');
    await qemuImg(['convert', '-c', '-f', 'qcow2', '-O', 'qcow2', mid, packed]);

    const images = { top, v2, small, packed, mid };
    const { rt, url, iscsiUrl } = await serve(Object.fromEntries(Object.entries(images).map(([n, path]) => [n, { type: 'qcow2', path, readOnly: true }])));
    try {
      for (const [name, path] of Object.entries(images)) {
        expect(await qemuImg(['compare', '-U', '-f', 'qcow2', '-F', 'raw', path, url(name)]), `${name} over NBD`).toMatch(/Images are identical/);
        // QEMU's iSCSI driver (libiscsi) reads the LUN; a new session's first command meets POWER ON, which it retries.
        expect(await qemuImg(['compare', '-U', '-f', 'qcow2', '-F', 'raw', path, iscsiUrl(name)]), `${name} over iSCSI`).toMatch(/Images are identical/);
      }
    } finally {
      await rt.stop(2000);
    }
  }, 300_000);
});

describe('writes through lunkit', () => {
  it('fio random writes with verify over NBD on an overlay: qemu-img check clean, compare identical', async () => {
    const base = join(dir, 'wbase.raw');
    await qemuImg(['create', '-f', 'raw', base, '64M']);
    await qemuIo(base, 'raw', ['write -P 0x77 0 64M']);
    const overlay = join(dir, 'w.qcow2');
    const { rt, url } = await serve({ w: { type: 'qcow2', path: overlay, create: true, backing: 'wbase.raw', backingFormat: 'raw' } });
    const served = join(dir, 'served.raw');
    try {
      await run(
        'fio',
        ['--name=w', '--ioengine=nbd', `--uri=${url('w')}`, '--rw=randwrite', '--bsrange=4k-192k', '--iodepth=16', '--size=48M', '--offset=8M', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1', '--verify_state_save=0', '--randrepeat=0'],
        { timeout: 240_000, maxBuffer: 16 << 20 },
      );
      // What lunkit serves, byte for byte.
      await run('nbdcopy', [url('w'), served], { timeout: 120_000 });
    } finally {
      await rt.stop(5000);
    }
    const check = await run('qemu-img', ['check', '-f', 'qcow2', overlay], { timeout: 60_000 }).catch((e: { stdout?: string; code?: number }) => ({ stdout: `${e.stdout ?? ''} exit ${e.code}` }));
    expect(check.stdout).toMatch(/No errors were found on the image/);
    expect(await qemuImg(['compare', '-f', 'qcow2', '-F', 'raw', overlay, served])).toMatch(/Images are identical/);
    const info = JSON.parse(await qemuImg(['info', '--output=json', overlay])) as { 'virtual-size': number; format: string; 'backing-filename'?: string };
    expect(info).toMatchObject({ 'virtual-size': 64 * MiB, format: 'qcow2', 'backing-filename': 'wbase.raw' });
  }, 300_000);

  it('an image lunkit creates is what qemu-img expects (size, format, cluster size), and QEMU reads what lunkit wrote', async () => {
    const img = join(dir, 'new.qcow2');
    const { rt, url } = await serve({ n: { type: 'qcow2', path: img, create: true, size: '32M', clusterSize: '16K' } });
    try {
      const data = join(dir, 'pattern.raw');
      await writeFile(data, Buffer.alloc(3 * MiB, 0x5c));
      await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', data, url('n')], { timeout: 60_000 });
    } finally {
      await rt.stop(5000);
    }
    expect((await run('qemu-img', ['check', img], { timeout: 60_000 })).stdout).toMatch(/No errors were found/);
    const info = JSON.parse(await qemuImg(['info', '--output=json', img])) as { 'virtual-size': number; format: string; 'cluster-size': number };
    expect(info).toMatchObject({ 'virtual-size': 32 * MiB, format: 'qcow2', 'cluster-size': 16384 });
    await qemuIo(img, 'qcow2', ['read -P 0x5c 0 3M', 'read -P 0 3M 29M']);
  }, 120_000);
});

/**
 * A 512-byte x86 boot sector, assembled by hand: clear DF, DS=0, print the
 * message to COM1 (port 0x3F8) byte by byte, then cli; hlt forever.
 */
function bootSector(message: string): Buffer {
  const code = [0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0xba, 0xf8, 0x03, 0xbe, 0x17, 0x7c, 0xac, 0x08, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xfa, 0xf4, 0xeb, 0xfc];
  const sector = Buffer.alloc(512);
  Buffer.from(code).copy(sector, 0);
  // mov si, 0x7c17: the message follows the 23 bytes of code.
  sector.write(`${message}\r\n\0`, code.length, 'latin1');
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

describe('an image lunkit created boots in QEMU', () => {
  it('SeaBIOS loads the boot sector written through lunkit and runs it', async () => {
    const img = join(dir, 'boot.qcow2');
    const sector = join(dir, 'boot.bin');
    await writeFile(sector, bootSector('LUNKIT-BOOT-OK'));
    const { rt, url } = await serve({ b: { type: 'qcow2', path: img, create: true, size: '16M' } });
    try {
      await run('qemu-io', ['-f', 'raw', '-c', `write -s ${sector} 0 512`, url('b')], { timeout: 30_000 });
    } finally {
      await rt.stop(5000);
    }
    expect((await run('qemu-img', ['check', img], { timeout: 30_000 })).stdout).toMatch(/No errors were found/);
    const qemu = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-m', '32', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-drive', `file=${img},format=qcow2,if=ide`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    try {
      const booted = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 60_000);
        qemu.stdout.on('data', (d: Buffer) => {
          out += d.toString('latin1');
          if (out.includes('LUNKIT-BOOT-OK')) {
            clearTimeout(t);
            resolve(true);
          }
        });
        qemu.once('exit', () => {
          clearTimeout(t);
          resolve(out.includes('LUNKIT-BOOT-OK'));
        });
      });
      expect(booted, out).toBe(true);
    } finally {
      if (qemu.exitCode === null) {
        const exited = new Promise((r) => qemu.once('exit', r));
        qemu.kill('SIGKILL');
        await exited;
      }
    }
  }, 120_000);
});

describe('iscsi-test-cu ALL against a qcow2 overlay of a raw file', () => {
  it('0 failures, the thin file LUN floor (196 real passes)', async () => {
    const cuDir = await mkdtemp(join(dir, 'cu-'));
    await qemuImg(['create', '-f', 'raw', join(cuDir, 'base.raw'), '256M']);
    await qemuIo(join(cuDir, 'base.raw'), 'raw', ['write -P 0xa5 0 16M']);
    const s = await runConformance({
      timeoutMs: 900_000,
      backstore: (d) => ({ type: 'qcow2', path: join(d, 'lun.qcow2'), create: true, size: '256M', backing: 'base.raw', backingFormat: 'raw' }),
      dir: cuDir,
    });
    console.log(formatCuSummary(s));
    // What the suite wrote left a sound image.
    const check = await run('qemu-img', ['check', '-f', 'qcow2', join(cuDir, 'lun.qcow2')], { timeout: 60_000 }).catch((e: { stdout?: string; code?: number }) => ({
      stdout: `${e.stdout ?? ''} exit ${e.code}`,
    }));
    expect(check.stdout).toMatch(/No errors were found/);
    expect(s.results.filter((r) => r.outcome === 'failed').map((r) => `${r.suite}.${r.test}: ${r.reasons.join(' | ')}`)).toEqual([]);
    // The thin file LUN's floor (conformance.test.ts): a qcow2 overlay loses no test.
    expect(s.passed).toBeGreaterThanOrEqual(196);
  }, 900_000);
});
