// State of attachments and mounts under the run directory, so `lunkit detach`
// and `lunkit umount` (other processes, later) can undo what attach and mount
// did, also after a crash:
//   <run>/attach/<id>.json   one holder process (pid, FUSE mount point, file)
//   <run>/attach/<id>/       its default FUSE mount point
//   <run>/mounts/<key>.json  one `lunkit mount` (dir, loop device, attach id)
//   <run>/daemon-luns/<key>/ FUSE mount point a daemon serves a `lunkit:` LUN on
// <run> is /run/lunkit, or LUNKIT_RUN_DIR (tests).
// Files are replaced atomically (write temp, rename) so a reader never sees half.

import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import type { InitiatorSessionInfo } from '../backstores/iscsi/session-info.js';
import type { AttachSource } from './source.js';

export type { InitiatorConnectionInfo, InitiatorSessionInfo } from '../backstores/iscsi/session-info.js';

export function runDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LUNKIT_RUN_DIR && env.LUNKIT_RUN_DIR.length > 0 ? resolve(env.LUNKIT_RUN_DIR) : '/run/lunkit';
}

export const attachDir = (): string => join(runDir(), 'attach');
export const mountsDir = (): string => join(runDir(), 'mounts');

export interface AttachState {
  id: string;
  /** The holder process serving the FUSE mount. */
  pid: number;
  source: AttachSource;
  /** FUSE mount point (a directory). */
  mountpoint: string;
  /** The file that shows the source: mountpoint + "/" + name. */
  file: string;
  readOnly: boolean;
  /** The mount point was created under the run directory and is removed on detach. */
  ownsMountpoint: boolean;
  /**
   * A mount point given by the user (`[file]`) that attach created with
   * mkdir -p: the first directory made. Detach removes the mount point and
   * its parents up to this one, each only if empty.
   */
  madeDir?: string | undefined;
  startedAt: string;
  /** iscsi:// sources: the session the holder holds, rewritten on the session's recovery events. */
  initiator?: InitiatorSessionInfo | undefined;
  /** lunkit:<backstore> sources: the daemon serves the file (pid is 0); its FUSE export to delete on detach. */
  daemon?: { socket: string; name: string; mountpoint: string; added: boolean } | undefined;
}

export interface MountState {
  /** The directory the filesystem is mounted on. */
  dir: string;
  /** Attachment that provides the FUSE file. */
  attachId?: string | undefined;
  file?: string | undefined;
  /** Loop device made by losetup, e.g. /dev/loop3. */
  loop?: string | undefined;
  /** mount(8) succeeded. */
  mounted: boolean;
  fsType?: string | undefined;
  options?: string | undefined;
  createdAt: string;
}

async function writeAtomic(path: string, data: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function listJson<T>(dir: string): Promise<T[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: T[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    const v = await readJson<T>(join(dir, n)).catch(() => undefined);
    if (v) out.push(v);
  }
  return out;
}

export async function saveAttach(s: AttachState): Promise<void> {
  await mkdir(attachDir(), { recursive: true, mode: 0o755 });
  await writeAtomic(join(attachDir(), `${s.id}.json`), s);
}

export const loadAttach = (id: string): Promise<AttachState | undefined> => readJson<AttachState>(join(attachDir(), `${id}.json`));
export const listAttach = (): Promise<AttachState[]> => listJson<AttachState>(attachDir());

export async function removeAttach(id: string): Promise<void> {
  await rm(join(attachDir(), `${id}.json`), { force: true });
}

/** State file key of a mount directory: stable, file-name safe. */
export function mountKey(dir: string): string {
  return createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 16);
}

export async function saveMount(s: MountState): Promise<void> {
  await mkdir(mountsDir(), { recursive: true, mode: 0o755 });
  await writeAtomic(join(mountsDir(), `${mountKey(s.dir)}.json`), s);
}

export const loadMount = (dir: string): Promise<MountState | undefined> => readJson<MountState>(join(mountsDir(), `${mountKey(dir)}.json`));
export const listMounts = (): Promise<MountState[]> => listJson<MountState>(mountsDir());

export async function removeMount(dir: string): Promise<void> {
  await rm(join(mountsDir(), `${mountKey(dir)}.json`), { force: true });
}

/** True when pid names a live process (signal 0; EPERM also means alive). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when pid is alive and is a lunkit attach holder (guards against PID reuse). */
export async function isHolder(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return /holder-main|lunkit/.test(cmdline);
  } catch {
    return false;
  }
}

/** One iSCSI session held by a live attach holder (`lunkit sessions --initiator`). */
export interface HeldSession extends InitiatorSessionInfo {
  attachId: string;
  pid: number;
  file: string;
  since: string;
}

/** The iSCSI sessions held by the attach holders on this machine whose process is alive. */
export async function listHeldSessions(): Promise<HeldSession[]> {
  const out: HeldSession[] = [];
  for (const s of await listAttach()) {
    if (s.initiator === undefined || !(await isHolder(s.pid))) continue;
    out.push({ ...s.initiator, attachId: s.id, pid: s.pid, file: s.file, since: s.startedAt });
  }
  return out;
}

/**
 * Creates the mount point (mkdir -p) and returns the first directory it
 * made, or undefined when it existed (record it as AttachState.madeDir).
 */
export async function makeMountpoint(dir: string): Promise<string | undefined> {
  try {
    return await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (e) {
    // A stale FUSE mount on dir (its server was killed): mkdir -p stats it
    // and gets ENOTCONN once the kernel's cached attributes expire. The
    // directory exists; the FUSE fabric clears the stale mount next.
    if ((e as NodeJS.ErrnoException).code === 'ENOTCONN') return undefined;
    throw e;
  }
}

/**
 * Undoes makeMountpoint: removes `dir` and its parents up to `top`, each only
 * if empty (rmdir). A FUSE mount that is still going away (EBUSY) gets 2 s.
 */
export async function removeMadeDirs(dir: string, top: string | undefined): Promise<void> {
  if (top === undefined) return;
  const stop = resolve(top);
  const start = resolve(dir);
  // Only directories at or below `top`.
  if (start !== stop && (relative(stop, start).startsWith('..') || relative(stop, start) === '')) return;
  for (let d = start; ; d = dirname(d)) {
    if (!(await rmdirPatiently(d))) return;
    if (d === stop || d === dirname(d)) return;
  }
}

/** rmdir, retried while EBUSY (for 2 s); true when the directory is gone. */
async function rmdirPatiently(d: string): Promise<boolean> {
  for (let waited = 0; ; waited += 50) {
    try {
      await rmdir(d);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY' || waited >= 2000) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
