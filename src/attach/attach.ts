// `lunkit attach` / `lunkit detach` as a library: start a holder process
// detached and wait until its file is served, or find one by its file,
// directory or id and stop it (SIGTERM: flush, FUSE unmount), cleaning up
// after a holder that died (stale FUSE mount, state file).

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { forceUnmount, mountsAt } from '../fabrics/fuse/mountpoint.js';
import { LunkitError, isLunkitErrorCode } from '../protocols/errors.js';
import { detachDaemonLun } from './daemon-lun.js';
import { AttachError } from './errors.js';
import { HOLDER_PLAN_ENV, type HolderPlan } from './plan.js';
import { attachDir, isAlive, isHolder, listAttach, loadAttach, removeAttach, removeMadeDirs, type AttachState } from './state.js';
import { loopsOf } from './system.js';

/** The compiled holder entry (dist/attach/holder-main.js), also when this module runs from src/ under a test runner. */
export function holderMainPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return here.replace(/\/src\/attach\/[^/]+\.ts$/, '/dist/attach/holder-main.js');
  return join(here, '..', 'holder-main.js');
}

/**
 * Starts a holder for plan as a detached process and resolves with its state
 * once the file is served. Its output goes to <run>/attach/<id>.log. On
 * failure the error carries the holder's own message.
 */
export async function startDetached(plan: HolderPlan, timeoutMs = 30_000): Promise<AttachState> {
  await mkdir(attachDir(), { recursive: true });
  const logPath = join(attachDir(), `${plan.id}.log`);
  const out = openSync(logPath, 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, LUNKIT_READY_FD: '3' };
  env.UV_THREADPOOL_SIZE ??= String(availableParallelism());
  // The plan travels in the environment, not in argv: /proc/PID/cmdline is world-readable and an
  // iscsi:// URL may carry a CHAP password (environ is readable by the owner only).
  env[HOLDER_PLAN_ENV] = JSON.stringify(plan);
  const child = spawn(process.execPath, [holderMainPath(), plan.id], {
    detached: true,
    stdio: ['ignore', out, out, 'pipe'],
    env,
  });
  closeSync(out);
  const pipe = child.stdio[3] as Readable;
  const line = await new Promise<string>((res, rej) => {
    let buf = '';
    let exited: string | undefined;
    let settled = false;
    const done = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done(() => rej(new AttachError('ERR_ATTACH_START', `the attach holder did not get ready in ${timeoutMs} ms (log: ${logPath})`)));
    }, timeoutMs);
    // The reply line may still be in the pipe when 'exit' fires: decide on the pipe's end.
    const decide = (): void => {
      const nl = buf.indexOf('\n');
      if (nl >= 0) return done(() => res(buf.slice(0, nl)));
      if (exited !== undefined) {
        done(() => rej(new AttachError('ERR_ATTACH_START', `the attach holder exited (${exited}) before it was ready (log: ${logPath})`)));
      }
    };
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => {
      buf += d;
      decide();
    });
    pipe.on('close', () => {
      exited ??= 'closed its pipe';
      decide();
    });
    child.on('exit', (code, sig) => {
      exited = String(sig ?? code);
      setTimeout(decide, 200);
    });
    child.on('error', (e) => done(() => rej(new AttachError('ERR_ATTACH_START', `cannot start the attach holder: ${e.message}`, { cause: e }))));
  });
  pipe.destroy();
  child.removeAllListeners('exit');
  if (!line.startsWith('ready ')) {
    // A holder that could not start exits at once: wait for it (5 s at most) so that
    // nothing of it is left when the error reaches the user.
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          res();
        });
      });
    }
    child.unref();
    throw holderError(line);
  }
  child.unref();
  const state = await loadAttach(plan.id);
  if (!state) throw new AttachError('ERR_ATTACH_START', `the attach holder is ready but recorded no state for ${plan.id}`);
  return state;
}

/**
 * The holder's "error <CODE> <message>" line as an error with that code (e.g.
 * ERR_FUSE_MOUNTPOINT_IN_USE). A code that is not ours (a Node error of the
 * holder, ENOENT...) is ERR_ATTACH_START with the code kept in the message.
 */
function holderError(line: string): LunkitError {
  const m = /^error ([A-Z][A-Z0-9_]*) ([^]*)$/.exec(line);
  if (m && isLunkitErrorCode(m[1])) return new LunkitError(m[1], m[2]);
  if (m) return new AttachError('ERR_ATTACH_START', m[2].includes(m[1]) ? m[2] : `${m[2]} (${m[1]})`);
  return new AttachError('ERR_ATTACH_START', `unexpected holder reply ${JSON.stringify(line)}`);
}

/** Finds an attachment by id, file path or FUSE directory. */
export async function findAttach(target: string): Promise<AttachState | undefined> {
  const byId = /^[A-Za-z0-9_.-]+$/.test(target) ? await loadAttach(target).catch(() => undefined) : undefined;
  if (byId) return byId;
  const abs = resolve(target);
  return (await listAttach()).find((s) => s.file === abs || s.mountpoint === abs);
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

/** Whether pid is a zombie or gone (a detached holder's parent may not have reaped it yet). */
async function isGone(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return true;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return / Z /.test(stat.slice(stat.lastIndexOf(')')));
  } catch {
    return true;
  }
}

export interface DetachOptions {
  /** Detach even when a loop device still uses the file (it then sees I/O errors). */
  force?: boolean;
  /** How long the holder may take to flush and exit after SIGTERM (default 20 s). */
  graceMs?: number;
}

/**
 * Stops an attachment: SIGTERM to its holder (it flushes and unmounts), then
 * SIGKILL after graceMs; clears a FUSE mount left behind and removes the
 * state. Refuses with ERR_ATTACH_BUSY while a loop device uses the file.
 */
export async function detach(state: AttachState, opts: DetachOptions = {}): Promise<void> {
  if (!opts.force) {
    const loops = await loopsOf(state.file);
    if (loops.length > 0) {
      throw new AttachError('ERR_ATTACH_BUSY', `${state.file} is in use by ${loops.join(', ')}; unmount it first (lunkit umount <dir>) or pass --force`);
    }
  }
  if (state.daemon) {
    // The daemon serves the file: delete its FUSE export; clear the mount only if the daemon is gone.
    const reached = await detachDaemonLun(state);
    if (!reached && (await mountsAt(state.mountpoint).catch(() => [])).some((m) => m.source.startsWith('lunkit'))) {
      await forceUnmount(state.mountpoint);
    }
    return;
  }
  if (await isHolder(state.pid)) {
    process.kill(state.pid, 'SIGTERM');
    let gone = await waitExit(state.pid, opts.graceMs ?? 20_000);
    if (!gone) gone = await isGone(state.pid);
    if (!gone) {
      process.kill(state.pid, 'SIGKILL');
      await waitExit(state.pid, 5000);
    }
  }
  if ((await mountsAt(state.mountpoint).catch(() => [])).some((m) => m.source.startsWith('lunkit'))) {
    await forceUnmount(state.mountpoint);
  }
  await removeAttach(state.id);
  await rm(join(attachDir(), `${state.id}.log`), { force: true });
  if (state.ownsMountpoint) await rmdir(state.mountpoint).catch(() => {});
  else await removeMadeDirs(state.mountpoint, state.madeDir);
}
