// The system tools `lunkit mount` drives: losetup(8), mkfs, mount(8),
// umount(8). Each failure becomes an AttachError ERR_MOUNT_STEP naming the
// step and carrying the tool's own message.

import { execFile } from 'node:child_process';
import { AttachError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return res({ code: 0, stdout, stderr });
      const c = (err as { code?: unknown }).code;
      res({ code: typeof c === 'number' ? c : 127, stdout, stderr: stderr || err.message });
    });
  });
}

async function step(what: string, cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new AttachError('ERR_MOUNT_STEP', `${what} failed: ${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}

/** losetup --find --show: attaches file to a free loop device and returns its path. */
export async function loopAttach(file: string, opts: { readOnly?: boolean; directIo?: boolean } = {}): Promise<string> {
  const args = ['--find', '--show'];
  if (opts.readOnly) args.push('--read-only');
  if (opts.directIo) args.push('--direct-io=on');
  const out = await step('attaching a loop device', 'losetup', [...args, file]);
  const dev = out.trim();
  if (!/^\/dev\/loop\d+$/.test(dev)) throw new AttachError('ERR_MOUNT_STEP', `losetup printed ${JSON.stringify(dev)}, not a loop device`);
  return dev;
}

export async function loopDetach(dev: string): Promise<void> {
  await step('detaching the loop device', 'losetup', ['-d', dev]);
}

/** Loop devices whose backing file is file (losetup -j). */
export async function loopsOf(file: string): Promise<string[]> {
  const r = await run('losetup', ['-j', file]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => /^(\/dev\/loop\d+):/.exec(l)?.[1])
    .filter((d): d is string => d !== undefined);
}

/** Backing file of a loop device, or undefined when it is not attached. */
export async function loopBackingFile(dev: string): Promise<string | undefined> {
  const r = await run('losetup', ['--list', '--noheadings', '--raw', '--output', 'BACK-FILE', dev]);
  if (r.code !== 0) return undefined;
  const f = r.stdout.trim();
  return f.length > 0 ? f.replace(/ \(deleted\)$/, '') : undefined;
}

export type MkfsType = 'ext4' | 'xfs';

export async function mkfs(type: MkfsType, dev: string): Promise<void> {
  if (type === 'ext4') await step('mkfs.ext4', 'mkfs.ext4', ['-q', '-F', dev]);
  else await step('mkfs.xfs', 'mkfs.xfs', ['-q', '-f', dev]);
}

export async function mountDev(dev: string, dir: string, opts: { fsType?: string | undefined; options?: string | undefined; readOnly?: boolean }): Promise<void> {
  const args: string[] = [];
  if (opts.fsType) args.push('-t', opts.fsType);
  if (opts.options) args.push('-o', opts.options);
  if (opts.readOnly) args.push('-r');
  await step('mounting the filesystem', 'mount', [...args, dev, dir]);
}

/** umount(8); lazily (-l) when asked, for a filesystem whose device is already gone. */
export async function umountDir(dir: string, lazy = false): Promise<void> {
  await step('unmounting the filesystem', 'umount', lazy ? ['-l', dir] : [dir]);
}
