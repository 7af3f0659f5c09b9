// The qcow2 backstore type as the rest of lunkit sees it through the
// registry: its config schema (cluster size, backing format), a new image
// created on open (and only when asked), and the targetcli export naming the
// type LIO cannot hold.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackstoreConfigSchema, openBackstore } from '../../../src/backstores/registry.js';
import { exportTargetcli } from '../../../src/daemon/targetcli/to-targetcli.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-qcow2-type-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('qcow2 backstore config', () => {
  it('fills the defaults', () => {
    expect(BackstoreConfigSchema.parse({ type: 'qcow2', path: '/srv/a.qcow2' })).toEqual({
      type: 'qcow2',
      path: '/srv/a.qcow2',
      create: false,
      blockSize: 512,
      writeCache: true,
      readOnly: false,
      removable: false,
    });
    expect(BackstoreConfigSchema.parse({ type: 'qcow2', path: '/a', create: true, size: '1G', clusterSize: '4K', backing: 'b.raw', backingFormat: 'raw' })).toMatchObject({
      size: 1024 ** 3,
      clusterSize: 4096,
    });
  });

  it.each([
    [{ type: 'qcow2', path: '/a', clusterSize: '3K' }, /power of two from 512 to 2M/],
    [{ type: 'qcow2', path: '/a', clusterSize: '4M' }, /power of two from 512 to 2M/],
    [{ type: 'qcow2', path: '/a', backingFormat: 'vmdk' }, /raw|qcow2/],
    [{ type: 'qcow2', path: '' }, /too_small|at least 1|>=1/i],
  ])('refuses %j', (raw, re) => {
    const r = BackstoreConfigSchema.safeParse(raw);
    expect(r.success).toBe(false);
    if (!r.success) expect(r.error.issues.map((i) => i.message).join('; ')).toMatch(re);
  });

  it('creates the image on open only with create: true, and opens an existing one as it is', async () => {
    const img = path.join(dir, 'n.qcow2');
    await expect(openBackstore('n', BackstoreConfigSchema.parse({ type: 'qcow2', path: img }))).rejects.toThrow();
    const ops = await openBackstore('n', BackstoreConfigSchema.parse({ type: 'qcow2', path: img, create: true, size: '2M' }));
    try {
      expect([ops.kind, ops.size]).toEqual(['qcow2', 2 * 1024 * 1024]);
    } finally {
      await ops.close();
    }
    // create: true on an existing image opens it; the size given does not change it.
    const again = await openBackstore('n', BackstoreConfigSchema.parse({ type: 'qcow2', path: img, create: true, size: '8M' }));
    try {
      expect(again.size).toBe(2 * 1024 * 1024);
    } finally {
      await again.close();
    }
  });

  it('the targetcli export names the type LIO cannot hold', () => {
    const { doc, unsupported } = exportTargetcli({ backstores: { vm: { type: 'qcow2', path: '/srv/vm.qcow2' } } });
    expect(doc.storage_objects).toEqual([]);
    expect(unsupported[0]).toMatch(/backstores\.vm \(qcow2 \/srv\/vm\.qcow2\): LIO has no qcow2 backstore/);
  });
});
