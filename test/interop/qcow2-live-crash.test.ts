// SIGKILL of `lunkit daemon` in the middle of `backstore commit` or
// `backstore reset` on a qcow2 overlay (live.ts): commit writes into the
// backing file while the top still covers every byte it writes, and reset
// renames a complete new image over the old one, so after a kill at any
// moment `qemu-img check` finds no corruption and the image reads as the LU
// did before the operation (commit), or either before or after it (reset).
// Seeded (LUNKIT_CRASH_SEED); needs the build (dist/).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/daemon/control-client.js';
import { NbdClient } from '../../src/nbd-client/index.js';
import { ROOT, startLunkit, type LunkitProcess } from '../helpers/lunkit-process.js';
import { rng } from '../unit/qcow2/helpers.js';

const CYCLES = Number(process.env.LUNKIT_LIVE_CRASH_CYCLES ?? 8);
const SEED = Number(process.env.LUNKIT_CRASH_SEED ?? Date.now() % 1_000_000);
const MiB = 1 << 20;
const SIZE = 32 * MiB;

let dir = '';
const procs = new Set<LunkitProcess>();

beforeAll(() => {
  const built = path.join(ROOT, 'dist', 'cli', 'index.js');
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run npx tsc -p tsconfig.build.json first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-qcow2-live-crash-'));
});

afterAll(() => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) process.kill(p.child.pid!, 'SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function tool(cmd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function content(image: string): Buffer {
  const out = path.join(dir, 'read.raw');
  const r = tool('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, out]);
  if (r.status !== 0) throw new Error(r.out);
  const b = fs.readFileSync(out);
  fs.rmSync(out);
  return b;
}

describe('SIGKILL during a live commit or reset of a qcow2 backstore', () => {
  it(`${CYCLES} kills: no corruption, the image reads as the LU did`, async () => {
    const base = path.join(dir, 'base.raw');
    const image = path.join(dir, 'top.qcow2');
    const sock = path.join(dir, 'control.sock');
    const nbdSock = path.join(dir, 'nbd.sock');
    const config = path.join(dir, 'lunkit.json');
    expect(tool('qemu-img', ['create', '-q', '-f', 'raw', base, String(SIZE)]).status).toBe(0);
    expect(tool('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', '-o', 'cluster_size=16384', image]).status).toBe(0);
    fs.writeFileSync(config, JSON.stringify({ backstores: { top: { type: 'qcow2', path: image } }, nbd: { listen: [`unix:${nbdSock}`], exports: { top: { backstore: 'top' } } } }));
    let interrupted = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const seed = SEED * 100 + cycle;
      const r = rng(seed);
      const op = cycle % 3 === 2 ? 'backstore.reset' : 'backstore.commit';
      const p = await startLunkit(['daemon', '--socket', sock, '--config', config, '--log-level', 'warn'], { dir });
      procs.add(p);
      // The daemon's open removed the temporary image of a reset the previous kill interrupted.
      expect(fs.readdirSync(dir).filter((f) => f.includes('.reset-'))).toEqual([]);
      const nbd = await NbdClient.connect(`nbd+unix:///top?socket=${nbdSock}`);
      // 8..24 MiB of new data in 64 KiB..1 MiB pieces, then flushed.
      const pieces = 8 + Math.floor(r() * 16);
      for (let i = 0; i < pieces; i++) {
        const len = 65536 * (1 + Math.floor(r() * 16));
        const off = Math.floor(r() * ((SIZE - len) / 512)) * 512;
        await nbd.write(Buffer.alloc(len, 1 + Math.floor(r() * 250)), off);
      }
      await nbd.flush();
      const before = await nbd.read(0, SIZE);
      nbd.destroy();
      const control = await ControlClient.connect(sock);
      const killAfter = Math.floor(r() * 40);
      const call = control.call(op, { name: 'top' }).then(
        () => true,
        () => false,
      );
      await new Promise((res) => setTimeout(res, killAfter));
      const exited = new Promise<void>((res) => p.child.once('exit', () => res()));
      process.kill(p.child.pid!, 'SIGKILL');
      await exited;
      procs.delete(p);
      const finished = await call;
      control.close();
      if (!finished) interrupted++;

      const context = `seed ${seed} (LUNKIT_CRASH_SEED=${SEED}, cycle ${cycle}, ${op}, killed after ${killAfter} ms, ${finished ? 'finished' : 'interrupted'})`;
      const res = tool('qemu-img', ['check', '--output=json', image]);
      const report = JSON.parse(res.out.slice(res.out.indexOf('{'))) as { corruptions?: number };
      expect(res.out, context).not.toMatch(/ERROR/);
      expect(report.corruptions ?? 0, `${context}: ${res.out}`).toBe(0);
      expect([0, 3], `${context}: ${res.out}`).toContain(res.status); // 3: leaked clusters only
      const after = content(image);
      if (op === 'backstore.commit') {
        expect(after.equals(before), `${context}: the image no longer reads as the LU did`).toBe(true);
      } else {
        expect(after.equals(before) || after.equals(fs.readFileSync(base)), `${context}: neither the old nor the reset image`).toBe(true);
      }
    }
    console.log(`qcow2 live crash: ${CYCLES} cycles, seed ${SEED}: ${interrupted} operations interrupted by the kill`);
  }, Math.max(60_000, CYCLES * 20_000));
});
