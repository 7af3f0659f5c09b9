import { describe, expect, it } from 'vitest';
import { FuseVolume, validateExportName, type FuseBlockDoor, type FuseCore } from '../../../src/fabrics/fuse/volume.js';
import { ScsiCore } from '../../../src/core/engine.js';
import { Errno, type BlockFailure, type BlockGeometry } from '../../../src/core/index.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import type { FabricOps, NexusHandle, NexusIdentity } from '../../../src/core/types.js';

const fabric: FabricOps = { name: 'fuse' };
const ident = {
  initiatorName: 'fuse:test:/mnt',
  initiatorPortId: 'fuse:test:/mnt',
  targetName: 'fuse:test',
  targetPortId: 'fuse:test:/mnt',
  relativeTargetPortId: 1,
  targetPortGroup: 0,
  protocolId: 0x0f,
};
const dev = { name: 'd', serial: 's' };

interface Op {
  op: 'read' | 'write' | 'flush' | 'geometry' | 'trim' | 'zeroes';
  lun: number;
  offset?: number;
  length?: number;
  data?: Buffer;
}

/** A fake core: a byte array behind the block door, scripted failures for reads and writes. */
class FakeCore implements FuseCore {
  readonly ops: Op[] = [];
  data: Buffer;
  /** Failure for the next read/write instead of doing it. */
  next: BlockFailure[] = [];
  wp = false;
  nexus: NexusHandle | undefined;
  closed = 0;
  constructor(
    size: number,
    readonly blockSize = 512,
  ) {
    this.data = Buffer.alloc(size);
  }
  openBlockNexus(identity: NexusIdentity): FuseBlockDoor {
    const nexus = { id: 1, identity };
    this.nexus = nexus;
    const geometry = (lun: number): BlockGeometry | BlockFailure => {
      this.ops.push({ op: 'geometry', lun });
      if (!identity.luns.get(lun)) return 'LUN_NOT_SUPPORTED';
      return {
        size: this.data.length,
        blockSize: this.blockSize,
        caps: { canWrite: true, canFlush: true, canFua: true, canUnmap: false, canWriteZeroes: false, canExtents: false, unmapReadsZero: false, thin: false, rotationRate: 1, canMultiConn: true },
        thin: false,
        unmapReadsZero: false,
        writeProtected: this.wp || (identity.luns.get(lun)?.readOnly ?? false),
        writeCache: true,
        maxTransferBytes: 32 << 20,
      };
    };
    return {
      nexus,
      geometry,
      read: async (lun, offset, length, into) => {
        this.ops.push({ op: 'read', lun, offset, length });
        const f = this.next.shift();
        if (f) return f;
        const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.alloc(length);
        this.data.copy(buf, 0, offset, offset + length);
        return buf;
      },
      write: async (lun, offset, data) => {
        this.ops.push({ op: 'write', lun, offset, length: data.length, data });
        const f = this.next.shift();
        if (f) return f;
        data.copy(this.data, offset);
        return undefined;
      },
      flush: async (lun) => {
        this.ops.push({ op: 'flush', lun });
        return undefined;
      },
      trim: async (lun, offset, length) => {
        this.ops.push({ op: 'trim', lun, offset, length });
        return undefined;
      },
      zeroes: async (lun, offset, length) => {
        this.ops.push({ op: 'zeroes', lun, offset, length });
        this.data.fill(0, offset, offset + length);
        return undefined;
      },
      extents: async (_lun, offset, length) => [{ offset, length, hole: false }],
    };
  }
  closeNexus(): void {
    this.closed++;
  }
}

/** The path-style calls these tests make, over the volume's API (the kernel session speaks node ids). */
interface Ops {
  getattr(path: string): [number, unknown?];
  readdir(path: string): [number, string[]?];
  open(path: string, flags: number): [number, number?];
  read(path: string, fd: number, buf: Buffer, len: number, pos: number): Promise<[number]>;
  write(path: string, fd: number, buf: Buffer, len: number, pos: number): Promise<[number]>;
  fsync(path: string, datasync: number, fd: number): Promise<[number]>;
  truncate(path: string, size: number): [number];
  statfs(path: string): [number, unknown];
}

function opsOf(vol: FuseVolume): Ops {
  const entry = (path: string) => vol.lookup(path.slice(1));
  const file = (fd: number) => {
    const e = vol.handle(fd);
    return e && !e.removed ? e : undefined;
  };
  return {
    getattr: (path) => {
      if (path === '/') return [0, vol.rootAttr()];
      const e = entry(path);
      return e ? [0, vol.attrOf(e)] : [-Errno.ENOENT];
    },
    readdir: () => [0, ['.', '..', ...vol.entries().map((e) => e.name)]],
    open: (path, flags) => {
      const e = entry(path);
      if (!e) return [-Errno.ENOENT];
      const fh = vol.open(e, flags);
      return fh < 0 ? [fh] : [0, fh];
    },
    read: async (_p, fd, buf, len, pos) => {
      const e = file(fd);
      return [e ? await vol.read(e, buf, len, pos) : -Errno.EIO];
    },
    write: async (_p, fd, buf, len, pos) => {
      const e = file(fd);
      return [e ? await vol.write(e, buf, len, pos) : -Errno.EIO];
    },
    fsync: async (_p, _d, fd) => {
      const e = file(fd);
      return [e ? await vol.fsync(e) : -Errno.EIO];
    },
    truncate: (path, size) => {
      const e = entry(path);
      return [e ? vol.truncate(e, size) : -Errno.ENOENT];
    },
    statfs: () => [0, vol.statfs()],
  };
}

async function call<A extends unknown[], R>(fn: (...a: A) => R | Promise<R>, ...args: A): Promise<R> {
  return fn(...args);
}

async function setup(size = 64 * 1024, bs = 512, readOnly = false): Promise<{ core: FakeCore; vol: FuseVolume; ops: Ops }> {
  const core = new FakeCore(size, bs);
  const vol = new FuseVolume(core, ident, fabric, { uid: 0, gid: 0 });
  await vol.setExport('disk', { device: dev, readOnly });
  return { core, vol, ops: opsOf(vol) };
}

describe('FuseVolume directory', () => {
  it('shows each export as a regular file of the LUN size', async () => {
    const { ops, core } = await setup(1024 * 1024);
    const [code, st] = await call(ops.getattr, '/disk');
    expect(code).toBe(0);
    expect(st).toMatchObject({ mode: 0o100600, size: 1024 * 1024 });
    const [c2, names] = await call(ops.readdir, '/');
    expect(c2).toBe(0);
    expect(names).toEqual(['.', '..', 'disk']);
    expect((await call(ops.getattr, '/nope'))[0]).toBe(-Errno.ENOENT);
    expect((await call(ops.getattr, '/'))[1]).toMatchObject({ mode: 0o040755 });
    // The geometry came from the block door, no CDB was built.
    expect(core.ops[0]).toEqual({ op: 'geometry', lun: 0 });
    expect(core.nexus?.identity.initiatorName).toBe('fuse:test:/mnt');
  });

  it('read-only exports are mode 0444 and refuse writes with EROFS', async () => {
    const { ops } = await setup(4096, 512, true);
    expect((await call(ops.getattr, '/disk'))[1]).toMatchObject({ mode: 0o100400 });
    expect((await call(ops.open, '/disk', 2))[0]).toBe(-Errno.EROFS);
    const [c, fd] = await call(ops.open, '/disk', 0);
    expect(c).toBe(0);
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(-Errno.EROFS);
  });

  it('a write-protected LU is read-only too', async () => {
    const core = new FakeCore(4096);
    core.wp = true;
    const vol = new FuseVolume(core, ident, fabric);
    await vol.setExport('disk', { device: dev });
    expect(vol.exports()[0].readOnly).toBe(true);
  });

  it('refuses truncate except to the same size', async () => {
    const { ops } = await setup(4096);
    expect((await call(ops.truncate, '/disk', 0))[0]).toBe(-Errno.EPERM);
    expect((await call(ops.truncate, '/disk', 4096))[0]).toBe(0);
  });

  it('statfs is sane', async () => {
    const { ops } = await setup(1024 * 1024);
    const [c, s] = await call(ops.statfs, '/');
    expect(c).toBe(0);
    expect(s).toMatchObject({ bsize: 4096, blocks: 256, namelen: 255 });
  });

  it('add and remove exports while in use; a removed export fails I/O with EIO', async () => {
    const { ops, vol } = await setup(4096);
    await vol.setExport('second', { device: { name: 'e', serial: 't' } });
    expect(vol.exports().map((e) => [e.name, e.lun])).toEqual([['disk', 0], ['second', 1]]);
    const [, fd] = await call(ops.open, '/second', 2);
    expect(vol.deleteExport('second')).toBe(true);
    expect(vol.deleteExport('second')).toBe(false);
    expect((await call(ops.read, '/second', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(-Errno.EIO);
    expect((await call(ops.getattr, '/second'))[0]).toBe(-Errno.ENOENT);
    expect(() => validateExportName('a/b')).toThrow(/invalid FUSE export name/);
    expect(() => validateExportName('..')).toThrow();
  });
});

describe('FuseVolume I/O', () => {
  it('aligned reads and writes become one block operation each, writes without a copy', async () => {
    const { ops, core } = await setup();
    const [, fd] = await call(ops.open, '/disk', 2);
    const buf = Buffer.alloc(4096, 0xab);
    core.ops.length = 0;
    expect((await call(ops.write, '/disk', fd as number, buf, 4096, 8192))[0]).toBe(4096);
    const w = core.ops.filter((o) => o.op === 'write');
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ lun: 0, offset: 8192, length: 4096 });
    expect(w[0].data?.buffer).toBe(buf.buffer);
    const out = Buffer.alloc(4096);
    expect((await call(ops.read, '/disk', fd as number, out, 4096, 8192))[0]).toBe(4096);
    expect(out.equals(buf)).toBe(true);
  });

  it('reads stop at the end of the file; writes past it fail with ENOSPC', async () => {
    const { ops } = await setup(8192);
    const [, fd] = await call(ops.open, '/disk', 2);
    expect((await call(ops.read, '/disk', fd as number, Buffer.alloc(8192), 8192, 4096))[0]).toBe(4096);
    expect((await call(ops.read, '/disk', fd as number, Buffer.alloc(512), 512, 8192))[0]).toBe(0);
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(512), 512, 8192))[0]).toBe(-Errno.ENOSPC);
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(8192), 8192, 4096))[0]).toBe(4096);
  });

  it('unaligned writes read-modify-write the edge blocks', async () => {
    const { ops, core } = await setup(16384, 4096);
    core.data.fill(0x11);
    const [, fd] = await call(ops.open, '/disk', 2);
    const src = Buffer.alloc(5000, 0x22);
    expect((await call(ops.write, '/disk', fd as number, src, 5000, 100))[0]).toBe(5000);
    expect(core.data.subarray(0, 100).every((b) => b === 0x11)).toBe(true);
    expect(core.data.subarray(100, 5100).every((b) => b === 0x22)).toBe(true);
    expect(core.data.subarray(5100).every((b) => b === 0x11)).toBe(true);
    const out = Buffer.alloc(10);
    expect((await call(ops.read, '/disk', fd as number, out, 10, 95))[0]).toBe(10);
    expect([...out]).toEqual([0x11, 0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, 0x22]);
  });

  it('concurrent unaligned writes into one block keep both', async () => {
    const { ops, core } = await setup(8192, 4096);
    const [, fd] = await call(ops.open, '/disk', 2);
    await Promise.all([
      call(ops.write, '/disk', fd as number, Buffer.alloc(10, 1), 10, 0),
      call(ops.write, '/disk', fd as number, Buffer.alloc(10, 2), 10, 100),
    ]);
    expect(core.data[5]).toBe(1);
    expect(core.data[105]).toBe(2);
  });

  it('a failure comes back as the errno of the one map', async () => {
    const { ops, core, vol } = await setup();
    const [, fd] = await call(ops.open, '/disk', 2);
    core.next = ['MEDIUM_ERROR_READ'];
    expect((await call(ops.read, '/disk', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(-Errno.EIO);
    core.next = ['RESERVATION_CONFLICT'];
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(-Errno.EACCES);
    core.next = ['SPACE_ALLOCATION_FAILED'];
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(-Errno.ENOSPC);
    core.next = ['WRITE_PROTECTED'];
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(-Errno.EROFS);
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(512), 512, 0))[0]).toBe(512);
    expect(vol.stats.errors).toBe(4);
    core.ops.length = 0;
    expect((await call(ops.fsync, '/disk', 0, fd as number))[0]).toBe(0);
    expect(core.ops.some((o) => o.op === 'flush')).toBe(true);
  });

  it('a resized LU shows its new size at the next stat', async () => {
    const { ops, core } = await setup(4096);
    core.data = Buffer.alloc(8192);
    expect((await call(ops.getattr, '/disk'))[1]).toMatchObject({ size: 8192 });
  });

  it('close() closes the nexus', async () => {
    const { vol, core } = await setup();
    vol.close();
    expect(core.closed).toBe(1);
    expect(vol.exports()).toEqual([]);
  });
});

describe('FuseVolume on the real core', () => {
  it('a reservation held by another nexus makes writes EACCES, reads still work', async () => {
    const core = new ScsiCore();
    const d = core.createDevice(new RamdiskBackstore({ name: 'r', size: 1 << 20, blockSize: 512 }), { name: 'r' });
    const vol = new FuseVolume(core, ident, fabric);
    await vol.setExport('disk', { device: d });
    const ops = opsOf(vol);
    const [, fd] = await call(ops.open, '/disk', 2);
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(4096, 7), 4096, 0))[0]).toBe(4096);
    const other = core.openNexus(
      { ...ident, initiatorName: 'iqn.x', initiatorPortId: 'iqn.x,i,0x1', luns: { get: (l) => (l === 0 ? { device: d, readOnly: false } : undefined), list: () => [0] } },
      fabric,
    );
    const submit = (cdb: number[]) => core.submit({ nexus: other, lun: 0, cdb: Buffer.from(cdb), tag: 1, attr: 'simple', expectedLength: 0, direction: 'none' });
    await submit([0, 0, 0, 0, 0, 0]); // consume POWER ON
    expect((await submit([0x16, 0, 0, 0, 0, 0])).status).toBe(0);
    expect((await call(ops.write, '/disk', fd as number, Buffer.alloc(4096), 4096, 0))[0]).toBe(-Errno.EACCES);
    const out = Buffer.alloc(4096);
    const [r] = await call(ops.read, '/disk', fd as number, out, 4096, 0);
    // RESERVE(6) conflicts reads too (SPC-2 reservations are exclusive).
    expect([4096, -Errno.EACCES]).toContain(r);
    core.closeNexus(other);
    vol.close();
  });

  it('a read-only mapping surfaces as EROFS through the core', async () => {
    const core = new ScsiCore();
    const d = core.createDevice(new RamdiskBackstore({ name: 'r', size: 1 << 20, blockSize: 512 }), { name: 'r', readOnly: true });
    const vol = new FuseVolume(core, ident, fabric);
    await vol.setExport('disk', { device: d });
    expect(vol.exports()[0]).toMatchObject({ readOnly: true, size: 1 << 20, blockSize: 512 });
    vol.close();
  });
});
