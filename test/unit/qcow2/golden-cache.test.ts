// The shared read cache of golden blocks (golden-cache.ts, issue 15): two
// overlays of one raw golden read through it and still read the golden's
// bytes (checked against QEMU's view), concurrent misses share one load, the
// bound holds, and the last layer's close empties it.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Backstore } from '../../../src/backstores/qcow2/qcow2.js';
import { GOLDEN_CHUNK, GoldenCache, goldenCache } from '../../../src/backstores/qcow2/golden-cache.js';
import { qemuImg, qemuRead, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('golden cache', () => {
  it('serves two overlays of one golden from shared blocks, the same bytes as QEMU reads', async () => {
    const golden = path.join(dir, 'golden.img');
    // Not a multiple of the chunk: the last block is short, and reads past it are zeroes.
    fs.writeFileSync(golden, randomBytes(5 * GOLDEN_CHUNK + 1536));
    const tops = ['a', 'b'].map((n) => path.join(dir, `${n}.qcow2`));
    for (const t of tops) qemuImg('create', '-q', '-f', 'qcow2', '-b', golden, '-F', 'raw', '-o', 'size=1M', t);
    const expected = qemuRead(tops[0]);
    const before = goldenCache.size;
    const a = await Qcow2Backstore.open({ name: 'a', path: tops[0], readOnly: true });
    const b = await Qcow2Backstore.open({ name: 'b', path: tops[1], readOnly: true });
    try {
      // Odd offsets and lengths, in parallel, so misses meet in flight.
      const reads = [0, 512, GOLDEN_CHUNK - 512, 3 * GOLDEN_CHUNK + 1024, 4 * GOLDEN_CHUNK].flatMap((off) =>
        [a, b].map(async (s) => {
          const buf = Buffer.alloc(GOLDEN_CHUNK + 2048, 0xee);
          await s.read(buf, off);
          expect(buf.equals(expected.subarray(off, off + buf.length))).toBe(true);
        }),
      );
      await Promise.all(reads);
      expect(goldenCache.size).toBeGreaterThan(before);
    } finally {
      await a.close();
      await b.close();
    }
    expect(goldenCache.size).toBe(before);
  });

  it('loads a block once for concurrent readers, and stays within its bound (LRU)', async () => {
    const cache = new GoldenCache(2 * GOLDEN_CHUNK);
    cache.acquire('f');
    cache.acquire('f');
    expect(cache.shared('f')).toBe(true);
    const loads: number[] = [];
    const load = async (chunk: Buffer, pos: number): Promise<void> => {
      loads.push(pos);
      await new Promise((r) => setTimeout(r, 5));
      chunk.fill(pos / GOLDEN_CHUNK);
    };
    const size = 8 * GOLDEN_CHUNK;
    const bufs = [Buffer.alloc(100), Buffer.alloc(100)];
    await Promise.all(bufs.map((buf) => cache.read('f', buf, 10, size, load)));
    expect(loads).toEqual([0]);
    for (let c = 1; c <= 3; c++) await cache.read('f', Buffer.alloc(10), c * GOLDEN_CHUNK, size, load);
    expect(cache.size).toBe(2 * GOLDEN_CHUNK);
    // Block 0 was evicted (least recently used); block 3 is a hit.
    const out = Buffer.alloc(1);
    await cache.read('f', out, 3 * GOLDEN_CHUNK, size, load);
    await cache.read('f', out, 0, size, load);
    expect(loads).toEqual([0, GOLDEN_CHUNK, 2 * GOLDEN_CHUNK, 3 * GOLDEN_CHUNK, 0]);
    expect(out[0]).toBe(0);
    cache.release('f');
    expect(cache.shared('f')).toBe(false);
    cache.release('f');
    expect(cache.size).toBe(0);
  });
});
