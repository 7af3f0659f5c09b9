// LunkitRuntime.apply on a live runtime: objects added, changed and removed
// while serving, seen by real initiators (iscsi-ls, nbdinfo), and a failed
// apply leaving the running state as it was.

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import type { LunkitConfig } from '../../../src/daemon/config-schema.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { ControlError } from '../../../src/daemon/errors.js';
import { runTool } from '../../helpers/iscsi-target.js';

const IQN = 'iqn.2026-11.io.lunkit.test:apply';
let dir: string;
let rt: LunkitRuntime;
let blocker: Server;
let blockedPort: number;

interface Spec {
  backstores: Record<string, unknown>;
  luns: Record<string, string>;
  serial?: string;
  extraTarget?: boolean;
  nbd?: Record<string, string>;
}

function cfg(s: Spec): LunkitConfig {
  return parseConfig({
    backstores: s.backstores,
    iscsi: {
      targets: {
        [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: s.luns, attributes: { generateNodeAcls: true } } } },
        ...(s.extraTarget ? { 'iqn.2026-11.io.lunkit.test:blocked': { tpgs: { '1': { portals: [`127.0.0.1:${blockedPort}`], luns: { '0': 'r0' } } } } } : {}),
      },
    },
    ...(s.nbd ? { nbd: { listen: ['127.0.0.1:0'], exports: Object.fromEntries(Object.entries(s.nbd).map(([k, v]) => [k, { backstore: v }])) } } : {}),
  });
}

const R0 = { type: 'ramdisk', size: '8M' };
const R1 = { type: 'ramdisk', size: '4M' };

function url(): string {
  const a = rt.iscsi.targetAddresses(IQN)[0];
  return `iscsi://127.0.0.1:${a.port}`;
}

async function lsLuns(): Promise<string> {
  const r = await runTool('iscsi-ls', ['-s', url()]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-apply-'));
  blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  blockedPort = (blocker.address() as { port: number }).port;
  rt = await LunkitRuntime.start(cfg({ backstores: { r0: R0 }, luns: { '0': 'r0' } }));
});

afterAll(async () => {
  await rt?.stop(0);
  await new Promise<void>((r) => blocker.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

describe('LunkitRuntime.apply', () => {
  it('adds a backstore and a LUN while serving', async () => {
    expect(await lsLuns()).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:7M\)/);
    await rt.apply(cfg({ backstores: { r0: R0, r1: R1 }, luns: { '0': 'r0', '1': 'r1' } }));
    expect(rt.backstores.has('r1')).toBe(true);
    const out = await lsLuns();
    expect(out).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:7M\)/);
    expect(out).toMatch(/Lun:1\s+Type:DIRECT_ACCESS \(Size:3M\)/);
  });

  it('resizes a backstore in place', async () => {
    const ops = rt.backstores.get('r0')!.ops;
    await rt.apply(cfg({ backstores: { r0: { type: 'ramdisk', size: '16M' }, r1: R1 }, luns: { '0': 'r0', '1': 'r1' } }));
    expect(rt.backstores.get('r0')!.ops).toBe(ops);
    expect(ops.size).toBe(16 * 1024 * 1024);
    expect(await lsLuns()).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:15M\)/);
  });

  it('keeps a ramdisk (and its data) when only its device identity changes', async () => {
    const before = rt.backstores.get('r0')!;
    const data = Buffer.alloc(512, 0xab);
    await before.ops.write(data, 0);
    await rt.apply(cfg({ backstores: { r0: { type: 'ramdisk', size: '16M', serial: 'SER123' }, r1: R1 }, luns: { '0': 'r0', '1': 'r1' } }));
    const after = rt.backstores.get('r0')!;
    expect(after.ops).toBe(before.ops);
    expect(after.device).not.toBe(before.device);
    const back = Buffer.alloc(512);
    await after.ops.read(back, 0);
    expect(back).toEqual(data);
    const inq = await runTool('iscsi-inq', ['-e', '1', '-c', '128', `${url()}/${IQN}/0`]);
    expect(inq.stdout).toContain('SER123');
  });

  it('rolls everything back when a portal cannot bind, new files included', async () => {
    const prev = rt.config;
    const prevStores = rt.backstores;
    const file = join(dir, 'new.img');
    const next = cfg({
      backstores: { r0: { type: 'ramdisk', size: '16M', serial: 'SER123' }, r1: R1, f: { type: 'file', path: file, size: '1M' } },
      luns: { '0': 'r0', '1': 'r1', '2': 'f' },
      extraTarget: true,
    });
    const err = await rt.apply(next).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).code).toBe('ERR_APPLY_FAILED');
    expect((err as ControlError).message).toMatch(/EADDRINUSE/);
    expect(rt.config).toBe(prev);
    expect(rt.backstores).toBe(prevStores);
    await expect(stat(file)).rejects.toThrow();
    const out = await lsLuns();
    expect(out).toMatch(/Lun:1/);
    expect(out).not.toMatch(/Lun:2/);
  });

  it('starts an NBD server when an nbd section appears, edits its exports, stops it when it goes', async () => {
    await rt.apply(cfg({ backstores: { r0: R0, r1: R1 }, luns: { '0': 'r0', '1': 'r1' }, nbd: { disk: 'r1' } }));
    const port = rt.nbdAddresses()[0].port;
    let r = await runTool('nbdinfo', ['--list', `nbd://127.0.0.1:${port}`]);
    expect(r.stdout).toContain('export="disk"');
    await rt.apply(cfg({ backstores: { r0: R0, r1: R1 }, luns: { '0': 'r0', '1': 'r1' }, nbd: { other: 'r0' } }));
    expect(rt.nbd!.exportNames()).toEqual(['other']);
    expect(rt.nbdAddresses()[0].port).toBe(port);
    r = await runTool('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/other`]);
    expect(r.stdout.trim()).toBe(String(8 * 1024 * 1024));
    await rt.apply(cfg({ backstores: { r0: R0, r1: R1 }, luns: { '0': 'r0', '1': 'r1' } }));
    expect(rt.nbd).toBeUndefined();
  });

  it('removes a LUN, then closes its backstore', async () => {
    const r1 = rt.backstores.get('r1')!;
    await rt.apply(cfg({ backstores: { r0: R0 }, luns: { '0': 'r0' } }));
    expect(rt.backstores.has('r1')).toBe(false);
    expect([...rt.core.devices()].some((d) => d === r1.device)).toBe(false);
    expect(await lsLuns()).not.toMatch(/Lun:1/);
  });

  it('start() is all or nothing', async () => {
    const bad = parseConfig({ backstores: { f: { type: 'file', path: join(dir, 'no', 'such', 'dir', 'x.img'), size: '1M' } } });
    await expect(LunkitRuntime.start(bad)).rejects.toThrow(/opening backstore "f"/);
  });
});
