// Shared helpers for the qcow2 tests: QEMU's own tools are the oracle.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-qcow2-'));
}

export function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

/** qemu-img check: exit status and parsed JSON (corruptions, leaks). */
export function check(file: string): { status: number; corruptions: number; leaks: number; out: string } {
  const r = spawnSync('qemu-img', ['check', '--output=json', file], { encoding: 'utf8' });
  let parsed: { corruptions?: number; leaks?: number } = {};
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    // not JSON: an error message in stderr
  }
  return { status: r.status ?? -1, corruptions: parsed.corruptions ?? 0, leaks: parsed.leaks ?? 0, out: r.stdout + r.stderr };
}

/** Run qemu-io commands on an image (opened with its format, writable). */
export function qemuIo(file: string, ...cmds: string[]): string {
  const args = ['-f', 'qcow2'];
  for (const c of cmds) args.push('-c', c);
  args.push(file);
  return execFileSync('qemu-io', args, { encoding: 'utf8' });
}

/** The image's guest content as QEMU reads it (qemu-img convert -O raw). */
export function qemuRead(file: string, format = 'qcow2'): Buffer {
  const out = path.join(path.dirname(file), `${path.basename(file)}.${Math.random().toString(36).slice(2)}.raw`);
  qemuImg('convert', '-f', format, '-O', 'raw', file, out);
  const b = fs.readFileSync(out);
  fs.rmSync(out);
  return b;
}

/** A deterministic pseudo-random generator (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export function pattern(len: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i += 4) b.writeUInt32LE((r() * 0x100000000) >>> 0, i);
  return b;
}
