import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileBackstore } from '../../../src/backstores/file/file.js';
import { nativeFileOps } from '../../../src/backstores/file/native.js';
import { createBackstore } from '../../../src/backstores/index.js';

let dir: string;
const open: FileBackstore[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-file-'));
});

afterEach(async () => {
  for (const b of open.splice(0)) await b.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function make(opts: Partial<Parameters<typeof FileBackstore.open>[0]> = {}): Promise<FileBackstore> {
  const b = await FileBackstore.open({ name: 'f', path: path.join(dir, 'lun.img'), size: 1 << 20, blockSize: 512, ...opts });
  open.push(b);
  return b;
}

describe('native addon', () => {
  it('is built and loads (node-gyp rebuild --directory native)', () => {
    expect(nativeFileOps()).toBeDefined();
  });

  it('rejects with the errno name as code, off the main thread', async () => {
    const n = nativeFileOps()!;
    await expect(n.fallocate(-1, n.FALLOC_FL_PUNCH_HOLE | n.FALLOC_FL_KEEP_SIZE, 0, 4096)).rejects.toMatchObject({
      code: 'EBADF',
      syscall: 'fallocate',
    });
    const fd = fs.openSync(path.join(dir, 'empty'), 'w+');
    try {
      await expect(n.lseek(fd, 0, n.SEEK_DATA)).rejects.toMatchObject({ code: 'ENXIO' });
      expect(() => n.lseek(fd, 0.5, n.SEEK_SET)).toThrow(TypeError);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('file backstore', () => {
  it('creates a sparse file of the given size and round-trips data', async () => {
    const b = await make();
    const st = fs.statSync(b.path);
    expect(st.size).toBe(1 << 20);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
    const data = Buffer.alloc(8192);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await b.write(data, 65536, { fua: true });
    const back = Buffer.alloc(8192);
    await b.read(back, 65536);
    expect(back.equals(data)).toBe(true);
    expect(b.caps.thin).toBe(true);
    expect(b.caps.unmapReadsZero).toBe(true);
  });

  it('many reads and writes in flight at once', async () => {
    const b = await make();
    await Promise.all(Array.from({ length: 64 }, (_, i) => b.write(Buffer.alloc(4096, i + 1), i * 4096)));
    const bufs = Array.from({ length: 64 }, () => Buffer.alloc(4096));
    await Promise.all(bufs.map((buf, i) => b.read(buf, i * 4096)));
    bufs.forEach((buf, i) => expect(buf.every((x) => x === i + 1)).toBe(true));
  });

  it('unmap punches a hole that reads as zeroes and shows in extents', async () => {
    const b = await make();
    await b.write(Buffer.alloc(1 << 20, 0x5a), 0);
    await b.flush();
    await b.unmap(64 * 1024, 128 * 1024);
    const back = Buffer.alloc(128 * 1024, 1);
    await b.read(back, 64 * 1024);
    expect(back.every((x) => x === 0)).toBe(true);
    expect(await b.extents(0, 1 << 20)).toEqual([
      { offset: 0, length: 64 * 1024, hole: false },
      { offset: 64 * 1024, length: 128 * 1024, hole: true },
      { offset: 192 * 1024, length: (1 << 20) - 192 * 1024, hole: false },
    ]);
  });

  it('writeZeroes without unmap keeps the range allocated and zero', async () => {
    const b = await make();
    await b.write(Buffer.alloc(65536, 0x11), 0);
    await b.writeZeroes(0, 65536, { mayUnmap: false });
    const back = Buffer.alloc(65536, 1);
    await b.read(back, 0);
    expect(back.every((x) => x === 0)).toBe(true);
    expect((await b.extents(0, 65536))[0].hole).toBe(false);
  });

  it('a fresh sparse file is one hole; errors from fs keep their code', async () => {
    const b = await make();
    expect(await b.extents(0, 1 << 20)).toEqual([{ offset: 0, length: 1 << 20, hole: true }]);
    await expect(
      FileBackstore.open({ name: 'x', path: path.join(dir, 'missing.img'), blockSize: 512 }),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('opens an existing file at its own size, read-only on request', async () => {
    const p = path.join(dir, 'existing.img');
    fs.writeFileSync(p, Buffer.alloc(8192 + 100, 3));
    const b = await FileBackstore.open({ name: 'e', path: p, blockSize: 4096, readOnly: true });
    open.push(b);
    expect(b.size).toBe(8192);
    expect(b.caps.canWrite).toBe(false);
    expect(b.caps.thin).toBe(false);
    await expect(b.write(Buffer.alloc(4096), 0)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('non-sparse files are preallocated; writeCache=false still writes correctly', async () => {
    const b = await make({ sparse: false, writeCache: false });
    expect(fs.statSync(b.path).blocks * 512).toBeGreaterThanOrEqual(1 << 20);
    expect(b.caps.thin).toBe(false);
    await b.write(Buffer.alloc(512, 9), 512);
    const back = Buffer.alloc(512);
    await b.read(back, 512);
    expect(back.every((x) => x === 9)).toBe(true);
  });

  it('createBackstore opens files and resize grows them', async () => {
    const b = (await createBackstore({
      type: 'file',
      path: path.join(dir, 'f2.img'),
      size: 4096 * 4,
      blockSize: 4096,
    })) as FileBackstore;
    open.push(b);
    await b.resize(4096 * 8);
    expect(fs.statSync(b.path).size).toBe(4096 * 8);
    expect(b.size).toBe(4096 * 8);
  });
});
