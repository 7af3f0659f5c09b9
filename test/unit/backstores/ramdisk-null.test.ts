import { describe, expect, it } from 'vitest';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { NullBackstore } from '../../../src/backstores/null/null.js';
import { createBackstore } from '../../../src/backstores/index.js';

describe('ramdisk backstore', () => {
  it('reads zeroes before any write and allocates only written chunks', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 1 << 30, blockSize: 512 });
    const buf = Buffer.alloc(4096, 0xff);
    await rd.read(buf, 12345 * 512);
    expect(buf.every((b) => b === 0)).toBe(true);
    expect(rd.allocatedBytes).toBe(0);
    await rd.write(Buffer.alloc(512, 1), 0);
    expect(rd.allocatedBytes).toBe(1 << 20);
  });

  it('I/O across chunk boundaries round-trips', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * 4096, blockSize: 4096, chunkSize: 8192 });
    const data = Buffer.alloc(5 * 4096);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    await rd.write(data, 4096);
    const back = Buffer.alloc(data.length);
    await rd.read(back, 4096);
    expect(back.equals(data)).toBe(true);
  });

  it('unmap frees whole chunks, zero-fills partial ones, extents show the holes', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 16 * 4096, blockSize: 512, chunkSize: 4096 });
    await rd.write(Buffer.alloc(16 * 4096, 7), 0);
    await rd.unmap(4096, 2 * 4096);
    await rd.unmap(8 * 4096 + 512, 512);
    expect(await rd.extents(0, 16 * 4096)).toEqual([
      { offset: 0, length: 4096, hole: false },
      { offset: 4096, length: 8192, hole: true },
      { offset: 3 * 4096, length: 13 * 4096, hole: false },
    ]);
    const b = Buffer.alloc(1024);
    await rd.read(b, 8 * 4096);
    expect(b.subarray(0, 512).every((x) => x === 7)).toBe(true);
    expect(b.subarray(512).every((x) => x === 0)).toBe(true);
    await rd.writeZeroes(0, 4096, { mayUnmap: false });
    expect((await rd.extents(0, 4096))[0].hole).toBe(false);
  });

  it('rejects I/O outside the medium with a coded error and checks geometry', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 8192, blockSize: 512 });
    await expect(rd.read(Buffer.alloc(512), 8192)).rejects.toMatchObject({ code: 'EINVAL' });
    expect(() => new RamdiskBackstore({ name: 'r', size: 1000, blockSize: 512 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('shrinking and growing again reads zeroes in the regrown part', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 4 * 4096, blockSize: 512, chunkSize: 4096 });
    await rd.write(Buffer.alloc(4 * 4096, 9), 0);
    await rd.resize(4096 + 512);
    await rd.resize(4 * 4096);
    const b = Buffer.alloc(4 * 4096);
    await rd.read(b, 0);
    expect(b.subarray(0, 4096 + 512).every((x) => x === 9)).toBe(true);
    expect(b.subarray(4096 + 512).every((x) => x === 0)).toBe(true);
  });
});

describe('null backstore and factory', () => {
  it('null reads zeroes and discards writes', async () => {
    const n = new NullBackstore({ name: 'n', size: 1 << 20, blockSize: 4096 });
    await n.write(Buffer.alloc(4096, 1), 0);
    const b = Buffer.alloc(4096, 0xee);
    await n.read(b, 0);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(n.caps.canExtents).toBe(false);
  });

  it('createBackstore builds each type', async () => {
    expect((await createBackstore({ type: 'null', size: 4096, blockSize: 512 })).kind).toBe('null');
    const rd = await createBackstore({ type: 'ramdisk', size: 4096, blockSize: 4096, name: 'x' });
    expect([rd.kind, rd.name, rd.size, rd.blockSize]).toEqual(['ramdisk', 'x', 4096, 4096]);
    await expect(createBackstore({ type: 'ramdisk', size: 4096, blockSize: 1024 as 512 })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
