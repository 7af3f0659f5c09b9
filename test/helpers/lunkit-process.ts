// Starts the real `lunkit` executable (bin/lunkit.js, built by setup.sh) as a
// child process for tests, and stops it by PID. Ports are picked by the OS
// (portal "127.0.0.1:0"); the process prints "listening host:port".

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const LUNKIT_BIN = join(ROOT, 'bin', 'lunkit.js');

export interface LunkitProcess {
  child: ChildProcess;
  dir: string;
  host: string;
  port: number;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM, wait for exit (SIGKILL after 10 s); returns the exit code. */
  stop(): Promise<number | null>;
}

export async function startLunkit(args: string[], opts: { ready?: RegExp; timeoutMs?: number; dir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LunkitProcess> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'lunkit-test-')));
  const child = spawn(process.execPath, [LUNKIT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, ...(opts.env ? { env: opts.env } : {}) });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = opts.ready ?? /^ready$/m;
  try {
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`lunkit not ready in time.\nstdout:\n${out}\nstderr:\n${err}`)), opts.timeoutMs ?? 20_000);
      const check = (): void => {
        if (ready.test(out)) {
          clearTimeout(t);
          res();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(t);
        rej(new Error(`lunkit exited with ${code}.\nstdout:\n${out}\nstderr:\n${err}`));
      });
    });
  } catch (e) {
    // Not ready (or exited): leave no process and no directory behind.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const m = /listening ([\d.]+):(\d+)/.exec(out) ?? /iscsi:\/\/([\d.]+):(\d+)\//.exec(out);
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
    return child.exitCode;
  };
  return { child, dir, host: m?.[1] ?? '127.0.0.1', port: Number(m?.[2] ?? 0), stdout: () => out, stderr: () => err, stop };
}

/** Writes a config into a fresh directory and starts `lunkit serve` on it. */
export async function serveConfig(config: (dir: string) => unknown): Promise<LunkitProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-test-'));
  const path = join(dir, 'lunkit.json');
  await writeFile(path, JSON.stringify(config(dir)));
  const p = await startLunkit(['serve', '--config', path, '--log-level', 'warn'], { dir }).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  const stop = p.stop;
  p.stop = async () => {
    const code = await stop();
    await rm(dir, { recursive: true, force: true });
    return code;
  };
  return p;
}
