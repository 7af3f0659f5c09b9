import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { DelayFilter, ERR_INVALID_FILTER, MAX_DELAY_MS, parseDuration } from '../../../src/backstores/filters/index.js';
import { BackstoreIoError } from '../../../src/core/errno.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { RecordingStore, outcomes } from './helpers.js';

/** Wall time of an operation, in ms. */
async function timed(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

describe('parseDuration', () => {
  it('reads numbers as ms and us/ms/s/m units', () => {
    expect(parseDuration(5)).toBe(5);
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration('7')).toBe(7);
    expect(parseDuration('5ms')).toBe(5);
    expect(parseDuration('200 ms')).toBe(200);
    expect(parseDuration('1s')).toBe(1000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250us')).toBe(0.25);
    expect(parseDuration('2m')).toBe(120_000);
  });

  it('refuses what it cannot read, negatives and more than an hour', () => {
    for (const bad of ['', 'ms', '5 sec', '-1ms', '1h', 'five', -1, Number.NaN, Number.POSITIVE_INFINITY, MAX_DELAY_MS + 1, '61m']) {
      expect(() => parseDuration(bad)).toThrow(expect.objectContaining({ code: ERR_INVALID_FILTER }));
    }
  });
});

describe('delay filter', () => {
  it('delays each configured kind by at least its delay and leaves others alone', async () => {
    const store = new RecordingStore();
    const f = new DelayFilter(store, { delays: { read: '30ms', write: 20, flush: '10ms', trim: '10ms', zeroes: '10ms', extents: '10ms' } });
    expect(await timed(() => f.read(Buffer.alloc(512), 0))).toBeGreaterThanOrEqual(30);
    expect(await timed(() => f.write(Buffer.alloc(512), 0))).toBeGreaterThanOrEqual(20);
    expect(await timed(() => f.flush())).toBeGreaterThanOrEqual(10);
    expect(await timed(() => f.unmap!(0, 512))).toBeGreaterThanOrEqual(10);
    expect(await timed(() => f.writeZeroes!(0, 512))).toBeGreaterThanOrEqual(10);
    expect(await timed(() => f.extents!(0, 512))).toBeGreaterThanOrEqual(10);
    expect(store.calls).toHaveLength(6);
    expect(f.stats().delayed).toEqual({ read: 1, write: 1, flush: 1, trim: 1, zeroes: 1, extents: 1 });

    const g = new DelayFilter(store, { delays: { write: '50ms' } });
    const p = g.read(Buffer.alloc(512), 0);
    expect(g.stats().pending).toBe(0); // not delayed: nothing waits
    await p;
  });

  it('a random delay waits at least min, and draws from the random source', async () => {
    const f = new DelayFilter(new RecordingStore(), { delays: { read: { min: '10ms', max: '30ms' } }, random: () => 0.5 });
    expect(await timed(() => f.read(Buffer.alloc(512), 0))).toBeGreaterThanOrEqual(20);
    const g = new DelayFilter(new RecordingStore(), { delays: { read: { min: 15, max: 25 } }, seed: 3 });
    for (let i = 0; i < 3; i++) expect(await timed(() => g.read(Buffer.alloc(512), 0))).toBeGreaterThanOrEqual(15);
  });

  it('concurrent operations wait side by side, not one after another', async () => {
    const f = new DelayFilter(new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 512 }), { delays: { read: '40ms' } });
    const ops = Array.from({ length: 10 }, (_, i) => f.read(Buffer.alloc(512), i * 512));
    expect(f.stats().pending).toBe(10);
    await Promise.all(ops);
    expect(f.stats().pending).toBe(0);
  });

  it('enabled=false and configure() apply to later operations; waiting ones keep waiting', async () => {
    const store = new RecordingStore();
    const f = new DelayFilter(store, { delays: { write: '30ms' } });
    const t0 = performance.now();
    const slow = f.write(Buffer.alloc(512), 0);
    f.enabled = false;
    await f.write(Buffer.alloc(512), 512);
    expect(store.calls).toEqual(['write 512+512']);
    await slow;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    f.enabled = true;
    f.configure({ write: 0, read: '5ms' });
    expect(f.delays).toEqual({ read: { min: 5, max: 5 } });
    const p = f.write(Buffer.alloc(512), 0);
    expect(f.stats().pending).toBe(0);
    await p;
    expect(() => f.configure({ write: { min: '5ms', max: '1ms' } })).toThrow(expect.objectContaining({ code: ERR_INVALID_FILTER }));
    expect(() => f.configure({ mount: '1ms' } as never)).toThrow(expect.objectContaining({ code: ERR_INVALID_FILTER }));
    expect(f.delays).toEqual({ read: { min: 5, max: 5 } });
  });

  it('close() fails waiting operations with ESHUTDOWN at once, then closes the store', async () => {
    const store = new RecordingStore();
    const f = new DelayFilter(store, { delays: { read: '1m', write: '1m' } });
    const waiting = [f.read(Buffer.alloc(512), 0), f.write(Buffer.alloc(512), 0)];
    await f.close();
    const got = await Promise.allSettled(waiting);
    for (const r of got) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BackstoreIoError);
    }
    expect(await outcomes(waiting)).toEqual(['ESHUTDOWN', 'ESHUTDOWN']);
    expect(store.calls).toEqual([]);
    expect(store.closed).toBe(true);
    expect(f.stats().pending).toBe(0);
  });

  it('keeps caps, geometry and data of the inner store', async () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 4096 });
    const f = new DelayFilter(rd, { delays: { write: 1, read: 1 } });
    expect(f.caps).toEqual(rd.caps);
    expect([f.name, f.size, f.blockSize, f.kind]).toEqual(['rd', 1 << 20, 4096, 'delay+ramdisk']);
    await f.write(Buffer.alloc(4096, 9), 4096);
    const b = Buffer.alloc(4096);
    await f.read(b, 4096);
    expect(b.every((x) => x === 9)).toBe(true);
  });
});
