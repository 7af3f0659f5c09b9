// How the core moves blocks, once: the data operations that both doors share.
// The SBC handlers (UNMAP, WRITE SAME, READ/WRITE...) decode a CDB and call
// these; the block nexus (block-nexus.ts) calls them for NBD and FUSE. Which
// backstore method serves a request is decided from the backstore's declared
// caps (STYLE.md §3), never by probing for a method. Offsets and lengths are
// bytes, already range-checked and block-aligned by the caller; backstore
// errors are thrown as they come (the caller maps them with errnoToSense).

import { LunkitError } from '../protocols/errors.js';
import type { DeviceView } from './command.js';
import type { BackstoreOps, Extent } from './types.js';

/** Pattern writes go out in pieces of at most this many bytes. */
const PATTERN_CHUNK_BYTES = 1024 * 1024;

/** A method the caps promise; its absence is a backstore bug, not a SCSI condition. */
function promised<T>(fn: T | undefined, store: BackstoreOps, what: string): T {
  if (fn === undefined) {
    throw new LunkitError('ERR_BACKSTORE_CAPS', `backstore ${store.name} (${store.kind}) declares ${what} but does not implement it`);
  }
  return fn;
}

/**
 * Checks once, when a device is created, that a backstore's caps and methods
 * agree (caps are the only source of truth afterwards).
 */
export function checkCaps(store: BackstoreOps): void {
  const c = store.caps;
  if (c.canUnmap) promised(store.unmap, store, 'canUnmap');
  if (c.canWriteZeroes) promised(store.writeZeroes, store, 'canWriteZeroes');
  if (c.canExtents) promised(store.extents, store, 'canExtents');
}

/** Write `pattern` (one block) over `blocks` blocks from byte `offset`, in bounded pieces. */
export async function writePattern(dev: DeviceView, offset: number, blocks: number, pattern: Buffer, fua: boolean): Promise<void> {
  const bs = dev.blockSize;
  const per = Math.max(1, Math.min(blocks, Math.floor(PATTERN_CHUNK_BYTES / bs)));
  const chunk = Buffer.allocUnsafe(per * bs);
  for (let i = 0; i < per; i++) pattern.copy(chunk, i * bs);
  for (let done = 0; done < blocks; done += per) {
    const n = Math.min(per, blocks - done);
    await dev.backstore.write(chunk.subarray(0, n * bs), offset + done * bs, { fua });
  }
}

/**
 * Zero a range: deallocate when allowed and deallocated blocks read as
 * zeroes, else zero in place, else write zeroes.
 */
export async function zeroBytes(dev: DeviceView, offset: number, length: number, mayUnmap: boolean, fua: boolean): Promise<void> {
  const store = dev.backstore;
  const caps = store.caps;
  if (caps.canWriteZeroes) {
    await promised(store.writeZeroes, store, 'canWriteZeroes').call(store, offset, length, { mayUnmap, fua });
  } else if (mayUnmap && caps.canUnmap && caps.unmapReadsZero) {
    await promised(store.unmap, store, 'canUnmap').call(store, offset, length);
    if (fua && caps.canFlush) await store.flush();
  } else {
    await writePattern(dev, offset, length / dev.blockSize, Buffer.alloc(dev.blockSize), fua);
  }
}

/**
 * Deallocate a range of a thin LU (UNMAP, NBD TRIM). Anchored blocks stay
 * allocated (zeroed in place); without a way to deallocate, zeroes are
 * written, since LBPRZ promises they read back as zeroes.
 */
export async function deallocateBytes(dev: DeviceView, offset: number, length: number, anchor: boolean): Promise<void> {
  const store = dev.backstore;
  const caps = store.caps;
  if (caps.canWriteZeroes && (anchor || !caps.canUnmap)) {
    await promised(store.writeZeroes, store, 'canWriteZeroes').call(store, offset, length, { mayUnmap: !anchor });
  } else if (caps.canUnmap) {
    await promised(store.unmap, store, 'canUnmap').call(store, offset, length);
  } else {
    await writePattern(dev, offset, length / dev.blockSize, Buffer.alloc(dev.blockSize), false);
  }
}

/**
 * Allocation of [offset, offset+length): the backstore's real extents on a
 * thin LU that can report them, else one data extent.
 */
export async function extentsOf(dev: DeviceView, offset: number, length: number): Promise<Extent[]> {
  const store = dev.backstore;
  if (!dev.thin || !store.caps.canExtents) return [{ offset, length, hole: false }];
  return promised(store.extents, store, 'canExtents').call(store, offset, length);
}

/** Flush when the backstore has a cache to flush. */
export async function flushBackstore(dev: DeviceView): Promise<void> {
  if (dev.backstore.caps.canFlush) await dev.backstore.flush();
}
