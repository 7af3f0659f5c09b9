// Bad images give a clear error naming the problem, at open (never a crash or a silent wrong read).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Backstore } from '../../../src/backstores/qcow2/index.js';
import { qemuImg, qemuIo, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function image(name: string, ...opts: string[]): string {
  const f = path.join(dir, name);
  qemuImg('create', '-q', '-f', 'qcow2', ...opts, f, '4M');
  qemuIo(f, 'write -P 1 0 128k');
  return f;
}

function patch(file: string, at: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, at);
  fs.closeSync(fd);
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

const open = (f: string, readOnly = false) => Qcow2Backstore.open({ name: 't', path: f, readOnly });

describe('qcow2 bad input', () => {
  it('not qcow2 / truncated', async () => {
    const f = path.join(dir, 'junk');
    fs.writeFileSync(f, Buffer.alloc(4096, 1));
    await expect(open(f)).rejects.toMatchObject({ code: 'ERR_QCOW2_INVALID', message: /bad magic/ });
    const t = image('trunc.qcow2');
    fs.truncateSync(t, 100);
    await expect(open(t)).rejects.toMatchObject({ code: 'ERR_QCOW2_INVALID', message: /truncated|past the end/ });
    const t2 = image('trunc2.qcow2');
    fs.truncateSync(t2, 3 * 65536 + 8); // keeps header and refcount table, cuts the L1 table/L2 tables
    await expect(open(t2, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_INVALID', message: /past the end of the file/ });
  });

  it('a refcount table or L1 table pointing past the end of the file', async () => {
    const f = image('rt.qcow2');
    patch(f, 48, u64(1n << 40n));
    await expect(open(f)).rejects.toMatchObject({ code: 'ERR_QCOW2_INVALID', message: /refcount table .* past the end/ });
    const g = image('l1.qcow2');
    patch(g, 40, u64(1n << 40n));
    await expect(open(g, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_INVALID', message: /L1 table .* past the end/ });
  });

  it('an L2 table offset that is not cluster-aligned (hand-patched L1 entry)', async () => {
    const f = image('mis.qcow2');
    const hdr = fs.readFileSync(f).subarray(0, 72);
    const l1 = Number(hdr.readBigUInt64BE(40));
    const e = fs.readFileSync(f).readBigUInt64BE(l1);
    patch(f, l1, u64(e + 512n));
    await expect(open(f, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_INVALID', message: /L1 entry 0: L2 table offset 0x[0-9a-f]+ is not cluster-aligned/ });
  });

  it('a misaligned data cluster offset in an L2 table fails the read with EIO naming it', async () => {
    const f = image('misdata.qcow2');
    const buf = fs.readFileSync(f);
    const l1 = Number(buf.readBigUInt64BE(40));
    const l2 = Number(buf.readBigUInt64BE(l1) & 0x00fffffffffffe00n);
    patch(f, l2, u64(buf.readBigUInt64BE(l2) + 512n));
    const s = await open(f, true);
    await expect(s.read(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EIO', message: /not cluster-aligned/ });
    await s.close();
  });

  it('a backing chain that loops, and a missing backing file', async () => {
    const a = path.join(dir, 'a.qcow2');
    const b = path.join(dir, 'b.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', a, '1M');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'a.qcow2', '-F', 'qcow2', b);
    qemuImg('rebase', '-q', '-u', '-f', 'qcow2', '-b', 'b.qcow2', '-F', 'qcow2', a);
    await expect(open(b, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_BACKING', message: /loops: .*b\.qcow2 -> .*a\.qcow2 -> .*b\.qcow2/ });
    const m = path.join(dir, 'm.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-u', '-b', 'gone.raw', '-F', 'raw', m, '1M');
    await expect(open(m, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_BACKING', message: /gone\.raw.*does not exist/ });
  });

  it('unsupported features are named', async () => {
    const f = image('feat.qcow2');
    patch(f, 72, u64(1n << 10n));
    await expect(open(f, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_UNSUPPORTED', message: /incompatible feature bit 10/ });
    const e = image('enc.qcow2');
    patch(e, 32, u32(2));
    await expect(open(e, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_UNSUPPORTED', message: /encryption \(crypt_method LUKS\)/ });
    const x = image('extl2.qcow2');
    patch(x, 72, u64(1n << 4n));
    await expect(open(x, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_UNSUPPORTED', message: /extended L2/ });
    const d = image('datafile.qcow2');
    patch(d, 72, u64(1n << 2n));
    await expect(open(d, true)).rejects.toMatchObject({ code: 'ERR_QCOW2_UNSUPPORTED', message: /external data file/ });
  });

  it('dirty with lazy refcounts: refused for writing with the qemu-img check advice, fine read-only', async () => {
    const f = image('dirty.qcow2', '-o', 'lazy_refcounts=on');
    patch(f, 72, u64(1n));
    await expect(open(f)).rejects.toMatchObject({ code: 'ERR_QCOW2_NEEDS_CHECK', message: /qemu-img check -r all/ });
    const s = await open(f, true);
    const b = Buffer.alloc(512);
    await s.read(b, 0);
    expect(b[0]).toBe(1);
    await s.close();
  });

  it('internal snapshots: read-only works, writing is refused', async () => {
    const f = image('snap.qcow2');
    qemuImg('snapshot', '-c', 's1', f);
    await expect(open(f)).rejects.toMatchObject({ code: 'ERR_QCOW2_UNSUPPORTED', message: /internal snapshots/ });
    const s = await open(f, true);
    const b = Buffer.alloc(512);
    await s.read(b, 0);
    expect(b[0]).toBe(1);
    await s.close();
  });
});
