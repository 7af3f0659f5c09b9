// NbdBackstore over lunkit's own NBD server (an in-process LunkitRuntime
// exporting ramdisks): capabilities from the transmission flags, I/O, unmap
// reading back zeroes, extents, geometry errors, and EIO once the server is
// gone and the retries are spent; several upstream connections (multi-conn),
// each reconnecting on its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackstoreConfigSchema, createBackstore, NbdBackstore, openBackstore } from '../../../src/backstores/index.js';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';

const MiB = 1024 * 1024;
let rt: LunkitRuntime;
let base: string;

beforeAll(async () => {
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: {
        disk: { type: 'ramdisk', size: '16M' },
        ro: { type: 'ramdisk', size: '4M' },
        odd: { type: 'ramdisk', size: 4 * MiB + 512 },
      },
      nbd: {
        listen: ['127.0.0.1:0'],
        exports: { disk: { backstore: 'disk' }, ro: { backstore: 'ro', readOnly: true }, odd: { backstore: 'odd' } },
      },
    }),
  );
  base = `nbd://127.0.0.1:${rt.nbdAddresses()[0].port}`;
}, 30_000);

afterAll(async () => {
  await rt?.stop(0);
});

describe('NbdBackstore', () => {
  it('takes size and capabilities from the export and round-trips I/O', async () => {
    const bs = await createBackstore({ type: 'nbd', name: 'n', url: `${base}/disk`, blockSize: 512 });
    try {
      expect(bs).toBeInstanceOf(NbdBackstore);
      expect(bs.kind).toBe('nbd');
      expect(bs.size).toBe(16 * MiB);
      expect(bs.caps).toMatchObject({ canWrite: true, canFlush: true, canUnmap: true, canWriteZeroes: true, canExtents: true, thin: true, unmapReadsZero: true });
      const data = Buffer.alloc(64 * 1024, 0x5a);
      await bs.write(data, MiB, { fua: true });
      const back = Buffer.alloc(data.length);
      await bs.read(back, MiB);
      expect(back.equals(data)).toBe(true);
      await bs.flush();
      await bs.unmap!(MiB, 64 * 1024);
      await bs.read(back, MiB);
      expect(back.equals(Buffer.alloc(back.length))).toBe(true);
      const ext = await bs.extents!(0, 16 * MiB);
      expect(ext.reduce((n, e) => n + e.length, 0)).toBe(16 * MiB);
      expect(ext[0].offset).toBe(0);
    } finally {
      await bs.close();
    }
  });

  it('a read-only export (or spec.readOnly) cannot write', async () => {
    const ro = await NbdBackstore.open({ name: 'ro', url: `${base}/ro`, blockSize: 512 });
    const forced = await NbdBackstore.open({ name: 'f', url: `${base}/disk`, blockSize: 512, readOnly: true });
    try {
      expect(ro.caps).toMatchObject({ canWrite: false, canUnmap: false, canWriteZeroes: false, thin: false, unmapReadsZero: false });
      expect(forced.caps.canWrite).toBe(false);
      await expect(forced.write(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EROFS' });
    } finally {
      await ro.close();
      await forced.close();
    }
  });

  it('refuses an export whose size the block size does not divide', async () => {
    await expect(NbdBackstore.open({ name: 'o', url: `${base}/odd`, blockSize: 4096 })).rejects.toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining('not a positive multiple of the block size 4096'),
    });
  });

  it('an export that does not exist fails to open with a clear error', async () => {
    await expect(NbdBackstore.open({ name: 'x', url: `${base}/nope`, blockSize: 512 })).rejects.toMatchObject({
      message: expect.stringContaining('NBD_OPT_GO'),
    });
  });

  it('I/O fails with EIO when the server is gone and the retries are spent', async () => {
    const rt2 = await LunkitRuntime.start(
      parseConfig({ backstores: { d: { type: 'ramdisk', size: '4M' } }, nbd: { listen: ['127.0.0.1:0'], exports: { d: { backstore: 'd' } } } }),
    );
    const bs = await NbdBackstore.open({ name: 'g', url: `nbd://127.0.0.1:${rt2.nbdAddresses()[0].port}/d`, blockSize: 512, retries: 2, retryDelayMs: 10 });
    try {
      await rt2.stop(0);
      const t0 = Date.now();
      await expect(bs.read(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EIO' });
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await bs.close();
    }
  });

  it('config connections: 4 opens 4 upstream connections (counted by the server), spreads I/O and flushes', async () => {
    const before = rt.nbd!.connections().length;
    const config = BackstoreConfigSchema.parse({ type: 'nbd', url: `${base}/disk`, connections: 4 });
    const bs = (await openBackstore('m', config)) as NbdBackstore;
    try {
      expect(bs.connections).toBe(4);
      expect(bs.caps.canMultiConn).toBe(true);
      expect(rt.nbd!.connections().length - before).toBe(4);
      const data = Buffer.alloc(4 * MiB);
      for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i, i);
      await Promise.all(Array.from({ length: 16 }, (_, i) => bs.write(data.subarray(i * 262144, (i + 1) * 262144), 8 * MiB + i * 262144)));
      await bs.flush();
      const back = Buffer.alloc(data.length);
      await bs.read(back, 8 * MiB);
      expect(back.equals(data)).toBe(true);
    } finally {
      await bs.close();
    }
    await expect.poll(() => rt.nbd!.connections().length).toBe(before);
  });

  it('a lost upstream connection reconnects on its own and replays; I/O goes on over all of them', async () => {
    const before = new Set(rt.nbd!.connections().map((c) => c.id));
    const bs = await NbdBackstore.open({ name: 'r', url: `${base}/disk`, blockSize: 512, connections: 3, retryDelayMs: 10 });
    try {
      const mine = rt.nbd!.connections().filter((c) => !before.has(c.id));
      expect(mine).toHaveLength(3);
      const data = Buffer.alloc(2 * MiB, 0xa7);
      const writes = Array.from({ length: 32 }, (_, i) => bs.write(data.subarray(i * 65536, (i + 1) * 65536), 12 * MiB + i * 65536));
      rt.nbd!.endConnection(mine[1].id, 0);
      await Promise.all(writes);
      await bs.flush();
      const back = Buffer.alloc(data.length);
      await bs.read(back, 12 * MiB);
      expect(back.equals(data)).toBe(true);
      expect(bs.connections).toBe(3);
      await expect.poll(() => rt.nbd!.connections().filter((c) => !before.has(c.id)).length).toBe(3);
      // The ended one was replaced by a new connection (a reconnect), the other two kept.
      const now = rt.nbd!.connections().filter((c) => !before.has(c.id)).map((c) => c.id);
      expect(now).not.toContain(mine[1].id);
      expect(now).toEqual(expect.arrayContaining([mine[0].id, mine[2].id]));
    } finally {
      await bs.close();
    }
  });

  it('connections is 1..64 in the config', () => {
    expect(BackstoreConfigSchema.safeParse({ type: 'nbd', url: `${base}/disk`, connections: 0 }).success).toBe(false);
    expect(BackstoreConfigSchema.safeParse({ type: 'nbd', url: `${base}/disk`, connections: 65 }).success).toBe(false);
    expect(BackstoreConfigSchema.parse({ type: 'nbd', url: `${base}/disk` })).not.toHaveProperty('connections');
  });
});
