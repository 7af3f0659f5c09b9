// LiveQcow2 (src/backstores/qcow2/live.ts): requests that arrive while a
// reset, snapshot or commit holds I/O wait and then go to the new image;
// requests already in flight finish before the swap. QEMU's tools check the
// files afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createQcow2 } from '../../../src/backstores/qcow2/create.js';
import { LiveQcow2 } from '../../../src/backstores/qcow2/live.js';
import { check, qemuImg, qemuRead, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;
const SIZE = 4 * MiB;

async function overlay(name: string, clusterSize = 65536): Promise<{ file: string; base: string }> {
  const base = path.join(dir, `${name}.raw`);
  fs.writeFileSync(base, Buffer.alloc(SIZE, 0x11));
  const file = path.join(dir, `${name}.qcow2`);
  await createQcow2({ path: file, backing: `${name}.raw`, backingFormat: 'raw', clusterSize });
  return { file, base };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('LiveQcow2', () => {
  it('reset: writes in flight finish first and are dropped; writes during the hold land in the new image', async () => {
    const { file } = await overlay('hold', 4096);
    const live = await LiveQcow2.open({ name: 'hold', path: file });
    try {
      const before = Array.from({ length: 32 }, (_, i) => live.write(Buffer.alloc(8192, 0x22), i * 65536));
      const reset = live.reset();
      while (!live.holding) await tick();
      const during = Array.from({ length: 16 }, (_, i) => live.write(Buffer.alloc(4096, 0x33), 2 * MiB + i * 65536));
      const reads = Array.from({ length: 4 }, (_, i) => live.read(Buffer.alloc(4096), i * 65536));
      await Promise.all(before);
      expect(live.holding).toBe(true);
      await reset;
      await Promise.all([...during, ...reads]);
      await live.flush();
      const got = qemuRead(file);
      const want = Buffer.alloc(SIZE, 0x11);
      for (let i = 0; i < 16; i++) want.fill(0x33, 2 * MiB + i * 65536, 2 * MiB + i * 65536 + 4096);
      expect(got.equals(want)).toBe(true);
      expect(check(file).status).toBe(0);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.reset-'))).toEqual([]);
    } finally {
      await live.close();
    }
  });

  it('snapshot, then reset: back to the image as it was at the snapshot', async () => {
    const { file } = await overlay('snap');
    const live = await LiveQcow2.open({ name: 'snap', path: file });
    const top = path.join(dir, 'snap-2.qcow2');
    try {
      await live.write(Buffer.alloc(100 * 512, 0x44), 3 * 512);
      const res = await live.snapshot(top);
      expect(res).toEqual({ path: top, backing: file });
      expect(live.image.path).toBe(top);
      expect(live.image.header.backingFile).toBe('snap.qcow2');
      await live.write(Buffer.alloc(MiB, 0x55), MiB);
      await live.reset();
      const got = Buffer.alloc(SIZE);
      await live.read(got, 0);
      const want = Buffer.alloc(SIZE, 0x11).fill(0x44, 3 * 512, 103 * 512);
      expect(got.equals(want)).toBe(true);
      expect(qemuRead(top).equals(want)).toBe(true);
      expect(check(top).status).toBe(0);
      expect(check(file).status).toBe(0);
    } finally {
      await live.close();
    }
  });

  it('commit of partial clusters and zero clusters into a qcow2 backing file, then into raw', async () => {
    const { file, base } = await overlay('mid');
    const top = path.join(dir, 'mid-top.qcow2');
    await createQcow2({ path: top, backing: 'mid.qcow2', backingFormat: 'qcow2', clusterSize: 512 });
    const live = await LiveQcow2.open({ name: 'c', path: top });
    try {
      await live.write(Buffer.alloc(1536, 0x66), 65536 + 512);
      await live.writeZeroes!(2 * MiB, 8192);
      const served = Buffer.alloc(SIZE);
      await live.read(served, 0);
      const progress: number[] = [];
      const res = await live.commit((p) => progress.push(p.done));
      expect(res).toEqual({ bytes: 1536 + 8192, backing: file, format: 'qcow2' });
      expect(progress[progress.length - 1]).toBe(res.bytes);
      expect(qemuRead(file).equals(served)).toBe(true);
      expect(qemuRead(top).equals(served)).toBe(true);
      expect(check(file).status).toBe(0);
      expect(check(top).status).toBe(0);
      // Now the middle image into the raw base: one more layer down.
      const midLive = await LiveQcow2.open({ name: 'm', path: file });
      await live.close();
      await midLive.commit();
      await midLive.close();
      expect(fs.readFileSync(base).equals(served)).toBe(true);
      expect(qemuImg('compare', '-f', 'qcow2', '-F', 'raw', file, base)).toMatch(/Images are identical/);
    } finally {
      await live.close();
    }
  });

  it('commit while writes go on: nothing written during the copy is lost when the top is reset', async () => {
    const base = path.join(dir, 'busy.raw');
    fs.writeFileSync(base, Buffer.alloc(16 * MiB, 0x11));
    const file = path.join(dir, 'busy.qcow2');
    await createQcow2({ path: file, backing: 'busy.raw', backingFormat: 'raw', clusterSize: 4096 });
    const live = await LiveQcow2.open({ name: 'busy', path: file });
    try {
      const model = Buffer.alloc(16 * MiB, 0x11);
      for (let off = 0; off < 12 * MiB; off += MiB) {
        const b = Buffer.alloc(MiB, 0x20 + off / MiB);
        await live.write(b, off);
        b.copy(model, off);
      }
      let x = 12345;
      const r = (): number => ((x = (x * 1103515245 + 12345) >>> 0) / 0x100000000);
      let finished = false;
      const commit = live.commit().finally(() => (finished = true));
      let during = 0;
      while (!finished) {
        const len = 512 * (1 + Math.floor(r() * 128));
        const off = 512 * Math.floor(r() * ((16 * MiB - len) / 512));
        const b = Buffer.alloc(len, 0x40 + (during % 64));
        await (r() < 0.1 ? live.writeZeroes!(off, len).then(() => b.fill(0)) : live.write(b, off));
        b.copy(model, off);
        during++;
      }
      const res = await commit;
      expect(during).toBeGreaterThan(3);
      expect(res.bytes).toBeGreaterThanOrEqual(12 * MiB);
      const got = Buffer.alloc(16 * MiB);
      await live.read(got, 0);
      expect(got.equals(model)).toBe(true);
      expect(qemuRead(file).equals(model)).toBe(true);
      expect(check(file).status).toBe(0);
      // What the top holds now was written after the swap; the base has the rest.
      await live.commit();
      expect(fs.readFileSync(base).equals(model)).toBe(true);
    } finally {
      await live.close();
    }
  });

  it('reset and commit refuse an image without a backing file', async () => {
    const file = path.join(dir, 'solo.qcow2');
    await createQcow2({ path: file, size: MiB });
    const live = await LiveQcow2.open({ name: 'solo', path: file });
    try {
      await expect(live.reset()).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(live.commit()).rejects.toMatchObject({ code: 'EINVAL' });
      await live.write(Buffer.alloc(512, 1), 0); // still serving
    } finally {
      await live.close();
    }
  });
});
