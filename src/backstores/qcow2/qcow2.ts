// The qcow2 backstore: a QEMU disk image (v2 or v3) with its backing chain,
// written from QEMU's docs/interop/qcow2.txt (format.ts holds the codecs).
//
// Reads map guest clusters through L1 -> L2 (a bounded LRU of L2 tables):
// data clusters are read in place (host-contiguous runs in one pread),
// unallocated ones from the backing chain (or zeroes), zero clusters as
// zeroes, compressed ones inflated.
//
// Writes to a data cluster with COPIED set (refcount 1) go in place with no
// metadata change: one pwrite, the fast path. Any other cluster is
// allocated on write under a per-guest-cluster lock (two writers allocate it
// once), whole: the bytes the write does not cover are what the cluster read
// as before. Crash ordering (alloc.ts's comment and refcount.ts's): refcount
// written, data written, fdatasync, then the L2 entry; a new L2 table is
// written and synced before its L1 entry; a replaced cluster is freed only
// after the new L2 entry is synced. The file then never holds a reference to
// a cluster whose refcount is not durable; a crash leaks clusters at worst.
// L2 entries are written from the one cached copy of their table, 8 bytes at
// a time, so neighbours in a table never overwrite each other.

import fs from 'node:fs';
import zlib from 'node:zlib';
import type { BackstoreCaps, BackstoreOps, Extent } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import { hideUncappedMethods } from '../caps.js';
import { checkGeometry } from '../geometry.js';
import { type Layer, RawLayer, probeFormat, resolveBacking } from './backing.js';
import {
  COMPAT_LAZY_REFCOUNTS,
  HDR_AUTOCLEAR_OFFSET,
  INCOMPAT_CORRUPT,
  INCOMPAT_DIRTY,
  OFLAG_COPIED,
  OFLAG_ZERO,
  type L2Entry,
  type Qcow2Header,
  compressedSpan,
  corruptIo,
  decodeL2,
  l1Offset,
  parseHeader,
} from './format.js';
import { KeyedLock, Syncer, closeFd, fstatSize, onMemoryFileSystem, openFd, preadFull, pwriteFull, pwritevFull } from './io.js';
import { Refcounts } from './refcount.js';
import { TableCache } from './table-cache.js';
import { nativeFileOps } from '../file/native.js';

export interface Qcow2OpenOptions {
  name: string;
  path: string;
  /** Open O_RDONLY; caps.canWrite false. */
  readOnly?: boolean;
  /** Logical block size reported to the core (default 512). */
  blockSize?: 512 | 4096;
  /** L2 table cache bound in bytes (default 4 MiB); the refcount block cache is bounded by a quarter of it. */
  cacheBytes?: number;
  /** Write cache (default true). false: every write, unmap and write zeroes is followed by fdatasync (as with FUA). */
  writeCache?: boolean;
  /** Reads and writes on the event loop rather than libuv's pool (io.ts). Default: on for an image on tmpfs/ramfs. */
  syncIo?: boolean;
}

export interface BackingLink {
  path: string;
  format: 'qcow2' | 'raw';
}

const DEFAULT_CACHE_BYTES = 4 << 20;
const MAX_CLUSTER_BITS = 21;
/** Most clusters one write allocates as one host run (one pwritev, one L2 write). */
const MAX_ALLOC_RUN = 256;

/**
 * Await `p`; if it fails, first let the I/O already started settle, so a
 * second failure among `jobs` never becomes an unhandled rejection.
 */
async function settleOnError<T>(p: Promise<T>, jobs: Promise<unknown>[]): Promise<T> {
  try {
    return await p;
  } catch (err) {
    await Promise.allSettled(jobs);
    throw err;
  }
}

function invalid(file: string, what: string): LunkitError {
  return new LunkitError('ERR_QCOW2_INVALID', `${file}: not a valid qcow2 image: ${what}`);
}

export class Qcow2Backstore implements BackstoreOps, Layer {
  readonly kind = 'qcow2' as const;
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly blockSize: 512 | 4096;
  readonly caps: BackstoreCaps;
  readonly backingChain: ReadonlyArray<BackingLink>;
  readonly header: Qcow2Header;
  private fd: number;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly l1: Buffer;
  private readonly l2Cache: TableCache;
  private readonly refs: Refcounts | undefined;
  private readonly syncer: Syncer;
  private readonly clusterLock = new KeyedLock();
  private readonly l2AllocLock = new KeyedLock();
  private readonly backing: Layer | undefined;
  private fileSize: number;
  private closed = false;
  /** Every modifying request ends with an fdatasync (writeCache: false). */
  private readonly writeThrough: boolean;
  /** I/O on the event loop (a memory file system, io.ts). */
  private readonly syncIo: boolean;
  /** Reads in flight (writable opens): a freed cluster waits for the reads that may still use it. */
  private readonly reads = new Set<Promise<void>>();

  private constructor(init: {
    opts: Qcow2OpenOptions;
    fd: number;
    header: Qcow2Header;
    l1: Buffer;
    refTable: Buffer | undefined;
    fileSize: number;
    backing: Layer | undefined;
    chain: BackingLink[];
    writable: boolean;
    syncIo: boolean;
  }) {
    const { opts, header } = init;
    this.name = opts.name;
    this.path = opts.path;
    this.header = header;
    this.fd = init.fd;
    this.size = header.size;
    this.blockSize = opts.blockSize ?? 512;
    this.cs = 2 ** header.clusterBits;
    this.l2Entries = this.cs / 8;
    this.l1 = init.l1;
    this.fileSize = init.fileSize;
    this.backing = init.backing;
    this.backingChain = Object.freeze(init.chain);
    this.writeThrough = opts.writeCache === false;
    this.syncIo = init.syncIo;
    const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.l2Cache = new TableCache(() => this.fd, this.cs, Math.max(4, Math.floor(cacheBytes / this.cs)), this.syncIo);
    this.syncer = new Syncer(
      () => this.fd,
      () => this.refs?.writeDirty() ?? Promise.resolve(),
      this.syncIo,
    );
    if (init.writable && init.refTable) {
      this.refs = new Refcounts({
        fd: () => this.fd,
        clusterBits: header.clusterBits,
        refcountOrder: header.refcountOrder,
        tableOffset: header.refcountTableOffset,
        tableClusters: header.refcountTableClusters,
        table: init.refTable,
        fileSize: init.fileSize,
        maxBlocks: Math.floor(cacheBytes / 4 / this.cs),
        syncIo: this.syncIo,
      });
    }
    const writable = init.writable;
    // v2 with a backing file has no zero clusters: unmap would let the backing
    // data show through, so it is a no-op there and does not promise zeroes.
    const zeroClusters = header.version === 3;
    const unmapZeroes = zeroClusters || !this.backing;
    this.caps = Object.freeze({
      canWrite: writable,
      canFlush: true,
      canFua: true,
      canUnmap: writable,
      canWriteZeroes: writable,
      canExtents: true,
      unmapReadsZero: unmapZeroes,
      thin: true,
      rotationRate: 1,
      canMultiConn: true,
    });
    hideUncappedMethods(this);
  }

  static open(opts: Qcow2OpenOptions): Promise<Qcow2Backstore> {
    return Qcow2Backstore.openImage(opts, []);
  }

  /** Open one image of a chain; `above` holds the real paths of the images above it (loop detection). */
  private static async openImage(opts: Qcow2OpenOptions, above: string[]): Promise<Qcow2Backstore> {
    const writable = !opts.readOnly;
    const fd = await openFd(opts.path, writable ? fs.constants.O_RDWR : fs.constants.O_RDONLY);
    let backing: Layer | undefined;
    try {
      const fileSize = await fstatSize(fd);
      const first = Buffer.alloc(Math.min(fileSize, 2 ** MAX_CLUSTER_BITS));
      await preadFull(fd, first, 0);
      const h = parseHeader(first, opts.path);
      const cs = 2 ** h.clusterBits;
      if (fileSize < cs) throw invalid(opts.path, `truncated: ${fileSize} bytes, less than one cluster (${cs})`);
      Qcow2Backstore.checkTables(h, fileSize, opts.path);
      if (writable) Qcow2Backstore.checkWritable(h, opts.path);
      const l1 = Buffer.alloc(h.l1Size * 8);
      await preadFull(fd, l1, h.l1TableOffset);
      for (let i = 0; i < h.l1Size; i++) {
        const e = l1.readBigUInt64BE(i * 8);
        let off: number;
        try {
          off = l1Offset(e, cs, `L1 entry ${i}`);
        } catch (err) {
          throw invalid(opts.path, (err as Error).message.replace(/^qcow2 metadata corrupt: /, ''));
        }
        if (off + cs > fileSize) {
          throw invalid(opts.path, `L1 entry ${i}: L2 table at 0x${off.toString(16)} is past the end of the file (${fileSize} bytes; truncated?)`);
        }
      }
      let refTable: Buffer | undefined;
      if (writable) {
        refTable = Buffer.alloc(h.refcountTableClusters * cs);
        await preadFull(fd, refTable, h.refcountTableOffset);
        for (let i = 0; i < refTable.length / 8; i++) {
          const off = Number(refTable.readBigUInt64BE(i * 8) & 0xfffffffffffffe00n);
          if (off % cs !== 0 || off + cs > fileSize) {
            throw invalid(opts.path, `refcount table entry ${i}: refcount block at 0x${off.toString(16)} is misaligned or past the end of the file`);
          }
        }
        if (h.autoclear !== 0n) {
          // Unknown (or bitmap) autoclear features: clear them before writing (== Header ==).
          const z = Buffer.alloc(8);
          await pwriteFull(fd, z, HDR_AUTOCLEAR_OFFSET);
          h.autoclear = 0n;
        }
      }
      const real = fs.realpathSync(opts.path);
      const chain: BackingLink[] = [];
      if (h.backingFile !== undefined) {
        const file = resolveBacking(opts.path, h.backingFile);
        const realBacking = fs.realpathSync(file);
        const seen = [...above, real];
        if (seen.includes(realBacking)) {
          throw new LunkitError('ERR_QCOW2_BACKING', `backing chain loops: ${[...seen, realBacking].join(' -> ')}`);
        }
        const format = await Qcow2Backstore.backingFormat(h, file, opts.path);
        if (format === 'raw') {
          backing = await RawLayer.open(file, opts.syncIo);
          chain.push({ path: file, format });
        } else {
          const img = await Qcow2Backstore.openImage({ name: `${opts.name}:backing`, path: file, readOnly: true, cacheBytes: opts.cacheBytes, syncIo: opts.syncIo }, seen);
          backing = img;
          chain.push({ path: file, format }, ...img.backingChain);
        }
      }
      if (above.length === 0) checkGeometry(h.size, opts.blockSize ?? 512);
      const syncIo = opts.syncIo ?? (await onMemoryFileSystem(opts.path));
      return new Qcow2Backstore({ opts, fd, header: h, l1, refTable, fileSize, backing, chain, writable, syncIo });
    } catch (err) {
      await backing?.close().catch(() => undefined);
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  private static checkTables(h: Qcow2Header, fileSize: number, file: string): void {
    const cs = 2 ** h.clusterBits;
    if (h.l1TableOffset % cs !== 0) throw invalid(file, `l1_table_offset 0x${h.l1TableOffset.toString(16)} is not cluster-aligned`);
    if (h.refcountTableOffset % cs !== 0) {
      throw invalid(file, `refcount_table_offset 0x${h.refcountTableOffset.toString(16)} is not cluster-aligned`);
    }
    if (h.refcountTableClusters === 0) throw invalid(file, 'refcount_table_clusters is 0');
    if (h.refcountTableOffset === 0 || h.refcountTableOffset + h.refcountTableClusters * cs > fileSize) {
      throw invalid(file, `refcount table (0x${h.refcountTableOffset.toString(16)}, ${h.refcountTableClusters} clusters) is past the end of the file (${fileSize} bytes)`);
    }
    const need = Math.ceil(h.size / cs / (cs / 8));
    if (h.l1Size < need) throw invalid(file, `L1 table of ${h.l1Size} entries is too small for the virtual size ${h.size} (needs ${need})`);
    if (h.l1Size > 0 && (h.l1TableOffset === 0 || h.l1TableOffset + h.l1Size * 8 > fileSize)) {
      throw invalid(file, `L1 table (0x${h.l1TableOffset.toString(16)}, ${h.l1Size} entries) is past the end of the file (${fileSize} bytes)`);
    }
  }

  private static checkWritable(h: Qcow2Header, file: string): void {
    if (h.incompatible & INCOMPAT_DIRTY) {
      const lazy = h.compatible & COMPAT_LAZY_REFCOUNTS ? ' (lazy refcounts)' : '';
      throw new LunkitError(
        'ERR_QCOW2_NEEDS_CHECK',
        `${file}: the image is marked dirty${lazy}, its refcounts may be stale; run "qemu-img check -r all ${file}" or open it read-only`,
      );
    }
    if (h.incompatible & INCOMPAT_CORRUPT) {
      throw new LunkitError('ERR_QCOW2_NEEDS_CHECK', `${file}: the image is marked corrupt; run "qemu-img check -r all ${file}" or open it read-only`);
    }
    if (h.nbSnapshots > 0) {
      throw new LunkitError('ERR_QCOW2_UNSUPPORTED', `${file}: writing an image with internal snapshots (${h.nbSnapshots}) is not supported by lunkit's qcow2 backstore; open it read-only`);
    }
  }

  private static async backingFormat(h: Qcow2Header, file: string, image: string): Promise<'qcow2' | 'raw'> {
    if (h.backingFormat === undefined) return probeFormat(file);
    if (h.backingFormat === 'raw' || h.backingFormat === 'qcow2') return h.backingFormat;
    throw new LunkitError('ERR_QCOW2_BACKING', `${image}: backing file ${file} has format "${h.backingFormat}" (only raw and qcow2 are supported)`);
  }

  // -------------------------------------------------------------------------
  // Mapping.

  private l2TableOffset(l1i: number): number {
    if (l1i >= this.header.l1Size) throw corruptIo(`guest cluster beyond the L1 table (index ${l1i})`);
    const off = l1Offset(this.l1.readBigUInt64BE(l1i * 8), this.cs, `L1 entry ${l1i}`);
    if (off !== 0 && off + this.cs > this.fileSize) throw corruptIo(`L1 entry ${l1i}: L2 table past the end of the file`);
    return off;
  }

  /** The L2 entry of guest cluster gc. */
  private async entry(gc: number): Promise<L2Entry> {
    const l1i = Math.floor(gc / this.l2Entries);
    const l2Off = this.l2TableOffset(l1i);
    if (l2Off === 0) return { kind: 'unallocated' };
    const idx = gc % this.l2Entries;
    let table = this.l2Cache.peek(l2Off);
    if (!table) {
      table = await this.l2Cache.acquire(l2Off);
      this.l2Cache.release(l2Off);
    }
    return this.decode(table.readBigUInt64BE(idx * 8), gc);
  }

  /**
   * The fast path's lookup, synchronous and without BigInt: the host offset of
   * guest cluster gc when its L2 table is cached and the entry is a plain data
   * cluster (with COPIED when `copied`), else -1 (take the general path).
   */
  private hostSync(gc: number, copied: boolean): number {
    const l1i = Math.floor(gc / this.l2Entries);
    if (l1i >= this.header.l1Size) return -1;
    const l1Hi = this.l1.readUInt32BE(l1i * 8);
    const l1Lo = this.l1.readUInt32BE(l1i * 8 + 4);
    const l2Off = (l1Hi & 0x00ffffff) * 0x100000000 + (l1Lo & 0xfffffe00);
    if (l2Off === 0 || l2Off % this.cs !== 0 || (l1Lo & 0x1ff) !== 0 || (l1Hi & 0x7f000000) !== 0) return -1;
    const table = this.l2Cache.peek(l2Off);
    if (!table) return -1;
    const at = (gc % this.l2Entries) * 8;
    const hi = table.readUInt32BE(at);
    const lo = table.readUInt32BE(at + 4);
    // Not compressed, no reserved bits (1-8, 56-61), not a zero cluster; COPIED when asked.
    if ((hi & 0x7f000000) !== 0 || (lo & 0x1ff) !== 0 || (copied && (hi & 0x80000000) === 0)) return -1;
    const host = (hi & 0x00ffffff) * 0x100000000 + (lo & 0xfffffe00);
    if (host === 0 || host % this.cs !== 0 || host >= this.fileSize) return -1;
    return host;
  }

  /** Host offset of [offset, offset+length) when it maps to one host-contiguous run of data clusters, else -1. */
  private contiguousSync(offset: number, length: number, copied: boolean): number {
    const first = Math.floor(offset / this.cs);
    const last = Math.floor((offset + length - 1) / this.cs);
    const host = this.hostSync(first, copied);
    if (host < 0) return -1;
    for (let gc = first + 1; gc <= last; gc++) {
      if (this.hostSync(gc, copied) !== host + (gc - first) * this.cs) return -1;
    }
    return host + (offset % this.cs);
  }

  private decode(raw: bigint, gc: number): L2Entry {
    const e = decodeL2(raw, this.header.clusterBits, `guest cluster ${gc}`);
    if (e.kind === 'normal' && e.offset >= this.fileSize) {
      throw corruptIo(`guest cluster ${gc}: data cluster 0x${e.offset.toString(16)} is past the end of the file (truncated image?)`);
    }
    if (e.kind === 'compressed' && e.offset >= this.fileSize) {
      throw corruptIo(`guest cluster ${gc}: compressed data at 0x${e.offset.toString(16)} is past the end of the file (truncated image?)`);
    }
    return e;
  }

  // -------------------------------------------------------------------------
  // Read.

  read(buf: Buffer, offset: number): Promise<void> {
    let p: Promise<void> | undefined;
    // Fast path: cached L2 entries mapping the whole request to one host run.
    if (buf.length > 0 && offset + buf.length <= this.size) {
      const host = this.contiguousSync(offset, buf.length, false);
      if (host >= 0) p = preadFull(this.fd, buf, host, this.syncIo);
    }
    p ??= this.readAt(buf, offset);
    if (!this.refs) return p;
    // Reads take no lock (the core locks writers only): track them so a cluster
    // unmapped or replaced under a racing read is not reused before the read is done.
    const tracked = p.finally(() => this.reads.delete(tracked));
    this.reads.add(tracked);
    return tracked;
  }

  /** Any range: bytes past the virtual size read as zeroes (a backing layer's reads). */
  async readAt(buf: Buffer, offset: number): Promise<void> {
    const inside = Math.max(0, Math.min(buf.length, this.size - offset));
    buf.fill(0, inside);
    const jobs: Promise<void>[] = [];
    // Pending run of host-contiguous data clusters, or of backing reads.
    let run: { kind: 'data' | 'backing'; dst: number; len: number; src: number } | undefined;
    const flushRun = (): void => {
      if (!run) return;
      const r = run;
      const view = buf.subarray(r.dst, r.dst + r.len);
      jobs.push(r.kind === 'data' ? preadFull(this.fd, view, r.src, this.syncIo) : this.backing!.readAt(view, r.src));
      run = undefined;
    };
    let pos = 0;
    while (pos < inside) {
      const off = offset + pos;
      const gc = Math.floor(off / this.cs);
      const within = off % this.cs;
      const len = Math.min(this.cs - within, inside - pos);
      const e = await settleOnError(this.entry(gc), jobs);
      let kind: 'data' | 'backing' | undefined;
      let src = 0;
      if (e.kind === 'normal') {
        kind = 'data';
        src = e.offset + within;
      } else if (e.kind === 'unallocated' && this.backing) {
        kind = 'backing';
        src = off;
      }
      if (run && (kind !== run.kind || run.src + run.len !== src)) flushRun();
      if (kind) {
        if (run) run.len += len;
        else run = { kind, dst: pos, len, src };
      } else if (e.kind === 'compressed') {
        const dst = buf.subarray(pos, pos + len);
        jobs.push(this.inflate(e, gc).then((c) => void c.copy(dst, 0, within, within + len)));
      } else {
        buf.fill(0, pos, pos + len);
      }
      pos += len;
    }
    flushRun();
    await Promise.all(jobs);
  }

  /** The cluster a compressed entry holds (deflate, no zlib header). */
  private async inflate(e: L2Entry & { kind: 'compressed' }, gc: number): Promise<Buffer> {
    const raw = Buffer.alloc(e.bytes);
    await preadFull(this.fd, raw, e.offset, this.syncIo);
    let out: Buffer;
    try {
      // A cluster is all it may produce (a corrupt entry must not inflate without bound).
      out = zlib.inflateRawSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: this.cs });
    } catch (err) {
      throw new LunkitError('EIO', `qcow2 compressed cluster ${gc} does not decompress: ${(err as Error).message}`, { cause: err });
    }
    if (out.length < this.cs) throw corruptIo(`compressed cluster ${gc} decompresses to ${out.length} bytes, not ${this.cs}`);
    return out;
  }

  /** What guest cluster gc (entry e) reads as, whole, into `into` (cluster-sized). */
  private async readCluster(gc: number, e: L2Entry, into: Buffer): Promise<void> {
    switch (e.kind) {
      case 'unallocated':
        if (this.backing) await this.backing.readAt(into, gc * this.cs);
        else into.fill(0);
        return;
      case 'zero':
        into.fill(0);
        return;
      case 'compressed':
        (await this.inflate(e, gc)).copy(into, 0, 0, this.cs);
        return;
      case 'normal':
        await preadFull(this.fd, into, e.offset, this.syncIo);
        return;
    }
  }

  // -------------------------------------------------------------------------
  // Write.

  private assertWritable(): void {
    void this.writer;
  }

  private get writer(): Refcounts {
    if (!this.refs || this.closed) throw new LunkitError('EROFS', `qcow2 image ${this.path} is open read-only`);
    return this.refs;
  }

  async write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    this.assertWritable();
    // Fast path: every cluster already a data cluster with COPIED, host-contiguous.
    const host = buf.length > 0 && !this.anyBusy(offset, buf.length) ? this.contiguousSync(offset, buf.length, true) : -1;
    if (host >= 0) {
      await pwriteFull(this.fd, buf, host, this.syncIo);
      if (opts?.fua || this.writeThrough) await this.syncer.sync();
      return;
    }
    const jobs: Promise<void>[] = [];
    let fast: { dst: number; src: number; len: number } | undefined;
    const flushFast = (): void => {
      if (!fast) return;
      jobs.push(pwriteFull(this.fd, buf.subarray(fast.src, fast.src + fast.len), fast.dst, this.syncIo));
      fast = undefined;
    };
    // Consecutive clusters to allocate, in one L2 table: allocated as one host
    // run, written with one pwritev, their L2 entries with one pwrite.
    let alloc: { gc: number; count: number; src: number; within: number; len: number } | undefined;
    const flushAlloc = (): void => {
      if (!alloc) return;
      const a = alloc;
      jobs.push(this.allocWrite(a.gc, a.count, a.within, buf.subarray(a.src, a.src + a.len)));
      alloc = undefined;
    };
    let pos = 0;
    while (pos < buf.length) {
      const off = offset + pos;
      const gc = Math.floor(off / this.cs);
      const within = off % this.cs;
      const len = Math.min(this.cs - within, buf.length - pos);
      const e = this.clusterLock.busy(gc) ? undefined : await settleOnError(this.entry(gc), jobs);
      if (e?.kind === 'normal' && e.copied) {
        flushAlloc();
        const dst = e.offset + within;
        if (fast && fast.dst + fast.len === dst) fast.len += len;
        else {
          flushFast();
          fast = { dst, src: pos, len };
        }
      } else {
        flushFast();
        const a = alloc;
        if (a && a.gc + a.count === gc && gc % this.l2Entries !== 0 && a.within + a.len === a.count * this.cs && a.count < MAX_ALLOC_RUN) {
          a.count++;
          a.len += len;
        } else {
          flushAlloc();
          alloc = { gc, count: 1, src: pos, within, len };
        }
      }
      pos += len;
    }
    flushFast();
    flushAlloc();
    // On a failure, the other writes still reading buf settle first (the caller may reuse buf).
    await settleOnError(Promise.all(jobs), jobs);
    if (opts?.fua || this.writeThrough) await this.syncer.sync();
  }

  private anyBusy(offset: number, length: number): boolean {
    for (let gc = Math.floor(offset / this.cs); gc <= Math.floor((offset + length - 1) / this.cs); gc++) {
      if (this.clusterLock.busy(gc)) return true;
    }
    return false;
  }

  /** The L2 table of guest cluster gc, allocated if needed, pinned: pair with l2Cache.release(offset). */
  private async l2ForWrite(gc: number): Promise<{ l2Off: number; table: Buffer }> {
    const l1i = Math.floor(gc / this.l2Entries);
    if (this.l2TableOffset(l1i) === 0) {
      await this.l2AllocLock.run(l1i, async () => {
        if (this.l2TableOffset(l1i) !== 0) return;
        const off = await this.writer.allocate();
        this.grow(off + this.cs);
        const table = Buffer.alloc(this.cs);
        await pwriteFull(this.fd, table, off, this.syncIo);
        await this.syncer.sync(); // refcount and empty table durable before the L1 entry
        this.l2Cache.insertPinned(off, table);
        this.l2Cache.release(off);
        this.l1.writeBigUInt64BE(BigInt(off) | OFLAG_COPIED, l1i * 8);
        await pwriteFull(this.fd, this.l1.subarray(l1i * 8, l1i * 8 + 8), this.header.l1TableOffset + l1i * 8, this.syncIo);
      });
    }
    const l2Off = this.l2TableOffset(l1i);
    return { l2Off, table: await this.l2Cache.acquire(l2Off) };
  }

  /**
   * Write `data` from byte `within` of guest cluster gc on, over `count`
   * consecutive clusters (one L2 table) that are not in-place data clusters:
   * allocate them whole, as one host run.
   */
  private allocWrite(gc: number, count: number, within: number, data: Buffer): Promise<void> {
    return this.clusterLock.runMany(gc, count, async () => {
      const { l2Off, table } = await this.l2ForWrite(gc);
      try {
        const idx = gc % this.l2Entries;
        const entries: L2Entry[] = [];
        let anyCopied = false;
        for (let i = 0; i < count; i++) {
          const e = this.decode(table.readBigUInt64BE((idx + i) * 8), gc + i);
          if (e.kind === 'normal' && e.copied) anyCopied = true;
          entries.push(e);
        }
        if (!anyCopied) return await this.allocRun(gc, entries, within, data, table, l2Off);
        // Some cluster was allocated meanwhile (a racing writer held its lock): cluster by cluster.
        let at = 0;
        for (let i = 0; i < count; i++) {
          const w = i === 0 ? within : 0;
          const piece = data.subarray(at, at + Math.min(this.cs - w, data.length - at));
          const e = entries[i];
          if (e.kind === 'normal' && e.copied) await pwriteFull(this.fd, piece, e.offset + w, this.syncIo);
          else await this.allocRun(gc + i, [e], w, piece, table, l2Off);
          at += piece.length;
        }
      } finally {
        this.l2Cache.release(l2Off);
      }
    });
  }

  /**
   * Under the cluster locks of gc .. gc+entries.length-1 (their L2 table
   * pinned): allocate that many contiguous host clusters, write the data with
   * the untouched head and tail of the run copied from what those clusters
   * read as before (one pread each), sync, then point the L2 entries at them
   * (one pwrite) and free what they held.
   */
  private async allocRun(gc: number, entries: L2Entry[], within: number, data: Buffer, table: Buffer, l2Off: number): Promise<void> {
    const cs = this.cs;
    const count = entries.length;
    const tail = count * cs - within - data.length;
    const parts: Buffer[] = [];
    let first: Buffer | undefined;
    if (within > 0) {
      first = Buffer.allocUnsafe(cs); // readCluster fills every byte
      await this.readCluster(gc, entries[0], first);
      parts.push(first.subarray(0, within));
    }
    parts.push(data);
    if (tail > 0) {
      let last = count === 1 ? first : undefined;
      if (!last) {
        last = Buffer.allocUnsafe(cs);
        await this.readCluster(gc + count - 1, entries[count - 1], last);
      }
      parts.push(last.subarray(cs - tail));
    }
    const host = await this.writer.allocate(count);
    await pwritevFull(this.fd, parts, host, this.syncIo);
    this.grow(host + count * cs);
    await this.syncer.sync(); // refcount and data durable before the L2 entries
    const idx = gc % this.l2Entries;
    for (let i = 0; i < count; i++) table.writeBigUInt64BE(BigInt(host + i * cs) | OFLAG_COPIED, (idx + i) * 8);
    await pwriteFull(this.fd, table.subarray(idx * 8, (idx + count) * 8), l2Off + idx * 8, this.syncIo);
    for (const e of entries) await this.release(e);
  }

  private async setL2(table: Buffer, l2Off: number, idx: number, value: bigint): Promise<void> {
    table.writeBigUInt64BE(value, idx * 8);
    await pwriteFull(this.fd, table.subarray(idx * 8, idx * 8 + 8), l2Off + idx * 8, this.syncIo);
  }

  /** Host clusters entry `e` held (refcounted), to free once nothing points at them. */
  private heldClusters(e: L2Entry): number[] {
    if (e.kind === 'normal' || (e.kind === 'zero' && e.offset !== 0)) return [e.offset];
    if (e.kind === 'compressed') {
      const [first, last] = compressedSpan(e.offset, e.bytes, this.cs);
      const out: number[] = [];
      for (let c = first; c <= last; c += this.cs) out.push(c);
      return out;
    }
    return [];
  }

  /** After an L2 entry stopped pointing at e's clusters: sync that, then free them. */
  private async release(e: L2Entry, punch = false): Promise<void> {
    const held = this.heldClusters(e);
    if (held.length === 0) return;
    const readers = [...this.reads];
    await this.syncer.sync();
    await Promise.allSettled(readers);
    if (punch && e.kind === 'normal') await this.punchHole(e.offset);
    for (const c of held) this.l2Cache.forget(c);
    await this.writer.free(held);
  }

  private grow(end: number): void {
    if (end > this.fileSize) this.fileSize = end;
  }

  flush(): Promise<void> {
    return this.syncer.sync();
  }

  // -------------------------------------------------------------------------
  // Unmap, write zeroes, extents.

  /** Whole clusters are deallocated (or become zero clusters over a backing file); partial ones are zeroed. */
  async unmap(offset: number, length: number): Promise<void> {
    this.assertWritable();
    if (this.header.version === 2 && this.backing) return; // advisory: no zero clusters in v2 (caps.unmapReadsZero false)
    await this.zeroRange(offset, length, true);
    if (this.writeThrough) await this.syncer.sync();
  }

  async writeZeroes(offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void> {
    this.assertWritable();
    await this.zeroRange(offset, length, opts?.mayUnmap ?? false);
    if (opts?.fua || this.writeThrough) await this.syncer.sync();
  }

  private async zeroRange(offset: number, length: number, mayUnmap: boolean): Promise<void> {
    const jobs: Promise<void>[] = [];
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const gc = Math.floor(pos / this.cs);
      const within = pos % this.cs;
      const len = Math.min(this.cs - within, end - pos);
      const whole = len === this.cs || (within === 0 && pos + len >= this.size);
      jobs.push(whole ? this.zeroCluster(gc, mayUnmap) : this.zeroPartial(gc, pos, len));
      pos += len;
    }
    await Promise.all(jobs);
  }

  private async zeroPartial(gc: number, pos: number, len: number): Promise<void> {
    const e = await this.entry(gc);
    if (e.kind === 'zero' || (e.kind === 'unallocated' && !this.backing)) return; // reads as zeroes already
    await this.write(Buffer.alloc(len), pos);
  }

  private zeroCluster(gc: number, mayUnmap: boolean): Promise<void> {
    const v3 = this.header.version === 3;
    if (!v3 && (this.backing || !mayUnmap)) {
      // v2 has no zero clusters: write zeroes (unless it already reads as zeroes).
      return this.zeroPartial(gc, gc * this.cs, Math.min(this.cs, this.size - gc * this.cs));
    }
    return this.clusterLock.run(gc, async () => {
      const l1i = Math.floor(gc / this.l2Entries);
      const deallocate = !this.backing && mayUnmap;
      if (this.l2TableOffset(l1i) === 0 && !this.backing) return; // unallocated, no backing: zeroes
      const { l2Off, table } = await this.l2ForWrite(gc);
      try {
        const idx = gc % this.l2Entries;
        const e = this.decode(table.readBigUInt64BE(idx * 8), gc);
        const target = deallocate || !this.backing ? 0n : OFLAG_ZERO;
        if (e.kind === 'unallocated' && target === 0n) return;
        if (e.kind === 'zero' && e.offset === 0 && target === OFLAG_ZERO) return;
        await this.setL2(table, l2Off, idx, target);
        await this.release(e, true);
      } finally {
        this.l2Cache.release(l2Off);
      }
    });
  }

  private async punchHole(hostOffset: number): Promise<void> {
    const n = nativeFileOps();
    if (!n) return;
    await n.fallocate(this.fd, n.FALLOC_FL_PUNCH_HOLE | n.FALLOC_FL_KEEP_SIZE, hostOffset, this.cs).catch(() => undefined);
  }

  /** Allocation from the L2 tables: data and compressed clusters, and the backing chain, are data. */
  async extents(offset: number, length: number): Promise<Extent[]> {
    const out: Extent[] = [];
    let pos = offset;
    const end = Math.min(offset + length, this.size);
    while (pos < end) {
      const gc = Math.floor(pos / this.cs);
      const len = Math.min(this.cs - (pos % this.cs), end - pos);
      const e = await this.entry(gc);
      const hole = e.kind === 'zero' || (e.kind === 'unallocated' && !this.backing);
      const last = out[out.length - 1];
      if (last && last.hole === hole) last.length += len;
      else out.push({ offset: pos, length: len, hole });
      pos += len;
    }
    return out;
  }

  /**
   * What this image itself holds, not its backing chain: runs of guest bytes
   * whose clusters are data, compressed or zero clusters here (for commit,
   * live.ts). A run over the virtual size's end stops at the size.
   */
  async ownRuns(offset: number, length: number): Promise<Array<{ offset: number; length: number }>> {
    const out: Array<{ offset: number; length: number }> = [];
    const end = Math.min(offset + length, this.size);
    for (let pos = offset; pos < end; ) {
      const len = Math.min(this.cs - (pos % this.cs), end - pos);
      if ((await this.entry(Math.floor(pos / this.cs))).kind !== 'unallocated') {
        const last = out[out.length - 1];
        if (last && last.offset + last.length === pos) last.length += len;
        else out.push({ offset: pos, length: len });
      }
      pos += len;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.refs) await this.syncer.sync();
    } finally {
      this.closed = true;
      await this.backing?.close().catch(() => undefined);
      await closeFd(this.fd);
      this.fd = -1;
    }
  }
}
