// Mount point hygiene for the FUSE fabric. A FUSE server that died (SIGKILL,
// crash) leaves its mount in place: every stat of the directory then fails
// with ENOTCONN ("Transport endpoint is not connected") and a new mount on it
// fails. Before mounting we look the directory up in /proc/self/mountinfo;
// a mount whose server is gone is cleared with `umount -l`, a live one
// is refused with a message naming it.
//
// The directory is probed with stat(1) in a child process with a time limit:
// a FUSE server that is alive but stuck would block a stat forever, and a
// blocked libuv thread (or main thread) in this process is worse than a
// killed child.

import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { LunkitError } from '../../protocols/errors.js';

export interface MountInfoEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Undoes the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) of /proc mount tables. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)): fields 5 (mount point), then after " - ": type and source. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right.length < 2) continue;
    out.push({ mountPoint: unescapeMount(left[4]), fsType: right[0], source: unescapeMount(right[1]) });
  }
  return out;
}

/** Mounts whose mount point is exactly dir (resolved), most recent last. */
export async function mountsAt(dir: string): Promise<MountInfoEntry[]> {
  const abs = resolve(dir);
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return parseMountInfo(text).filter((m) => m.mountPoint === abs);
}

export function isFuseType(fsType: string): boolean {
  return fsType === 'fuse' || fsType.startsWith('fuse.') || fsType === 'fuseblk';
}

/** 'enotconn': the mount's server is gone (ENOTCONN or ECONNABORTED). */
export type ProbeResult = 'ok' | 'enotconn' | 'enoent' | 'timeout' | 'error';

/** stat(1) on path in a child, killed after timeoutMs. */
export function probePath(path: string, timeoutMs = 3000): Promise<ProbeResult> {
  return new Promise((res) => {
    execFile('stat', ['-c', '%i', '--', path], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (!err) return res('ok');
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      if (e.killed) return res('timeout');
      // ENOTCONN, or ECONNABORTED ("Software caused connection abort") for a
      // connection the kernel aborted, e.g. when its server died while a loop
      // device had the file open: both mean nobody serves this mount.
      if (/not connected|connection abort/i.test(stderr)) return res('enotconn');
      if (/No such file/i.test(stderr)) return res('enoent');
      res('error');
    });
  });
}

/** Runs a command, resolving with its exit code and stderr (never rejects for a non-zero exit). */
export function runCommand(cmd: string, args: string[], timeoutMs = 10000): Promise<{ code: number; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (!err) return res({ code: 0, stderr });
      const code = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      res({ code, stderr: stderr || err.message });
    });
  });
}

/** Lazily unmounts a FUSE mount (umount -l: we run as root, no fusermount needed). */
export async function forceUnmount(dir: string): Promise<void> {
  const u = await runCommand('umount', ['-l', '--', dir]);
  if (u.code !== 0) throw new LunkitError('ERR_FUSE_UNMOUNT', `cannot clear the mount at ${dir}: ${u.stderr.trim()}`);
}

export interface PrepareResult {
  /** A stale FUSE mount (dead server) was found and cleared. */
  clearedStale: boolean;
  /**
   * Loop devices that were using a file of a cleared stale mount. They stay
   * (the user made them, a filesystem may sit on them) but fail every I/O
   * from now on: a FUSE connection cannot be taken over by a new server.
   */
  staleLoops: LoopDevice[];
}

export interface LoopDevice {
  /** e.g. /dev/loop0 */
  device: string;
  /** Its backing file as the kernel reports it. */
  file: string;
  /** Mount points of filesystems mounted from the device. */
  mountedOn: string[];
}

/**
 * Loop devices whose backing file lies under dir, from
 * /sys/block/loopN/loop/backing_file (present only for attached devices).
 * Must be read before a stale mount is cleared: after the lazy unmount the
 * kernel reports the file relative to the detached mount ("/disk0").
 */
export async function loopDevicesUnder(dir: string): Promise<LoopDevice[]> {
  const prefix = `${resolve(dir)}/`;
  const names = await readdir('/sys/block').catch(() => [] as string[]);
  const out: LoopDevice[] = [];
  for (const n of names) {
    if (!/^loop\d+$/.test(n)) continue;
    const file = await readFile(`/sys/block/${n}/loop/backing_file`, 'utf8').then((t) => t.replace(/\n$/, ''), () => '');
    if (file.startsWith(prefix)) out.push({ device: `/dev/${n}`, file, mountedOn: [] });
  }
  if (out.length > 0) {
    const table = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''));
    for (const l of out) l.mountedOn = table.filter((m) => m.source === l.device).map((m) => m.mountPoint);
  }
  return out;
}

/**
 * Makes dir ready for a new FUSE mount: creates it (when mkdir), clears the
 * stale FUSE mounts of dead servers stacked on it, and refuses a live mount
 * with ERR_FUSE_MOUNTPOINT_IN_USE.
 */
export async function prepareMountpoint(dir: string, opts: { mkdir?: boolean } = {}): Promise<PrepareResult> {
  const abs = resolve(dir);
  let clearedStale = false;
  const staleLoops: LoopDevice[] = [];
  const clearStale = async (): Promise<void> => {
    for (const l of await loopDevicesUnder(abs)) if (!staleLoops.some((s) => s.device === l.device)) staleLoops.push(l);
    await forceUnmount(abs);
    clearedStale = true;
  };
  // Stacked stale mounts are possible (several crashes): clear them one by one.
  for (let round = 0; round < 8; round++) {
    const mounts = await mountsAt(abs);
    const probe = await probePath(abs);
    if (mounts.length === 0) {
      if (probe === 'enotconn') {
        // Mounted in another namespace view but dead here: clear it anyway.
        await clearStale();
        continue;
      }
      if (probe === 'enoent') {
        if (!opts.mkdir) throw new LunkitError('ERR_FUSE_MOUNTPOINT', `mount point ${abs} does not exist`);
        await mkdir(abs, { recursive: true });
      }
      return { clearedStale, staleLoops };
    }
    const top = mounts[mounts.length - 1];
    // The kernel answers a stat of the mount root from cached attributes for
    // a while after its server died (attr_timeout), so also look up a name
    // that cannot be cached: a dead server gives ENOTCONN, a live one ENOENT.
    const lookup = isFuseType(top.fsType) && probe !== 'enotconn' ? await probePath(join(abs, `.lunkit-probe-${randomBytes(6).toString('hex')}`)) : probe;
    if (isFuseType(top.fsType) && (probe === 'enotconn' || lookup === 'enotconn')) {
      await clearStale();
      continue;
    }
    const what = `${top.fsType} from ${top.source}`;
    if (probe === 'timeout' || lookup === 'timeout') {
      throw new LunkitError(
        'ERR_FUSE_MOUNTPOINT_IN_USE',
        `mount point ${abs} is in use by ${what} whose server does not answer; if it is dead, run: umount -l ${abs}`,
      );
    }
    throw new LunkitError('ERR_FUSE_MOUNTPOINT_IN_USE', `mount point ${abs} is in use by a live mount (${what}); unmount it first`);
  }
  throw new LunkitError('ERR_FUSE_MOUNTPOINT_IN_USE', `mount point ${abs}: too many stale mounts`);
}
