// backstore.reset, backstore.snapshot and backstore.commit on a running
// daemon's qcow2 backstores (issue 14 "Operations on the running daemon"),
// with QEMU's tools as the oracle: after a reset the image reads as its
// backing file (`qemu-img compare`) and `qemu-img check` is clean; after a
// snapshot `qemu-img info --backing-chain` shows FILE -> old image -> base and
// the data reads unchanged; after a commit the backing file holds what was
// served. An NBD client stays connected through every operation, and a
// session on the LU gets MEDIUM MAY HAVE CHANGED after a reset.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/daemon/control-client.js';
import { LunkitDaemon } from '../../src/daemon/daemon.js';
import { LoopbackFabric, MutableLunMap } from '../../src/fabrics/loopback/index.js';
import { NbdClient } from '../../src/nbd-client/index.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

let dir: string;
let daemon: LunkitDaemon | undefined;
let control: ControlClient | undefined;
const nbd: NbdClient[] = [];

async function qemuImg(args: string[]): Promise<string> {
  const { stdout } = await run('qemu-img', args, { timeout: 60_000, maxBuffer: 16 << 20 });
  return stdout;
}

async function qemuCheck(image: string): Promise<string> {
  const r = await run('qemu-img', ['check', '-U', image], { timeout: 60_000 }).catch((e: { stdout?: string; stderr?: string; code?: number }) => ({
    stdout: `${e.stdout ?? ''}${e.stderr ?? ''} (exit ${e.code})`,
  }));
  return r.stdout;
}

/** The guest content of an image as QEMU reads it. */
async function qemuContent(image: string, format = 'qcow2'): Promise<Buffer> {
  const out = join(dir, `read-${Math.random().toString(36).slice(2)}.raw`);
  await qemuImg(['convert', '-U', '-f', format, '-O', 'raw', image, out]);
  const b = await readFile(out);
  await rm(out);
  return b;
}

async function connectNbd(name: string): Promise<NbdClient> {
  const c = await NbdClient.connect(`nbd+unix:///${name}?socket=${join(dir, 'nbd.sock')}`, { requestTimeoutMs: 60_000 });
  nbd.push(c);
  return c;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-qcow2-live-'));
  for (const [base, fill] of [
    ['base.raw', 0x11],
    ['base2.raw', 0x66],
  ] as const) {
    await qemuImg(['create', '-q', '-f', 'raw', join(dir, base), String(SIZE)]);
    await run('qemu-io', ['-f', 'raw', '-c', `write -P ${fill} 0 ${SIZE}`, join(dir, base)]);
  }
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', '-o', 'cluster_size=4096', join(dir, 'top.qcow2')]);
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', 'base2.raw', '-F', 'raw', join(dir, 'pc.qcow2')]);
  const configFile = join(dir, 'lunkit.json');
  await writeFile(
    configFile,
    JSON.stringify({
      backstores: {
        top: { type: 'qcow2', path: join(dir, 'top.qcow2'), filters: [{ type: 'delay', read: '0ms' }] },
        pc: { type: 'qcow2', path: join(dir, 'pc.qcow2') },
        shared: { type: 'qcow2', path: join(dir, 'shared.qcow2'), create: true, backing: 'base2.raw' },
        solo: { type: 'qcow2', path: join(dir, 'solo.qcow2'), create: true, size: '1M' },
        ro: { type: 'qcow2', path: join(dir, 'top.qcow2'), readOnly: true },
        ram: { type: 'ramdisk', size: '1M' },
      },
      nbd: { listen: [`unix:${join(dir, 'nbd.sock')}`], exports: { top: { backstore: 'top' }, pc: { backstore: 'pc' } } },
    }),
  );
  daemon = await LunkitDaemon.start({ configFile, socketPath: join(dir, 'control.sock') });
  control = await ControlClient.connect(daemon.socketPath);
}, 60_000);

afterAll(async () => {
  for (const c of nbd) c.destroy();
  control?.close();
  await daemon?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

async function refused(method: string, params: Record<string, unknown>): Promise<{ code: string; message: string }> {
  try {
    await control!.call(method, params);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error(`${method} was not refused`);
}

describe('qcow2 backstores on a running daemon', () => {
  it('reset: the top image reads as its backing file again, the LU keeps serving, sessions get MEDIUM MAY HAVE CHANGED', async () => {
    const top = join(dir, 'top.qcow2');
    const c = await connectNbd('top');
    await c.write(Buffer.alloc(MiB, 0x22), MiB);
    await c.write(Buffer.alloc(1000 * 512, 0x23), 3 * MiB + 512, { fua: true });
    await c.flush();
    expect((await qemuContent(top)).subarray(MiB, 2 * MiB).every((b) => b === 0x22)).toBe(true);

    // A SCSI session on the same LU (loopback fabric on the daemon's core).
    const core = daemon!.runtime.core;
    const device = daemon!.runtime.backstores.get('top')!.device;
    const session = new LoopbackFabric(core).connect({ luns: new MutableLunMap().set(0, device) });
    await session.command(0, [0, 0, 0, 0, 0, 0]); // TEST UNIT READY: the POWER ON unit attention
    expect((await session.command(0, [0, 0, 0, 0, 0, 0])).status).toBe(0);

    // Reads keep running through the reset; none fails.
    let stop = false;
    const reads = (async () => {
      let n = 0;
      while (!stop) {
        await c.read((n++ * 65536) % SIZE, 65536);
      }
      return n;
    })();
    const res = await control!.call<Record<string, unknown>>('backstore.reset', { name: 'top' });
    stop = true;
    expect(await reads).toBeGreaterThan(0);
    expect(res).toMatchObject({ name: 'top', path: top, backing: join(dir, 'base.raw') });

    const tur = await session.command(0, [0, 0, 0, 0, 0, 0]);
    expect(tur.status).toBe(2);
    expect(tur.sense![2] & 0x0f).toBe(6); // UNIT ATTENTION
    expect([tur.sense![12], tur.sense![13]]).toEqual([0x28, 0x00]);
    expect((await session.command(0, [0, 0, 0, 0, 0, 0])).status).toBe(0);
    session.close();

    expect(await qemuImg(['compare', '-U', '-f', 'qcow2', '-F', 'raw', top, join(dir, 'base.raw')])).toMatch(/Images are identical/);
    expect(await qemuCheck(top)).toMatch(/No errors were found/);
    const info = JSON.parse(await qemuImg(['info', '-U', '--output=json', top])) as Record<string, unknown>;
    expect(info).toMatchObject({ 'virtual-size': SIZE, 'cluster-size': 4096, 'backing-filename': 'base.raw', 'backing-filename-format': 'raw' });
    // The same connection reads the backing file's data, and writes again.
    expect((await c.read(MiB, MiB)).every((b) => b === 0x11)).toBe(true);
    await c.write(Buffer.alloc(4096, 0x24), 0);
    expect((await c.read(0, 4096)).every((b) => b === 0x24)).toBe(true);
    expect(existsSync(top)).toBe(true);
    expect((await readFile(join(dir, 'lunkit.json'), 'utf8')).includes('.reset-')).toBe(false);
  }, 120_000);

  it('reset is refused for an image without a backing file, a read-only backstore, another type, an unknown name', async () => {
    expect(await refused('backstore.reset', { name: 'solo' })).toMatchObject({ code: 'ERR_INVALID_PARAMS', message: expect.stringMatching(/has no backing file/) as string });
    expect(await refused('backstore.reset', { name: 'ro' })).toMatchObject({ code: 'ERR_INVALID_PARAMS', message: expect.stringMatching(/read-only/) as string });
    expect(await refused('backstore.reset', { name: 'ram' })).toMatchObject({ code: 'ERR_INVALID_PARAMS', message: expect.stringMatching(/qcow2 backstores only/) as string });
    expect(await refused('backstore.commit', { name: 'nope' })).toMatchObject({ code: 'ERR_NOT_FOUND' });
    expect(await refused('backstore.snapshot', { name: 'top', to: 'relative.qcow2' })).toMatchObject({ code: 'ERR_INVALID_PARAMS' });
    expect(await refused('backstore.snapshot', { name: 'top', to: join(dir, 'base.raw') })).toMatchObject({ code: 'ERR_EXISTS' });
  });

  it('snapshot: FILE over the old image over the base, data unchanged, the configuration names FILE', async () => {
    const top = join(dir, 'top.qcow2');
    const snap = join(dir, 'snap.qcow2');
    const c = await connectNbd('top');
    await c.write(Buffer.alloc(MiB, 0x33), 2 * MiB);
    const before = await c.read(0, SIZE);
    const rev = (await control!.call<{ revision: number }>('config.get')).revision;

    const res = await control!.call<Record<string, unknown>>('backstore.snapshot', { name: 'top', to: snap });
    expect(res).toMatchObject({ name: 'top', path: snap, backing: top });
    expect(res.revision).toBe(rev + 1);
    expect((await c.read(0, SIZE)).equals(before)).toBe(true);
    await c.write(Buffer.alloc(MiB, 0x44), 4 * MiB);
    await c.flush();

    const chain = JSON.parse(await qemuImg(['info', '-U', '--backing-chain', '--output=json', snap])) as Array<{ filename: string; format: string }>;
    expect(chain.map((i) => [i.filename, i.format])).toEqual([
      [snap, 'qcow2'],
      [top, 'qcow2'],
      [join(dir, 'base.raw'), 'raw'],
    ]);
    const served = await c.read(0, SIZE);
    expect((await qemuContent(snap)).equals(served)).toBe(true);
    // The old image is frozen: it has the 0x33 written before, not the 0x44 after.
    const old = await qemuContent(top);
    expect(old.equals(before)).toBe(true);
    expect(await qemuCheck(snap)).toMatch(/No errors were found/);
    expect(await qemuCheck(top)).toMatch(/No errors were found/);

    const { config } = await control!.call<{ config: { backstores: Record<string, { path: string; backing?: string }> } }>('config.get');
    expect(config.backstores.top).toMatchObject({ path: snap, backing: top });
    // A later change applies without reopening it: the NBD connection stays.
    await control!.call('backstore.create', { name: 'later', backstore: { type: 'ramdisk', size: '1M' } });
    expect((await c.read(4 * MiB, 4096)).every((b) => b === 0x44)).toBe(true);
  }, 120_000);

  it('commit into a qcow2 backing file: the old image holds what was served, the top is empty again', async () => {
    const top = join(dir, 'top.qcow2');
    const snap = join(dir, 'snap.qcow2');
    // "ro" reads top.qcow2 too: commit would change it under its caches.
    expect(await refused('backstore.commit', { name: 'top' })).toMatchObject({ code: 'ERR_IN_USE', message: expect.stringMatching(/"ro"/) as string });
    await control!.call('backstore.delete', { name: 'ro' });
    const c = await connectNbd('top');
    await c.write(Buffer.alloc(24576, 0x55), 5 * MiB + 4096);
    await c.write(Buffer.alloc(512, 0x56), 7 * MiB + 1024);
    const served = await c.read(0, SIZE);
    const res = await control!.call<Record<string, unknown>>('backstore.commit', { name: 'top' });
    expect(res).toMatchObject({ name: 'top', path: snap, backing: top, backingFormat: 'qcow2' });
    expect((await c.read(0, SIZE)).equals(served)).toBe(true);
    expect((await qemuContent(top)).equals(served)).toBe(true);
    expect(await qemuImg(['compare', '-U', snap, top])).toMatch(/Images are identical/);
    expect(await qemuCheck(top)).toMatch(/No errors were found/);
    expect(await qemuCheck(snap)).toMatch(/No errors were found/);
  }, 120_000);

  it('commit into a raw backing file, with progress; refused while another backstore uses that file', async () => {
    const base2 = join(dir, 'base2.raw');
    const pcImage = join(dir, 'pc.qcow2');
    expect(await refused('backstore.commit', { name: 'pc' })).toMatchObject({ code: 'ERR_IN_USE', message: expect.stringMatching(/"shared"/) as string });
    await control!.call('backstore.delete', { name: 'shared' });

    const c = await connectNbd('pc');
    await c.write(Buffer.alloc(3 * MiB, 0x77), 512 * 3);
    await c.writeZeroes(6 * MiB, 65536 * 2);
    await c.write(Buffer.alloc(512, 0x78), SIZE - 512, { fua: true });
    const served = await c.read(0, SIZE);
    const progress: Array<{ done: number; total: number }> = [];
    const res = await control!.call<Record<string, unknown>>('backstore.commit', { name: 'pc' }, { onProgress: (p) => progress.push({ done: p.done, total: p.total }) });
    expect(res).toMatchObject({ name: 'pc', backing: base2, backingFormat: 'raw' });
    expect(Number(res.bytes)).toBeGreaterThanOrEqual(3 * MiB + 2 * 65536 + 512);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]).toEqual({ done: res.bytes, total: res.bytes });

    expect((await readFile(base2)).equals(served)).toBe(true);
    expect(await qemuImg(['compare', '-U', '-f', 'qcow2', '-F', 'raw', pcImage, base2])).toMatch(/Images are identical/);
    expect(await qemuCheck(pcImage)).toMatch(/No errors were found/);
    expect((await c.read(0, SIZE)).equals(served)).toBe(true);
  }, 120_000);
});
