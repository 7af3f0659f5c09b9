// Shared helpers for the FUSE integration tests: run the attach/mount CLI in
// child processes (FUSE is always served by another process than the test),
// and find what they leave behind.

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('./lunkit-fuse-cli.mjs', import.meta.url));

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((res) => {
    execFile(cmd, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const c = (err as { code?: unknown } | null)?.code;
      res({ code: err ? (typeof c === 'number' ? c : 1) : 0, stdout, stderr });
    });
  });
}

export function lunkit(runDir: string, args: string[], timeoutMs = 60_000): Promise<Ran> {
  return run(process.execPath, [CLI, ...args], { ...process.env, LUNKIT_RUN_DIR: runDir }, timeoutMs);
}

export async function mountLines(): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter(Boolean);
}

/** Mounts whose mount point or source lies under prefix. */
export async function mountsUnder(prefix: string): Promise<string[]> {
  return (await mountLines()).filter((l) => l.split(' ').slice(0, 2).some((f) => f.startsWith(prefix)));
}

/** Loop devices whose backing file lies under prefix (losetup -a). */
export async function loopsUnder(prefix: string): Promise<string[]> {
  const r = await run('losetup', ['-a']);
  return r.stdout.split('\n').filter((l) => l.includes(`(${prefix}`));
}

export async function holderPids(runDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const [cmd, env] = await Promise.all([readFile(`/proc/${p}/cmdline`, 'utf8'), readFile(`/proc/${p}/environ`, 'utf8')]);
      if (cmd.includes('holder-main') && env.includes(`LUNKIT_RUN_DIR=${runDir}`)) pids.push(Number(p));
    } catch {
      // gone
    }
  }
  return pids;
}

/**
 * Test cleanup after a failed run: SIGKILL the attach holders of `runDir` (by
 * PID, found through their environment) and lazily unmount the FUSE mounts
 * left under `base`.
 */
export async function killHoldersAndFuseMounts(runDir: string, base: string): Promise<void> {
  for (const pid of await holderPids(runDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const m of await mountsUnder(base)) await run('umount', ['-l', m.split(' ')[1]]);
}

/** Writes a tree of files with random contents; returns relative path -> sha256. */
export async function writeTree(root: string, seed: number): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  const sizes = [0, 1, 511, 4096, 65537, 1 << 20, 3 * (1 << 20) + 17];
  for (let d = 0; d < 4; d++) {
    const dir = join(root, `dir${seed}-${d}`, 'sub');
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < sizes.length; i++) {
      const data = randomBytes(sizes[(i + d) % sizes.length]);
      const rel = join(`dir${seed}-${d}`, 'sub', `f${i}.bin`);
      await writeFile(join(root, rel), data);
      sums.set(rel, createHash('sha256').update(data).digest('hex'));
    }
  }
  return sums;
}

export async function checkTree(root: string, sums: Map<string, string>): Promise<string[]> {
  const bad: string[] = [];
  for (const [rel, sum] of sums) {
    const got = createHash('sha256').update(await readFile(join(root, rel))).digest('hex');
    if (got !== sum) bad.push(rel);
  }
  return bad;
}

export async function waitFor(cond: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond();
}
