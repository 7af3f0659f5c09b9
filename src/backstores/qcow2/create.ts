// createQcow2: a new, empty qcow2 image (== Header ==, == Host cluster
// management ==). Layout: the header cluster (header, header extensions,
// backing file name), the refcount table, the refcount blocks, the L1 table;
// every one of those clusters has refcount 1 and nothing else is allocated,
// so `qemu-img check` finds it clean.

import fs from 'node:fs';
import path from 'node:path';
import { LunkitError } from '../../protocols/errors.js';
import { RawLayer, probeFormat } from './backing.js';
import { EXT_BACKING_FORMAT, QCOW2_MAGIC, V2_HEADER_LENGTH, V3_HEADER_LENGTH, writeRefcount } from './format.js';
import { closeFd, fdatasync, openFd, pwriteFull } from './io.js';
import { Qcow2Backstore } from './qcow2.js';

export interface Qcow2CreateOptions {
  /** Must not exist. */
  path: string;
  /** Virtual size in bytes (rounded up to 512); default: the backing file's size (required without one). */
  size?: number;
  /** Power of two 512..2 MiB, default 65536. */
  clusterSize?: number;
  /** Backing file name as recorded in the header (relative to the image's directory, or absolute). */
  backing?: string;
  /** Recorded as the backing format header extension; default: probed from the file's magic. */
  backingFormat?: 'raw' | 'qcow2';
  /** Version 2 ('0.10') or 3 ('1.1') header, default '1.1'. */
  compat?: '0.10' | '1.1';
}

const REFCOUNT_ORDER = 4; // 16-bit refcounts, the only width of version 2

async function backingSize(file: string, format: 'raw' | 'qcow2'): Promise<number> {
  if (format === 'raw') {
    const raw = await RawLayer.open(file);
    await raw.close();
    return raw.size;
  }
  const img = await Qcow2Backstore.open({ name: 'probe', path: file, readOnly: true });
  const size = img.size;
  await img.close();
  return size;
}

export async function createQcow2(opts: Qcow2CreateOptions): Promise<void> {
  const cs = opts.clusterSize ?? 65536;
  if (!Number.isInteger(cs) || cs < 512 || cs > 2 << 20 || (cs & (cs - 1)) !== 0) {
    throw new LunkitError('EINVAL', `qcow2 cluster size ${cs} must be a power of two from 512 to 2 MiB`);
  }
  const clusterBits = Math.log2(cs);
  const version = opts.compat === '0.10' ? 2 : 3;
  let format: 'raw' | 'qcow2' | undefined;
  let size = opts.size;
  if (opts.backing !== undefined) {
    const name = opts.backing;
    if (name.length === 0 || Buffer.byteLength(name) > 1023) throw new LunkitError('EINVAL', `backing file name "${name}" must be 1..1023 bytes`);
    const file = path.isAbsolute(name) ? name : path.join(path.dirname(path.resolve(opts.path)), name);
    if (!fs.existsSync(file)) throw new LunkitError('ERR_QCOW2_BACKING', `backing file ${file} does not exist`);
    format = opts.backingFormat ?? (await probeFormat(file));
    size ??= await backingSize(file, format);
  }
  if (size === undefined) throw new LunkitError('EINVAL', 'a qcow2 image without a backing file needs a size');
  if (!Number.isSafeInteger(size) || size < 0) throw new LunkitError('EINVAL', `qcow2 virtual size ${size} is not a byte count`);
  size = Math.ceil(size / 512) * 512;

  // Metadata: header, refcount table (rt), refcount blocks (rb), L1 table (l1c clusters).
  const l2Entries = cs / 8;
  const l1Size = Math.max(1, Math.ceil(size / cs / l2Entries));
  const l1c = Math.ceil((l1Size * 8) / cs);
  const perBlock = (cs * 8) / (1 << REFCOUNT_ORDER);
  let rb = 1;
  let rt = 1;
  for (;;) {
    const total = 1 + rt + rb + l1c;
    const rb2 = Math.ceil(total / perBlock);
    const rt2 = Math.ceil((rb2 * 8) / cs);
    if (rb2 === rb && rt2 === rt) break;
    rb = rb2;
    rt = rt2;
  }
  const total = 1 + rt + rb + l1c;
  const rtAt = cs;
  const rbAt = (1 + rt) * cs;
  const l1At = (1 + rt + rb) * cs;

  const header = Buffer.alloc(cs);
  header.writeUInt32BE(QCOW2_MAGIC, 0);
  header.writeUInt32BE(version, 4);
  header.writeUInt32BE(clusterBits, 20);
  header.writeBigUInt64BE(BigInt(size), 24);
  header.writeUInt32BE(0, 32); // no encryption
  header.writeUInt32BE(l1Size, 36);
  header.writeBigUInt64BE(BigInt(l1At), 40);
  header.writeBigUInt64BE(BigInt(rtAt), 48);
  header.writeUInt32BE(rt, 56);
  let at = V2_HEADER_LENGTH;
  if (version === 3) {
    // incompatible, compatible, autoclear features all 0 (bytes 72-95).
    header.writeUInt32BE(REFCOUNT_ORDER, 96);
    header.writeUInt32BE(V3_HEADER_LENGTH, 100);
    at = V3_HEADER_LENGTH;
  }
  if (format !== undefined) {
    const f = Buffer.from(format);
    header.writeUInt32BE(EXT_BACKING_FORMAT, at);
    header.writeUInt32BE(f.length, at + 4);
    f.copy(header, at + 8);
    at += 8 + Math.ceil(f.length / 8) * 8;
  }
  at += 8; // end of the header extension area (type 0, length 0)
  if (opts.backing !== undefined) {
    const name = Buffer.from(opts.backing);
    if (at + name.length > cs) throw new LunkitError('EINVAL', `backing file name "${opts.backing}" does not fit in a ${cs}-byte header cluster`);
    header.writeBigUInt64BE(BigInt(at), 8);
    header.writeUInt32BE(name.length, 16);
    name.copy(header, at);
  }

  const table = Buffer.alloc(rt * cs);
  const blocks = Buffer.alloc(rb * cs);
  for (let i = 0; i < rb; i++) table.writeBigUInt64BE(BigInt(rbAt + i * cs), i * 8);
  for (let c = 0; c < total; c++) {
    writeRefcount(blocks.subarray(Math.floor(c / perBlock) * cs), c % perBlock, REFCOUNT_ORDER, 1);
  }

  let fd: number;
  try {
    fd = await openFd(opts.path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new LunkitError('ERR_EXISTS', `${opts.path} already exists; a new qcow2 image is never written over a file`, { cause: err });
    }
    throw err;
  }
  try {
    await pwriteFull(fd, header, 0);
    await pwriteFull(fd, table, rtAt);
    await pwriteFull(fd, blocks, rbAt);
    await pwriteFull(fd, Buffer.alloc(l1c * cs), l1At);
    await fdatasync(fd);
    await closeFd(fd);
  } catch (err) {
    await closeFd(fd).catch(() => undefined);
    fs.rmSync(opts.path, { force: true });
    throw err;
  }
}
