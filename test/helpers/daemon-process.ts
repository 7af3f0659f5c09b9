// A real `lunkit daemon` on a Unix socket in a temp directory, and the real CLI
// (bin/lunkit.js, needs `npm run build`) run against it. The daemon prints
// "control socket PATH" and "ready" when it is up.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LUNKIT_BIN, startLunkit, type LunkitProcess } from './lunkit-process.js';

export interface DaemonProcess extends LunkitProcess {
  socket: string;
}

/**
 * Starts `lunkit daemon --socket DIR/s.sock [--config FILE]`. With `dir` the
 * directory is the caller's (kept after stop), else a fresh one removed on stop.
 */
export async function startDaemon(opts: { dir?: string; config?: string; args?: string[] } = {}): Promise<DaemonProcess> {
  const own = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'lunkit-d-')));
  const socket = join(dir, 's.sock');
  const args = ['daemon', '--socket', socket, '--log-level', 'warn', ...(opts.config ? ['--config', opts.config] : []), ...(opts.args ?? [])];
  try {
    const p = await startLunkit(args, { dir });
    const stop = p.stop;
    p.stop = async () => {
      const code = await stop();
      if (own) await rm(dir, { recursive: true, force: true });
      return code;
    };
    return { ...p, socket };
  } catch (e) {
    if (own) await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `lunkit ARGS` to completion (LUNKIT_SOCKET = socket), time-boxed. */
export function runCli(socket: string | undefined, args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    if (socket) env.LUNKIT_SOCKET = socket;
    else delete env.LUNKIT_SOCKET;
    const child = spawn(process.execPath, [LUNKIT_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lunkit ${args.join(' ')} did not finish in time\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like runCli, but throws with the output unless the exit code is 0. */
export async function cliOk(socket: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await runCli(socket, args, opts);
  if (r.code !== 0) throw new Error(`lunkit ${args.join(' ')} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r.stdout;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for portals the CLI names). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}
