// Preallocating a thick file backstore in chunks that report progress (the
// daemon's `backstore create file ... --no-thin` and growing resizes show a
// bar; FileBackstore.open would do it in one call with no progress).

import { constants as fsConstants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { ProgressFn } from '../descriptor.js';
import { nativeFileOps } from './native.js';

/** Preallocation step: big enough to be quick, small enough for a smooth bar. */
const PREALLOC_CHUNK = 64 * 1024 * 1024;
/** Without the native addon, zeroes are written in pieces of this size. */
const ZERO_CHUNK = 1024 * 1024;

/**
 * Allocates [from, to) of a file in chunks, reporting each one.
 * With the native addon this is fallocate(2); without it, written zeroes.
 */
export async function preallocate(path: string, from: number, to: number, what: string, onProgress?: ProgressFn): Promise<void> {
  const native = nativeFileOps();
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
  try {
    const total = to - from;
    onProgress?.({ what, done: 0, total });
    const zeroes = native ? undefined : Buffer.alloc(ZERO_CHUNK);
    for (let off = from; off < to; ) {
      const len = Math.min(native ? PREALLOC_CHUNK : ZERO_CHUNK, to - off);
      if (native) {
        try {
          await native.fallocate(fh.fd, 0, off, len);
        } catch (err) {
          // A file system without fallocate stays sparse, as FileBackstore.open does.
          const code = (err as { code?: string }).code;
          if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'ENOSYS') {
            await fh.truncate(to);
            break;
          }
          throw err;
        }
      } else {
        await fh.write(zeroes!, 0, len, off);
      }
      off += len;
      onProgress?.({ what, done: off - from, total });
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fileExists(path: string): Promise<{ exists: boolean; size: number }> {
  try {
    const st = await stat(path);
    return { exists: true, size: st.size };
  } catch {
    return { exists: false, size: 0 };
  }
}
