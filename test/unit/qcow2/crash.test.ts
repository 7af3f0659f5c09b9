// kill -9 during a concurrent write + unmap + flush workload: after each kill,
// qemu-img check reports no corruption (leaks allowed), and every write that
// completed (no later write overlapping it) reads back. The engine runs in a
// child process from the build (dist/, which ./scripts/setup.sh makes before
// the tests run).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, qemuImg, qemuRead, rng, tmpDir } from './helpers.js';

const dir = tmpDir();
const built = path.join(import.meta.dirname, '../../../dist/backstores/qcow2/index.js');
const worker = path.join(dir, 'worker.mjs');

const WORKER = `
import { Qcow2Backstore } from '${built}';
const [file, seedArg] = process.argv.slice(2);
const s = await Qcow2Backstore.open({ name: 'crash', path: file });
let x = Number(seedArg) >>> 0 || 1;
const r = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
const sectors = s.size / 512;
let id = 0;
const inFlight = new Set();
for (;;) {
  while (inFlight.size < 32) {
    const n = ++id;
    const len = 512 * (1 + Math.floor(r() * (r() < 0.1 ? 256 : 24)));
    const off = 512 * Math.floor(r() * (sectors - len / 512));
    const unmap = r() < 0.1;
    process.stdout.write((unmap ? 'U ' : 'S ') + n + ' ' + off + ' ' + len + '\\n');
    const op = unmap ? s.unmap(off, len) : s.write(Buffer.alloc(len, (n % 255) + 1), off, { fua: r() < 0.05 });
    const p = op.then(() => {
      process.stdout.write('D ' + n + '\\n');
      inFlight.delete(p);
    });
    inFlight.add(p);
  }
  await Promise.race(inFlight);
  if (r() < 0.05) await s.flush();
}
`;

beforeAll(async () => {
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run ./scripts/setup.sh (or npx tsc -p tsconfig.build.json) first`);
  fs.writeFileSync(worker, WORKER);
}, 60_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Run the worker, kill -9 it after `ms`; resolves with its log lines. */
function runAndKill(file: string, seed: number, ms: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, file, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Kill once it is writing (first start line seen), after ms more.
    const started = setInterval(() => {
      if (out.includes('S ')) {
        clearInterval(started);
        setTimeout(() => child.kill('SIGKILL'), ms);
      }
    }, 5);
    child.on('exit', (code, signal) => {
      clearInterval(started);
      if (signal !== 'SIGKILL') reject(new Error(`worker exited ${code}: ${err}`));
      else resolve(out.split('\n'));
    });
  });
}

/**
 * Completed writes that no other write could have overwritten (none started
 * later overlaps it, none overlapping was still in flight when it started)
 * must read back.
 */
function verify(lines: string[], content: Buffer): number {
  const starts = new Map<number, { off: number; len: number; at: number; unmap: boolean }>();
  const doneAt = new Map<number, number>();
  lines.forEach((l, at) => {
    const p = l.split(' ');
    if ((p[0] === 'S' || p[0] === 'U') && p.length === 4) starts.set(Number(p[1]), { off: Number(p[2]), len: Number(p[3]), at, unmap: p[0] === 'U' });
    if (p[0] === 'D') doneAt.set(Number(p[1]), at);
  });
  let checked = 0;
  for (const id of doneAt.keys()) {
    const w = starts.get(id)!;
    let clobbered = false;
    for (const [o, v] of starts) {
      if (o === id || v.off >= w.off + w.len || w.off >= v.off + v.len) continue;
      if (o > id || (doneAt.get(o) ?? Infinity) > w.at) clobbered = true;
    }
    if (clobbered) continue;
    const want = w.unmap ? 0 : (id % 255) + 1;
    const got = content.subarray(w.off, w.off + w.len);
    if (!got.every((b) => b === want)) throw new Error(`write ${id} (${w.off}+${w.len}) did not survive the kill`);
    checked++;
  }
  return checked;
}

describe('qcow2 crash safety (kill -9)', () => {
  const cases = [
    { name: 'v3 4k clusters over a raw backing file', opts: ['-o', 'cluster_size=4096', '-b', 'base.raw', '-F', 'raw'] },
    { name: 'v2 512-byte clusters (refcount blocks and table grow)', opts: ['-o', 'cluster_size=512,compat=0.10'] },
  ];
  for (const c of cases) {
    it(`${c.name}: 10 kills, check clean of corruptions, completed writes read back`, async () => {
      fs.writeFileSync(path.join(dir, 'base.raw'), Buffer.alloc(4 << 20, 0xee));
      const f = path.join(dir, `crash-${c.opts.join('').replace(/[^a-z0-9]/gi, '')}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', ...c.opts, f, String(8 << 20));
      const r = rng(77);
      let checked = 0;
      for (let cycle = 0; cycle < 10; cycle++) {
        const lines = await runAndKill(f, cycle + 1, 20 + Math.floor(r() * 300));
        const res = check(f);
        expect(res.out).not.toMatch(/ERROR/);
        expect(res.corruptions).toBe(0);
        expect([0, 3]).toContain(res.status); // 3: leaked clusters only
        checked += verify(lines, qemuRead(f));
      }
      expect(checked).toBeGreaterThan(0);
    }, 120_000);
  }
});
