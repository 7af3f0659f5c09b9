import { describe, expect, it } from 'vitest';
import { ReadonlyFilter, applyFilters } from '../../../src/backstores/filters/index.js';
import { BackstoreIoError, errnoToSense } from '../../../src/core/errno.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { RecordingStore } from './helpers.js';

describe('readonly filter', () => {
  it('reports a write-protected medium in caps and keeps the rest', () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 512 });
    const f = new ReadonlyFilter(rd);
    expect(f.caps).toEqual({ ...rd.caps, canWrite: false, canFua: false, canUnmap: false, canWriteZeroes: false });
    expect(f.caps.canFlush).toBe(true);
    expect(f.caps.canExtents).toBe(true);
    expect(f.kind).toBe('readonly+ramdisk');
  });

  it('refuses writes, trims and zeroes with EROFS / WRITE PROTECTED; the medium is untouched', async () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 512 });
    await rd.write(Buffer.alloc(4096, 5), 0);
    const f = new ReadonlyFilter(rd);
    const attempts = [
      f.write(Buffer.alloc(512, 1), 0),
      f.write(Buffer.alloc(512, 1), 0, { fua: true }),
      f.unmap!(0, 4096),
      f.writeZeroes!(0, 4096, { mayUnmap: true }),
    ];
    for (const p of attempts) {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BackstoreIoError);
      expect(err).toMatchObject({ code: 'EROFS', senseReason: 'WRITE_PROTECTED' });
      expect(errnoToSense(err, 'write')).toBe('WRITE_PROTECTED');
      expect(errnoToSense({ code: (err as { code: string }).code }, 'write')).toBe('WRITE_PROTECTED');
    }
    const back = Buffer.alloc(4096);
    await f.read(back, 0);
    expect(back.every((x) => x === 5)).toBe(true);
    expect(await f.extents!(0, 1 << 20)).toEqual(await rd.extents(0, 1 << 20));
    await f.flush();
  });

  it('forwards reads, flushes, extents and close only', async () => {
    const store = new RecordingStore();
    const f = new ReadonlyFilter(store);
    await f.read(Buffer.alloc(512), 0);
    await f.flush();
    await f.extents!(0, 512);
    await Promise.allSettled([f.write(Buffer.alloc(512), 0), f.unmap!(0, 512), f.writeZeroes!(0, 512)]);
    await f.close();
    expect(store.calls).toEqual(['read 0+512', 'flush', 'extents 0+512']);
    expect(store.closed).toBe(true);
  });

  it('narrows caps anywhere in a stack; outer filters see the narrowed caps', () => {
    const store = new RecordingStore();
    const top = applyFilters(store, [{ type: 'delay' }, { type: 'error', rules: [] }, { type: 'readonly' }]);
    expect(top.caps.canWrite).toBe(false);
    expect(top.caps.canUnmap).toBe(false);
    expect(store.caps.canWrite).toBe(true);
  });
});
