// Reads through Qcow2Backstore match what QEMU reads from the same image.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Backstore } from '../../../src/backstores/qcow2/index.js';
import { pattern, qemuImg, qemuIo, qemuRead, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function readAll(file: string): Promise<Buffer> {
  const s = await Qcow2Backstore.open({ name: 't', path: file, readOnly: true });
  try {
    const out = Buffer.alloc(s.size);
    // Odd-sized reads that straddle clusters.
    for (let off = 0; off < s.size; ) {
      const len = Math.min(s.size - off, 512 * (1 + ((off / 512) % 37)) * 7);
      await s.read(out.subarray(off, off + len), off);
      off += len;
    }
    return out;
  } finally {
    await s.close();
  }
}

describe('qcow2 read', () => {
  for (const compat of ['0.10', '1.1']) {
    for (const cs of [512, 4096, 65536]) {
      it(`compat=${compat} cluster_size=${cs}: same bytes as qemu-img convert`, async () => {
        const f = path.join(dir, `r-${compat}-${cs}.qcow2`);
        qemuImg('create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cs},compat=${compat}`, f, '4M');
        qemuIo(f, 'write -P 0xaa 0 3k', 'write -P 0x55 100k 70k', 'write -P 0x11 3M 1M', 'write -P 0x77 1536 512');
        if (compat === '1.1') qemuIo(f, 'write -z 3M 64k');
        const got = await readAll(f);
        expect(got.equals(qemuRead(f))).toBe(true);
      });
    }
  }

  it('reads through raw and qcow2 backing files (chain of depth 2, shorter backing reads zeroes)', async () => {
    const raw = path.join(dir, 'base.raw');
    fs.writeFileSync(raw, pattern(2 << 20, 7)); // 2 MiB: the overlays are bigger
    const mid = path.join(dir, 'mid.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', '-o', 'cluster_size=4096', mid, '3M');
    qemuIo(mid, 'write -P 0x33 8k 10k');
    const top = path.join(dir, 'top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', mid, '-F', 'qcow2', top, '4M');
    qemuIo(top, 'write -P 0x44 12k 1k', 'write -z 1M 64k');
    const s = await Qcow2Backstore.open({ name: 't', path: top, readOnly: true });
    expect(s.backingChain).toEqual([
      { path: mid, format: 'qcow2' },
      { path: raw, format: 'raw' },
    ]);
    await s.close();
    expect((await readAll(top)).equals(qemuRead(top))).toBe(true);
  });

  it('probes the backing format when the header has no extension', async () => {
    const raw = path.join(dir, 'probe.raw');
    fs.writeFileSync(raw, pattern(1 << 20, 9));
    const top = path.join(dir, 'probe.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'probe.raw', '-F', 'raw', top, '1M');
    // Drop the backing format extension by rewriting its type to an unknown one.
    const fd = fs.openSync(top, 'r+');
    const hdr = Buffer.alloc(4096);
    fs.readSync(fd, hdr, 0, 4096, 0);
    const at = hdr.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
    if (at > 0) fs.writeSync(fd, Buffer.from([0x12, 0x34, 0x56, 0x78]), 0, 4, at);
    fs.closeSync(fd);
    const s = await Qcow2Backstore.open({ name: 't', path: top, readOnly: true });
    expect(s.backingChain).toEqual([{ path: raw, format: 'raw' }]);
    await s.close();
    expect((await readAll(top)).equals(fs.readFileSync(raw))).toBe(true);
  });

  it('reads compressed clusters (qemu-img convert -c)', async () => {
    const raw = path.join(dir, 'c.raw');
    const data = Buffer.alloc(3 << 20);
    pattern(1 << 20, 3).copy(data, 0); // incompressible
    data.fill('lunkit qcow2 ', 1 << 20, 2 << 20); // compressible
    data.fill(0x5a, (2 << 20) + 4096, (2 << 20) + 70000);
    fs.writeFileSync(raw, data);
    for (const cs of ['4096', '65536']) {
      const f = path.join(dir, `c-${cs}.qcow2`);
      qemuImg('convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', `cluster_size=${cs}`, raw, f);
      expect((await readAll(f)).equals(data)).toBe(true);
    }
  });

  it('extents: data, zero clusters and unallocated ones as holes; backing counts as data', async () => {
    const f = path.join(dir, 'ext.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '1M');
    qemuIo(f, 'write -P 1 64k 128k', 'write -z 512k 64k');
    const s = await Qcow2Backstore.open({ name: 't', path: f, readOnly: true });
    expect(s.caps.canExtents).toBe(true);
    expect(await s.extents!(0, 1 << 20)).toEqual([
      { offset: 0, length: 65536, hole: true },
      { offset: 65536, length: 131072, hole: false },
      { offset: 196608, length: (1 << 20) - 196608, hole: true },
    ]);
    await s.close();
    const top = path.join(dir, 'ext-top.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', f, '-F', 'qcow2', top);
    qemuIo(top, 'write -z 0 64k');
    const t = await Qcow2Backstore.open({ name: 't', path: top, readOnly: true });
    expect(await t.extents!(0, 1 << 20)).toEqual([
      { offset: 0, length: 65536, hole: true },
      { offset: 65536, length: (1 << 20) - 65536, hole: false },
    ]);
    await t.close();
  });

  it('read-only: caps and no optional write methods', async () => {
    const f = path.join(dir, 'ro.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '1M');
    const s = await Qcow2Backstore.open({ name: 't', path: f, readOnly: true, blockSize: 4096 });
    expect(s.kind).toBe('qcow2');
    expect(s.blockSize).toBe(4096);
    expect(s.caps.canWrite).toBe(false);
    expect(s.unmap).toBeUndefined();
    expect(s.writeZeroes).toBeUndefined();
    await expect(s.write(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EROFS' });
    await s.close();
  });
});
