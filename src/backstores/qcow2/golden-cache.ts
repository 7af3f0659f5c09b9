// A read cache of golden blocks (issue 15, bench/bootlab): when two or more
// raw backing layers in this process read the same file (a boot lab's
// overlays of one golden image), their reads of it go through one bounded LRU
// of GOLDEN_CHUNK-sized blocks, and concurrent misses of a block share one
// pread. A hit is a copy on the event loop instead of a pread through libuv's
// pool (disk file systems) or a syscall (tmpfs); the data is copied once
// either way.
//
// Keyed by the file's identity and version (dev, ino, size, mtime): a golden
// rewritten in place or replaced by another file gets new keys. Backing files
// are opened read-only and are never written by lunkit (the qcow2 spec's
// contract for a backing file); a file written behind lunkit's back while it
// serves would be served stale until its last layer closes.
//
// Bound: LUNKIT_GOLDEN_CACHE_MB (default 256; 0 turns the cache off), for the
// whole process. A file with a single layer is not cached (nothing to share;
// the page cache already holds it).

import type { Stats } from 'node:fs';

/** Bytes per cached block (the default qcow2 cluster size). */
export const GOLDEN_CHUNK = 64 * 1024;
const DEFAULT_MB = 256;
const RESOLVED: Promise<void> = Promise.resolve();

/** Identity and version of a backing file's content. */
export function goldenKey(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

export class GoldenCache {
  /** Insertion order is recency: a hit moves its block to the end. */
  private readonly blocks = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private readonly users = new Map<string, number>();
  private bytes = 0;

  constructor(readonly maxBytes: number) {}

  /** A layer of file `key` opened. */
  acquire(key: string): void {
    this.users.set(key, (this.users.get(key) ?? 0) + 1);
  }

  /** A layer of file `key` closed; the last one drops the file's blocks. */
  release(key: string): void {
    const n = (this.users.get(key) ?? 1) - 1;
    if (n > 0) {
      this.users.set(key, n);
      return;
    }
    this.users.delete(key);
    const prefix = `${key}/`;
    for (const [k, b] of this.blocks) {
      if (k.startsWith(prefix)) {
        this.blocks.delete(k);
        this.bytes -= b.length;
      }
    }
  }

  /** True when reads of file `key` should go through the cache (on, and shared by two or more layers). */
  shared(key: string): boolean {
    return this.maxBytes >= GOLDEN_CHUNK && (this.users.get(key) ?? 0) >= 2;
  }

  /** Bytes held now. */
  get size(): number {
    return this.bytes;
  }

  /**
   * Fill buf with the file's bytes at offset (offset + buf.length <= fileSize).
   * `load(chunk, pos)` reads chunk.length bytes of the file at pos.
   */
  read(key: string, buf: Buffer, offset: number, fileSize: number, load: (chunk: Buffer, pos: number) => Promise<void>): Promise<void> {
    const end = offset + buf.length;
    let pending: Array<Promise<void>> | undefined;
    for (let c = Math.floor(offset / GOLDEN_CHUNK); c * GOLDEN_CHUNK < end; c++) {
      const start = c * GOLDEN_CHUNK;
      const from = Math.max(offset, start);
      const to = Math.min(end, start + GOLDEN_CHUNK);
      const k = `${key}/${c}`;
      const hit = this.blocks.get(k);
      if (hit) {
        this.blocks.delete(k);
        this.blocks.set(k, hit);
        hit.copy(buf, from - offset, from - start, to - start);
        continue;
      }
      (pending ??= []).push(this.miss(key, k, start, Math.min(GOLDEN_CHUNK, fileSize - start), load).then((b) => void b.copy(buf, from - offset, from - start, to - start)));
    }
    return pending ? Promise.all(pending).then(() => undefined) : RESOLVED;
  }

  /** One pread per missing block however many readers want it; the block joins the LRU. */
  private miss(key: string, k: string, pos: number, len: number, load: (chunk: Buffer, pos: number) => Promise<void>): Promise<Buffer> {
    const inflight = this.loading.get(k);
    if (inflight) return inflight;
    const chunk = Buffer.allocUnsafeSlow(len);
    const p = load(chunk, pos).then(
      () => {
        this.loading.delete(k);
        // A file whose last layer closed meanwhile keeps nothing.
        if (this.users.has(key)) this.insert(k, chunk);
        return chunk;
      },
      (err: unknown) => {
        this.loading.delete(k);
        throw err;
      },
    );
    this.loading.set(k, p);
    return p;
  }

  private insert(k: string, chunk: Buffer): void {
    if (this.blocks.has(k)) return;
    this.blocks.set(k, chunk);
    this.bytes += chunk.length;
    for (const [old, b] of this.blocks) {
      if (this.bytes <= this.maxBytes) break;
      this.blocks.delete(old);
      this.bytes -= b.length;
    }
  }
}

function configuredBytes(): number {
  const v = process.env.LUNKIT_GOLDEN_CACHE_MB;
  const mb = v === undefined || v === '' ? DEFAULT_MB : Number(v);
  return Number.isFinite(mb) && mb >= 0 ? Math.floor(mb * 1024 * 1024) : DEFAULT_MB * 1024 * 1024;
}

/** The process's one cache (shared by every qcow2 backstore's raw backing layers). */
export const goldenCache = new GoldenCache(configuredBytes());
