// Confinement of TFTP file names to the served root. The rules, in order:
// a name with a ".." component is refused before touching the disk; a
// leading "/" is read relative to the root (tftp-hpa -s does the same); the
// real path (symlinks resolved) must still lie inside the real root; only
// regular files are opened, and the opened descriptor is checked once more
// through /proc so a directory swapped for a symlink between the check and
// the open cannot lead outside either.

import { constants as fsConstants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { TftpErrorCode } from '../protocols/tftp/index.js';

export type Refusal = { code: number; message: string; reason: string };

/**
 * The path components of a requested name, or a refusal. "." and empty
 * components are dropped, so "/a//./b" is "a/b".
 */
export function splitRequestName(name: string): string[] | Refusal {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.some((c) => c === '..')) {
    return { code: TftpErrorCode.ACCESS_VIOLATION, message: 'Access violation', reason: "'..' in file name" };
  }
  return parts;
}

export function isInside(root: string, candidate: string): boolean {
  if (candidate === root) return true;
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  return candidate.startsWith(prefix);
}

const notFound = (reason: string): Refusal => ({ code: TftpErrorCode.FILE_NOT_FOUND, message: 'File not found', reason });
const denied = (reason: string): Refusal => ({ code: TftpErrorCode.ACCESS_VIOLATION, message: 'Access violation', reason });

function refusalFor(err: unknown): Refusal {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return notFound(code);
  return denied(code ?? String(err));
}

/** Opens `parts` under the real root `rootReal`, or says why not. */
export async function openConfined(
  rootReal: string,
  parts: readonly string[],
): Promise<{ handle: FileHandle; size: number; real: string } | Refusal> {
  let real: string;
  try {
    real = await realpath(path.join(rootReal, ...parts));
  } catch (err) {
    return refusalFor(err);
  }
  if (!isInside(rootReal, real)) return denied('resolves outside the root');
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO placed in the root must not hang the server;
    // O_NOFOLLOW: the last component cannot have become a symlink since realpath.
    handle = await open(real, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    return refusalFor(err);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      await handle.close();
      return denied(st.isDirectory() ? 'is a directory' : 'not a regular file');
    }
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => null);
    if (opened !== null && !isInside(rootReal, opened)) {
      await handle.close();
      return denied('opened file lies outside the root');
    }
    return { handle, size: st.size, real };
  } catch (err) {
    await handle.close().catch(() => {});
    return refusalFor(err);
  }
}
