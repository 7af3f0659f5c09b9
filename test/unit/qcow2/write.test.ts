// Writes through Qcow2Backstore leave an image that qemu-img check finds
// clean and qemu-img compare finds identical to the bytes written.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Backstore } from '../../../src/backstores/qcow2/index.js';
import { check, pattern, qemuImg, qemuIo, qemuRead, rng, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Random non-overlapping writes, `depth` in flight at a time; returns the expected content. */
async function randomWrites(s: Qcow2Backstore, start: Buffer, seed: number, rounds: number, depth: number): Promise<Buffer> {
  const expected = Buffer.from(start);
  const r = rng(seed);
  const sectors = s.size / 512;
  for (let round = 0; round < rounds; round++) {
    const taken: Array<[number, number]> = [];
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < depth; i++) {
      const len = 512 * (1 + Math.floor(r() * (r() < 0.2 ? 300 : 16)));
      const off = 512 * Math.floor(r() * (sectors - len / 512));
      if (taken.some(([a, b]) => off < b && a < off + len)) continue;
      taken.push([off, off + len]);
      const data = pattern(len, seed * 1000 + round * 64 + i);
      data.copy(expected, off);
      jobs.push(s.write(data, off, { fua: r() < 0.1 }));
    }
    await Promise.all(jobs);
  }
  return expected;
}

async function readAll(s: Qcow2Backstore): Promise<Buffer> {
  const b = Buffer.alloc(s.size);
  await s.read(b, 0);
  return b;
}

function expectClean(file: string): void {
  const c = check(file);
  expect(c.out).not.toMatch(/ERROR/);
  expect(c.corruptions).toBe(0);
  expect(c.leaks).toBe(0);
  expect(c.status).toBe(0);
}

function compareWith(file: string, expected: Buffer): void {
  const raw = `${file}.expected.raw`;
  fs.writeFileSync(raw, expected);
  expect(qemuImg('compare', '-f', 'qcow2', '-F', 'raw', file, raw)).toMatch(/identical/);
}

describe('qcow2 write', () => {
  const cases = [
    { name: 'v3 64k clusters', opts: 'cluster_size=65536,compat=1.1', size: 32 << 20 },
    { name: 'v2 4k clusters', opts: 'cluster_size=4096,compat=0.10', size: 16 << 20 },
    { name: 'v3 lazy refcounts 4k', opts: 'cluster_size=4096,compat=1.1,lazy_refcounts=on', size: 16 << 20 },
    { name: 'v3 1-bit refcounts 512', opts: 'cluster_size=512,refcount_bits=1', size: 4 << 20 },
    { name: 'v3 2-bit refcounts 4k', opts: 'cluster_size=4096,refcount_bits=2', size: 8 << 20 },
    { name: 'v3 8-bit refcounts 4k', opts: 'cluster_size=4096,refcount_bits=8', size: 8 << 20 },
    { name: 'v3 32-bit refcounts 4k', opts: 'cluster_size=4096,refcount_bits=32', size: 8 << 20 },
    { name: 'v3 64-bit refcounts 1k', opts: 'cluster_size=1024,refcount_bits=64', size: 8 << 20 },
  ];
  for (const c of cases) {
    it(`${c.name}: concurrent random writes, then check and compare`, async () => {
      const f = path.join(dir, `w-${c.opts.replace(/[=,]/g, '_')}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', '-o', c.opts, f, String(c.size));
      qemuIo(f, 'write -P 0x5a 1M 300k');
      const start = qemuRead(f);
      const s = await Qcow2Backstore.open({ name: 't', path: f });
      expect(s.caps.canWrite).toBe(true);
      const expected = await randomWrites(s, start, 11, 12, 32);
      expect((await readAll(s)).equals(expected)).toBe(true);
      await s.flush();
      await s.close();
      expectClean(f);
      compareWith(f, expected);
    });
  }

  it('512-byte clusters: many allocations grow the refcount table; check stays clean', async () => {
    const f = path.join(dir, 'w-512.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', f, String(12 << 20));
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    const expected = Buffer.alloc(s.size);
    // Sequential 64 KiB writes: 24576 data clusters + L2 tables, more than one refcount table cluster covers (16384).
    for (let off = 0; off < s.size; off += 8 * 65536) {
      const jobs: Promise<void>[] = [];
      for (let k = 0; k < 8; k++) {
        const data = pattern(65536, off + k);
        data.copy(expected, off + k * 65536);
        jobs.push(s.write(data, off + k * 65536));
      }
      await Promise.all(jobs);
    }
    await s.close();
    const hdr = Buffer.alloc(64);
    const fd = fs.openSync(f, 'r');
    fs.readSync(fd, hdr, 0, 64, 0);
    fs.closeSync(fd);
    expect(hdr.readUInt32BE(56)).toBeGreaterThan(1); // refcount_table_clusters grew
    const info = JSON.parse(qemuImg('info', '--output=json', f)) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(12 << 20);
    expectClean(f);
    compareWith(f, expected);
  }, 60_000);

  for (const fmt of ['raw', 'qcow2'] as const) {
    it(`over a ${fmt} backing file: partial-cluster writes copy the rest from the backing file`, async () => {
      const base = path.join(dir, `wb-base.${fmt}`);
      const baseData = pattern(6 << 20, 21);
      if (fmt === 'raw') fs.writeFileSync(base, baseData);
      else {
        fs.writeFileSync(`${base}.src`, baseData);
        qemuImg('convert', '-q', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', `${base}.src`, base);
      }
      const top = path.join(dir, `wb-top-${fmt}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', '-b', path.basename(base), '-F', fmt, top, String(8 << 20));
      const s = await Qcow2Backstore.open({ name: 't', path: top });
      const start = Buffer.alloc(8 << 20);
      baseData.copy(start);
      const expected = await randomWrites(s, start, 5, 10, 24);
      expect((await readAll(s)).equals(expected)).toBe(true);
      await s.close();
      expectClean(top);
      compareWith(top, expected);
    });
  }

  it('a 4-table L2 cache (evictions under load) loses no allocation', async () => {
    const f = path.join(dir, 'w-smallcache.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', f, String(32 << 20)); // 64 L2 tables
    const s = await Qcow2Backstore.open({ name: 't', path: f, cacheBytes: 16384 });
    const expected = await randomWrites(s, Buffer.alloc(32 << 20), 3, 10, 48);
    expect((await readAll(s)).equals(expected)).toBe(true);
    await s.close();
    expectClean(f);
    compareWith(f, expected);
  });

  it('overwriting allocated clusters writes in place (no metadata change, file does not grow)', async () => {
    const f = path.join(dir, 'w-inplace.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '4M');
    qemuIo(f, 'write -P 1 0 4M');
    const before = fs.readFileSync(f);
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    await s.write(Buffer.alloc(128 << 10, 2), 64 << 10, { fua: true });
    await s.write(Buffer.alloc(512, 3), 3 << 20);
    await s.flush();
    await s.close();
    const after = fs.readFileSync(f);
    expect(after.length).toBe(before.length);
    // Only data changed: the first four clusters (header, refcount table and block, L1) and the L2 table are the same.
    expect(after.subarray(0, 5 * 65536).equals(before.subarray(0, 5 * 65536))).toBe(true);
    expectClean(f);
    const expected = Buffer.alloc(4 << 20, 1);
    expected.fill(2, 64 << 10, 192 << 10);
    expected.fill(3, 3 << 20, (3 << 20) + 512);
    compareWith(f, expected);
  });

  it('writeCache false: writes (allocating and in place) still land and check clean', async () => {
    const f = path.join(dir, 'w-wt.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', f, '4M');
    const s = await Qcow2Backstore.open({ name: 't', path: f, writeCache: false });
    const expected = await randomWrites(s, Buffer.alloc(4 << 20), 8, 4, 16);
    await s.unmap!(0, 8192);
    expected.fill(0, 0, 8192);
    await s.close();
    expectClean(f);
    compareWith(f, expected);
  });

  it('two writers to one unallocated cluster allocate it once', async () => {
    const f = path.join(dir, 'w-race.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '1M');
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    const expected = Buffer.alloc(1 << 20);
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 128; i++) {
      const data = Buffer.alloc(512, i + 1);
      data.copy(expected, i * 512);
      jobs.push(s.write(data, i * 512));
    }
    await Promise.all(jobs);
    await s.close();
    expectClean(f);
    compareWith(f, expected);
    // 1 header + 1 reftable + 1 refblock + 1 L1 + 1 L2 + 1 data cluster.
    expect(fs.statSync(f).size).toBeLessThanOrEqual(6 * 65536);
  });

  it('overwrites compressed clusters (frees them) and keeps check clean', async () => {
    const raw = path.join(dir, 'wc.raw');
    const data = Buffer.alloc(2 << 20);
    data.fill('compress me ');
    fs.writeFileSync(raw, data);
    const f = path.join(dir, 'wc.qcow2');
    qemuImg('convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', raw, f);
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    const expected = await randomWrites(s, data, 9, 8, 16);
    await s.close();
    expectClean(f);
    compareWith(f, expected);
  });
});
