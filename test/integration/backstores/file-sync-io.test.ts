// The file backstore's syncIo path (reads and writes on the event loop for
// files on tmpfs/ramfs, what bench/nbd serves): same data as the pool path,
// errors still reject, large requests still work, and detection is automatic.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileBackstore, SYNC_IO_MAX_BYTES, onMemoryFileSystem } from '../../../src/backstores/file/file.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-file-sync-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('file backstore syncIo', () => {
  it('reads back what it wrote, on both paths, including requests above SYNC_IO_MAX_BYTES', async () => {
    for (const syncIo of [true, false]) {
      const b = await FileBackstore.open({ name: 'x', path: join(dir, `d-${syncIo}.img`), size: 4 << 20, blockSize: 512, syncIo });
      try {
        expect(b.syncIo).toBe(syncIo);
        const small = Buffer.alloc(4096);
        for (let i = 0; i < small.length; i++) small[i] = (i * 7 + 3) & 0xff;
        await b.write(small, 8192, { fua: true });
        const got = Buffer.alloc(4096);
        await b.read(got, 8192);
        expect(got.equals(small)).toBe(true);
        const big = Buffer.alloc(SYNC_IO_MAX_BYTES + 4096, 0xa5);
        await b.write(big, 0);
        const back = Buffer.alloc(big.length);
        await b.read(back, 0);
        expect(back.equals(big)).toBe(true);
      } finally {
        await b.close();
      }
    }
  });

  it('a failing synchronous read rejects instead of throwing', async () => {
    const b = await FileBackstore.open({ name: 'y', path: join(dir, 'e.img'), size: 1 << 20, blockSize: 512, syncIo: true });
    await b.close();
    const p = b.read(Buffer.alloc(512), 0);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toBeInstanceOf(Error);
  });

  it('is on by default for a file on tmpfs (/dev/shm) and follows the file system elsewhere', async () => {
    if (existsSync('/dev/shm')) {
      expect(await onMemoryFileSystem('/dev/shm')).toBe(true);
      const shm = await mkdtemp('/dev/shm/lunkit-file-sync-');
      try {
        const b = await FileBackstore.open({ name: 'z', path: join(shm, 'd.img'), size: 1 << 20, blockSize: 512 });
        expect(b.syncIo).toBe(true);
        await b.close();
      } finally {
        await rm(shm, { recursive: true, force: true });
      }
    }
    expect(await onMemoryFileSystem('/proc/self/does-not-exist')).toBe(false);
    const b = await FileBackstore.open({ name: 'w', path: join(dir, 'auto.img'), size: 1 << 20, blockSize: 512 });
    expect(b.syncIo).toBe(await onMemoryFileSystem(join(dir, 'auto.img')));
    await b.close();
  });
});
