// createQcow2: images QEMU accepts (check, info), usable by the engine and by QEMU.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Backstore, createQcow2 } from '../../../src/backstores/qcow2/index.js';
import { check, pattern, qemuImg, qemuIo, qemuRead, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Info {
  'virtual-size': number;
  format: string;
  'cluster-size': number;
  'backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { data?: { compat?: string } };
}

const info = (f: string): Info => JSON.parse(qemuImg('info', '--output=json', f)) as Info;

function expectClean(f: string): void {
  const c = check(f);
  expect(c.corruptions).toBe(0);
  expect(c.leaks).toBe(0);
  expect(c.status).toBe(0);
}

describe('createQcow2', () => {
  for (const compat of ['0.10', '1.1'] as const) {
    for (const clusterSize of [512, 4096, 65536, 2 << 20]) {
      it(`compat ${compat}, cluster ${clusterSize}: qemu-img check clean, info right, writable by both`, async () => {
        const f = path.join(dir, `c-${compat}-${clusterSize}.qcow2`);
        const size = clusterSize === 512 ? 64 << 20 : 10 * 2 ** 30;
        await createQcow2({ path: f, size, clusterSize, compat });
        expectClean(f);
        const i = info(f);
        expect(i).toMatchObject({ 'virtual-size': size, format: 'qcow2', 'cluster-size': clusterSize });
        expect(i['format-specific']?.data?.compat).toBe(compat);
        qemuIo(f, 'write -P 0x42 1M 64k');
        const s = await Qcow2Backstore.open({ name: 't', path: f });
        await s.write(Buffer.alloc(4096, 0x43), 5 << 20);
        const b = Buffer.alloc(65536);
        await s.read(b, 1 << 20);
        expect(b.every((x) => x === 0x42)).toBe(true);
        await s.close();
        expectClean(f);
        qemuIo(f, 'read -P 0x43 5M 4k');
      });
    }
  }

  it('large L1 with small clusters needs several refcount blocks', async () => {
    const f = path.join(dir, 'big-l1.qcow2');
    await createQcow2({ path: f, size: 64 * 2 ** 30, clusterSize: 512 }); // L1: 2M entries = 32768 clusters
    expectClean(f);
    expect(info(f)['virtual-size']).toBe(64 * 2 ** 30);
  });

  it('with a backing file: size defaults to the backing size, name and format recorded', async () => {
    const base = path.join(dir, 'base.raw');
    fs.writeFileSync(base, pattern(3 << 20, 4));
    const f = path.join(dir, 'over.qcow2');
    await createQcow2({ path: f, backing: 'base.raw' });
    const i = info(f);
    expect(i).toMatchObject({ 'virtual-size': 3 << 20, 'backing-filename': 'base.raw', 'backing-filename-format': 'raw' });
    expectClean(f);
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    expect(s.backingChain).toEqual([{ path: base, format: 'raw' }]);
    await s.write(Buffer.alloc(512, 1), 4096);
    await s.close();
    const expected = fs.readFileSync(base);
    expected.fill(1, 4096, 4608);
    expect(qemuRead(f).equals(expected)).toBe(true);
    expectClean(f);

    // A qcow2 backing file, format probed, explicit size larger than the backing file.
    const f2 = path.join(dir, 'over2.qcow2');
    await createQcow2({ path: f2, backing: f, size: 8 << 20, compat: '0.10' });
    expect(info(f2)).toMatchObject({ 'virtual-size': 8 << 20, 'backing-filename': f, 'backing-filename-format': 'qcow2' });
    expectClean(f2);
    const big = Buffer.alloc(8 << 20);
    expected.copy(big);
    expect(qemuRead(f2).equals(big)).toBe(true);
  });

  it('refuses an existing path, a missing backing file, a bad cluster size, no size', async () => {
    const f = path.join(dir, 'exists.qcow2');
    fs.writeFileSync(f, 'x');
    await expect(createQcow2({ path: f, size: 1 << 20 })).rejects.toMatchObject({ code: 'ERR_EXISTS' });
    await expect(createQcow2({ path: path.join(dir, 'n1.qcow2'), backing: 'nope.raw' })).rejects.toMatchObject({ code: 'ERR_QCOW2_BACKING' });
    await expect(createQcow2({ path: path.join(dir, 'n2.qcow2'), size: 1 << 20, clusterSize: 3000 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(createQcow2({ path: path.join(dir, 'n3.qcow2') })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(fs.existsSync(path.join(dir, 'n2.qcow2'))).toBe(false);
  });
});
