// The qcow2 backstore as the daemon opens it: a thin wrapper around a
// Qcow2Backstore whose image can be replaced while the LU keeps serving
// (issue 14 "Operations on the running daemon"). The core's device keeps its
// BackstoreOps for life, so reset, snapshot and commit swap the image inside
// this object: they hold I/O (new requests wait, the ones in flight drain),
// flush, change the files, open the new top image and let I/O go on.
//
// - reset: a fresh overlay (same backing file, cluster size, version and
//   virtual size) is written to a temporary file in the image's directory,
//   synced, checked by opening it, and renamed over the image; the directory
//   is synced. A crash leaves either the old image or the new one.
// - snapshot (external): a new overlay FILE whose backing file is the current
//   image becomes the top; the old image is from then on a read-only layer.
// - commit: every cluster the top image holds itself (ownRuns) is read
//   through the top and written into the backing file (raw: pwrite; qcow2:
//   opened writable) while I/O goes on, recording the clusters modified
//   meanwhile; then I/O is held, those are copied again, the backing file is
//   synced and the top is reset. Until that reset's rename the top still
//   covers every byte written into the backing file, so a crash at any
//   moment leaves the LU's data unchanged.

import fs from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { BackstoreCaps, BackstoreOps, Extent } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import type { ProgressFn } from '../descriptor.js';
import { createQcow2 } from './create.js';
import { Qcow2Backstore, type Qcow2OpenOptions } from './qcow2.js';

/** Bytes copied per step of a commit. */
const COMMIT_CHUNK = 1 << 20;

export interface LiveCommitResult {
  /** Guest bytes the top image held and the backing file now has. */
  bytes: number;
  /** The backing file written. */
  backing: string;
  format: 'raw' | 'qcow2';
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The temporary image a reset writes beside `file` (renamed over it when complete). */
function resetTempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.reset-${process.pid}-${Date.now()}`);
}

/** Temporary images of resets a crash interrupted (never renamed, so never the image): removed at a writable open. */
function removeLeftovers(file: string): void {
  const prefix = `.${path.basename(file)}.reset-`;
  try {
    for (const f of fs.readdirSync(path.dirname(file))) if (f.startsWith(prefix)) fs.rmSync(path.join(path.dirname(file), f), { force: true });
  } catch {
    // an unreadable directory: nothing to tidy
  }
}

export class LiveQcow2 implements BackstoreOps {
  readonly kind = 'qcow2' as const;
  readonly name: string;
  /** The caps of the first image; every image swapped in has at least these (same version, or v3). */
  readonly caps: BackstoreCaps;
  declare readonly unmap?: (offset: number, length: number) => Promise<void>;
  declare readonly writeZeroes?: (offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }) => Promise<void>;
  declare readonly extents?: (offset: number, length: number) => Promise<Extent[]>;

  private img: Qcow2Backstore;
  /** Requests in the image now. */
  private active = 0;
  /** Set while an exclusive operation holds I/O; new requests wait for it. */
  private held: Promise<void> | undefined;
  private drained: (() => void) | undefined;
  /** Exclusive operations, one after the other. */
  private chain: Promise<unknown> = Promise.resolve();
  /** During a commit's first pass: the guest clusters that writes, unmaps and write zeroes touched. */
  private dirty: { set: Set<number>; clusterSize: number } | undefined;
  /** The image could not be opened again after a swap: every request fails with it. */
  private broken: Error | undefined;
  private readonly leave = (): void => {
    if (--this.active === 0) this.drained?.();
  };

  private constructor(
    image: Qcow2Backstore,
    private readonly opts: Omit<Qcow2OpenOptions, 'path'>,
  ) {
    this.img = image;
    this.name = image.name;
    this.caps = image.caps;
    const self = this as { -readonly [K in 'unmap' | 'writeZeroes' | 'extents']?: BackstoreOps[K] };
    if (this.caps.canUnmap) {
      self.unmap = (offset, length) => {
        if (this.dirty) this.mark(offset, length);
        return this.pass(() => this.img.unmap!(offset, length));
      };
    }
    if (this.caps.canWriteZeroes) {
      self.writeZeroes = (offset, length, o) => {
        if (this.dirty) this.mark(offset, length);
        return this.pass(() => this.img.writeZeroes!(offset, length, o));
      };
    }
    if (this.caps.canExtents) self.extents = (offset, length) => this.pass(() => this.img.extents!(offset, length));
  }

  static async open(opts: Qcow2OpenOptions): Promise<LiveQcow2> {
    const { path: file, ...rest } = opts;
    const live = new LiveQcow2(await Qcow2Backstore.open({ ...rest, path: file }), rest);
    if (!opts.readOnly) removeLeftovers(file);
    return live;
  }

  /** The top image now (its path, header, backing chain). */
  get image(): Qcow2Backstore {
    return this.img;
  }

  /** An exclusive operation (reset, snapshot, commit, close) holds I/O now. */
  get holding(): boolean {
    return this.held !== undefined;
  }

  get size(): number {
    return this.img.size;
  }

  get blockSize(): 512 | 4096 {
    return this.img.blockSize;
  }

  read(buf: Buffer, offset: number): Promise<void> {
    return this.pass(() => this.img.read(buf, offset));
  }

  write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    if (this.dirty) this.mark(offset, buf.length);
    return this.pass(() => this.img.write(buf, offset, opts));
  }

  /** Records the clusters a modifying request touches, before it starts (commit's second pass copies them). */
  private mark(offset: number, length: number): void {
    const d = this.dirty!;
    const last = Math.floor((offset + Math.max(length, 1) - 1) / d.clusterSize);
    for (let c = Math.floor(offset / d.clusterSize); c <= last; c++) d.set.add(c);
  }

  flush(): Promise<void> {
    return this.pass(() => this.img.flush());
  }

  async close(): Promise<void> {
    await this.exclusive(() => this.img.close());
  }

  /**
   * Runs a request now, or after the exclusive operation holding I/O. The
   * caller gets the image's own promise (no extra tick); the count drops in a
   * side reaction to it.
   */
  private pass<T>(op: () => Promise<T>): Promise<T> {
    if (this.held !== undefined || this.broken !== undefined) return this.later(op);
    this.active++;
    let p: Promise<T>;
    try {
      p = op();
    } catch (e) {
      this.leave();
      return Promise.reject(e as Error);
    }
    p.then(this.leave, this.leave);
    return p;
  }

  private async later<T>(op: () => Promise<T>): Promise<T> {
    while (this.held !== undefined) await this.held;
    if (this.broken) throw new LunkitError('EIO', `qcow2 backstore "${this.name}": ${this.broken.message}`, { cause: this.broken });
    this.active++;
    try {
      return await op();
    } finally {
      this.leave();
    }
  }

  /** Holds I/O (new requests wait, those in flight finish), runs fn, lets I/O go on; one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serialized(() => this.hold(fn));
  }

  /** Runs fn after the operations before it (reset, snapshot, commit, close), I/O still flowing. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Inside serialized(): holds I/O and waits for the requests in flight, runs fn, lets I/O go on. */
  private async hold<T>(fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    this.held = new Promise((r) => (release = r));
    try {
      if (this.active > 0) await new Promise<void>((r) => (this.drained = r));
      this.drained = undefined;
      return await fn();
    } finally {
      this.held = undefined;
      release();
    }
  }

  private checkWritable(what: string): void {
    if (this.broken) throw new LunkitError('EIO', `qcow2 backstore "${this.name}": ${this.broken.message}`);
    if (!this.img.caps.canWrite) throw new LunkitError('EROFS', `cannot ${what} the read-only qcow2 backstore "${this.name}"`);
  }

  private openImage(file: string): Promise<Qcow2Backstore> {
    return Qcow2Backstore.open({ ...this.opts, path: file });
  }

  /**
   * Drop every cluster of the top image: it reads as its backing file again.
   * Refused (EINVAL) for an image without a backing file.
   */
  reset(): Promise<{ path: string; backing: string }> {
    return this.exclusive(async () => {
      this.checkWritable('reset');
      await this.img.flush();
      await this.replaceTop();
      return { path: this.img.path, backing: this.img.backingChain[0].path };
    });
  }

  /** Under exclusive(), image flushed: writes a fresh overlay over the top's backing file and swaps it in. */
  private async replaceTop(): Promise<void> {
    const img = this.img;
    const backing = img.header.backingFile;
    if (backing === undefined || img.backingChain.length === 0) {
      throw new LunkitError('EINVAL', `${img.path} has no backing file: nothing to go back to`);
    }
    const file = img.path;
    const tmp = resetTempName(file);
    await createQcow2({
      path: tmp,
      size: img.size,
      clusterSize: 2 ** img.header.clusterBits,
      backing,
      backingFormat: img.backingChain[0].format,
      compat: img.header.version === 2 ? '0.10' : '1.1',
    });
    try {
      const probe = await Qcow2Backstore.open({ name: `${this.name}:new`, path: tmp, readOnly: true });
      await probe.close();
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await img.close();
    try {
      await rename(tmp, file);
      syncDir(path.dirname(file));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      await this.reopen(file);
      throw e;
    }
    await this.reopen(file);
  }

  /** Opens `file` as the top image after the old one was closed; on failure the backstore is broken (EIO). */
  private async reopen(file: string): Promise<void> {
    try {
      this.img = await this.openImage(file);
      this.broken = undefined;
    } catch (e) {
      this.broken = e as Error;
      throw e;
    }
  }

  /**
   * External snapshot: `to` (must not exist) becomes a new overlay whose
   * backing file is the current image, and the top from now on. The backing
   * name is the image's file name when both are in one directory, else its
   * absolute path.
   */
  snapshot(to: string): Promise<{ path: string; backing: string }> {
    return this.exclusive(async () => {
      this.checkWritable('snapshot');
      const old = this.img;
      const target = path.resolve(to);
      const backingName = path.dirname(target) === path.dirname(path.resolve(old.path)) ? path.basename(old.path) : path.resolve(old.path);
      await old.flush();
      await createQcow2({ path: target, size: old.size, clusterSize: 2 ** old.header.clusterBits, backing: backingName, backingFormat: 'qcow2', compat: '1.1' });
      let next: Qcow2Backstore;
      try {
        next = await this.openImage(target);
      } catch (e) {
        await unlink(target).catch(() => undefined);
        throw e;
      }
      syncDir(path.dirname(target));
      this.img = next;
      await old.close();
      return { path: target, backing: path.resolve(old.path) };
    });
  }

  /**
   * Fold the top image into its backing file, then reset the top. Two passes:
   * the clusters the top holds are copied while I/O goes on, and every
   * cluster a write, unmap or write zeroes touches meanwhile is recorded;
   * then I/O is held, those clusters are copied again, the backing file is
   * synced and the top reset. Safe while I/O runs because the copy only
   * writes where the top covers the backing file (with a backing file a top
   * cluster never becomes unallocated again, only a zero cluster), so no
   * read goes to what is being written, and a copy a concurrent write may
   * have torn is redone in the held pass. A qcow2 backing file smaller than
   * the data is refused (no resize); a raw one grows.
   */
  commit(onProgress?: ProgressFn): Promise<LiveCommitResult> {
    return this.serialized(async () => {
      this.checkWritable('commit');
      const img = this.img; // swaps are serialised with this: it stays the top until the held pass
      const link = img.backingChain[0] as (typeof img.backingChain)[number] | undefined;
      if (!link) throw new LunkitError('EINVAL', `${img.path} has no backing file to commit into`);
      const cs = 2 ** img.header.clusterBits;
      const dirty = new Set<number>();
      const what = `committing ${path.basename(img.path)} into ${path.basename(link.path)}`;
      let total = 0;
      let done = 0;
      let target: CommitTarget | undefined;
      try {
        // Recording starts with nothing in flight, so every modification after it is recorded.
        await this.hold(async () => {
          this.dirty = { set: dirty, clusterSize: cs };
          await img.flush();
        });
        const runs = await img.ownRuns(0, img.size);
        total = runs.reduce((n, r) => n + r.length, 0);
        const end = runs.length > 0 ? runs[runs.length - 1].offset + runs[runs.length - 1].length : 0;
        onProgress?.({ what, done: 0, total });
        target = await openTarget(link, end, `${this.name}:commit`);
        const copy = async (runList: ReadonlyArray<{ offset: number; length: number }>): Promise<void> => {
          const buf = Buffer.alloc(Math.min(COMMIT_CHUNK, runList.reduce((m, r) => Math.max(m, r.length), 0)));
          for (const r of runList) {
            for (let pos = r.offset; pos < r.offset + r.length; ) {
              const piece = buf.subarray(0, Math.min(buf.length, r.offset + r.length - pos));
              await img.read(piece, pos);
              await target!.write(piece, pos);
              pos += piece.length;
              done += piece.length;
              onProgress?.({ what, done, total });
            }
          }
        };
        await copy(runs);
        const t = target;
        await this.hold(async () => {
          this.dirty = undefined;
          await img.flush();
          const again = clusterRuns(dirty, cs, img.size);
          total += again.reduce((n, r) => n + r.length, 0);
          await copy(again);
          await t.sync();
          await t.close();
          target = undefined;
          await this.replaceTop();
        });
      } finally {
        this.dirty = undefined;
        await target?.close().catch(() => undefined);
      }
      return { bytes: total, backing: link.path, format: link.format };
    });
  }
}

/** Sorted runs of whole clusters (the last one cut at `size`). */
function clusterRuns(clusters: ReadonlySet<number>, cs: number, size: number): Array<{ offset: number; length: number }> {
  const out: Array<{ offset: number; length: number }> = [];
  for (const c of [...clusters].sort((a, b) => a - b)) {
    const offset = c * cs;
    const length = Math.min(cs, size - offset);
    if (length <= 0) continue;
    const last = out[out.length - 1];
    if (last && last.offset + last.length === offset) last.length += length;
    else out.push({ offset, length });
  }
  return out;
}

/** The backing file opened for writing by commit. */
interface CommitTarget {
  write(buf: Buffer, offset: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

async function openTarget(link: { path: string; format: 'raw' | 'qcow2' }, end: number, name: string): Promise<CommitTarget> {
  if (link.format === 'raw') {
    const fh = await open(link.path, 'r+');
    if ((await stat(link.path)).size < end) await fh.truncate(end);
    return {
      write: async (buf, offset) => {
        for (let at = 0; at < buf.length; ) at += (await fh.write(buf, at, buf.length - at, offset + at)).bytesWritten;
      },
      sync: () => fh.datasync(),
      close: () => fh.close(),
    };
  }
  const q = await Qcow2Backstore.open({ name, path: link.path });
  const zeroes = Buffer.alloc(COMMIT_CHUNK);
  if (q.size < end) {
    await q.close();
    throw new LunkitError('EINVAL', `the backing file ${link.path} (${q.size} bytes) is smaller than the data to commit (up to ${end}); lunkit does not resize qcow2 images`);
  }
  return {
    write: async (buf, offset) => {
      if (offset + buf.length > q.size) throw new LunkitError('EINVAL', `the backing file ${link.path} (${q.size} bytes) is smaller than the data to commit; lunkit does not resize qcow2 images`);
      await (buf.equals(zeroes.subarray(0, buf.length)) ? q.writeZeroes(offset, buf.length) : q.write(buf, offset));
    },
    sync: () => q.flush(),
    close: () => q.close(),
  };
}
