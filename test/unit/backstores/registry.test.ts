// Every registered backstore type, opened for real: its caps and its optional
// methods agree (canUnmap <=> unmap, canWriteZeroes <=> writeZeroes,
// canExtents <=> extents), canMultiConn is declared, and the descriptor is
// complete (schema with its type literal, CLI, targetcli mapping or the reason
// LIO cannot hold it). The remote types (nbd, iscsi) open against an
// in-process lunkit on 127.0.0.1 serving ramdisks (writable and read-only).
// A type added to the registry without a fixture here fails the first test.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capsDisagreements } from '../../../src/backstores/caps.js';
import { BACKSTORE_DESCRIPTORS, BackstoreConfigSchema, openBackstore } from '../../../src/backstores/registry.js';
import type { BackstoreOps } from '../../../src/core/types.js';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';

const IQN = 'iqn.2024-01.org.lunkit.test:registry';
let rt: LunkitRuntime;
let dir: string;
let iscsiBase: string;
let nbdBase: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-registry-'));
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { disk: { type: 'ramdisk', size: '4M' }, ro: { type: 'ramdisk', size: '4M', readOnly: true } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'disk', '1': 'ro' }, attributes: { generateNodeAcls: true } } } } } },
      nbd: { listen: ['127.0.0.1:0'], exports: { disk: { backstore: 'disk' }, ro: { backstore: 'ro', readOnly: true } } },
    }),
  );
  iscsiBase = `iscsi://127.0.0.1:${rt.addresses()[0].port}/${IQN}`;
  nbdBase = `nbd://127.0.0.1:${rt.nbdAddresses()[0].port}`;
}, 30_000);

afterAll(async () => {
  await rt?.stop(0);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Configurations (config-file form) that open each type in the ways its caps differ. */
function fixtures(): Record<string, Array<Record<string, unknown>>> {
  return {
    file: [
      { type: 'file', path: path.join(dir, 'rw.img'), size: '1M' },
      { type: 'file', path: path.join(dir, 'thick.img'), size: '1M', thin: false },
      { type: 'file', path: path.join(dir, 'rw.img'), readOnly: true },
    ],
    ramdisk: [{ type: 'ramdisk', size: '1M' }],
    null: [{ type: 'null', size: '1M' }],
    nbd: [
      { type: 'nbd', url: `${nbdBase}/disk`, retries: 0 },
      { type: 'nbd', url: `${nbdBase}/ro`, retries: 0 },
      { type: 'nbd', url: `${nbdBase}/disk`, readOnly: true, retries: 0 },
    ],
    iscsi: [
      { type: 'iscsi', url: `${iscsiBase}/0` },
      { type: 'iscsi', url: `${iscsiBase}/1` },
      { type: 'iscsi', url: `${iscsiBase}/0`, readOnly: true, connections: 2, erl: 1 },
    ],
    qcow2: [
      { type: 'qcow2', path: path.join(dir, 'base.qcow2'), create: true, size: '1M' },
      { type: 'qcow2', path: path.join(dir, 'overlay.qcow2'), create: true, size: '1M', clusterSize: '4K', backing: 'rw.img', backingFormat: 'raw' },
      { type: 'qcow2', path: path.join(dir, 'base.qcow2'), readOnly: true },
    ],
  };
}

describe('backstore registry', () => {
  it('has a fixture for every registered type, and complete descriptors', () => {
    expect(Object.keys(fixtures()).sort()).toEqual(BACKSTORE_DESCRIPTORS.map((d) => d.type).sort());
    for (const d of BACKSTORE_DESCRIPTORS) {
      expect(d.schema.shape.type.value, d.type).toBe(d.type);
      expect(d.cli.options.length, d.type).toBeGreaterThan(0);
      for (const o of d.cli.options) expect(o.key, `${d.type} --${o.flag}`).toBe(o.flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase()));
      // Either LIO holds it (an export) or the export says why not.
      expect(d.targetcli.toLio !== undefined || d.targetcli.notInLio !== undefined, d.type).toBe(true);
      for (const k of d.reopenOn) expect(Object.keys(d.schema.shape), `${d.type}.reopenOn ${k}`).toContain(k);
    }
  });

  for (const d of BACKSTORE_DESCRIPTORS) {
    it(`${d.type}: caps and optional methods agree; canMultiConn declared`, async () => {
      for (const raw of fixtures()[d.type] ?? []) {
        const cfg = BackstoreConfigSchema.parse(raw);
        let ops: BackstoreOps | undefined;
        try {
          ops = await openBackstore(`t-${d.type}`, cfg);
          expect(ops.kind).toBe(d.type);
          expect(typeof ops.caps.canMultiConn, JSON.stringify(raw)).toBe('boolean');
          expect(capsDisagreements(ops), JSON.stringify({ raw, caps: ops.caps })).toEqual([]);
          // A read-only backstore offers nothing that changes data.
          if (!ops.caps.canWrite) expect([ops.caps.canUnmap, ops.caps.canWriteZeroes, ops.unmap, ops.writeZeroes]).toEqual([false, false, undefined, undefined]);
        } finally {
          await ops?.close();
        }
      }
    }, 30_000);
  }

  it('capsDisagreements sees both directions', () => {
    const caps = { canUnmap: true, canWriteZeroes: false, canExtents: false };
    const fake = { caps, writeZeroes: () => Promise.resolve() } as unknown as BackstoreOps;
    expect(capsDisagreements(fake)).toEqual(['canUnmap but no unmap()', 'writeZeroes() without canWriteZeroes']);
  });

  it('the read-only and writable variants really differ (the fixtures exercise both sides)', async () => {
    const open = async (raw: Record<string, unknown>): Promise<BackstoreOps> => openBackstore('t', BackstoreConfigSchema.parse(raw));
    const rw = await open({ type: 'iscsi', url: `${iscsiBase}/0` });
    const ro = await open({ type: 'iscsi', url: `${iscsiBase}/1` });
    try {
      expect([rw.caps.canWrite, rw.caps.canUnmap, typeof rw.unmap]).toEqual([true, true, 'function']);
      expect([ro.caps.canWrite, ro.caps.canUnmap, ro.unmap]).toEqual([false, false, undefined]);
      expect([rw.caps.canMultiConn, ro.caps.canMultiConn]).toEqual([true, true]);
    } finally {
      await rw.close();
      await ro.close();
    }
  }, 30_000);
});
