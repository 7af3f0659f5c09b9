// bench/qcow2: lunkit's qcow2 backstore behind its NBD server against
// qemu-nbd (QEMU's own qcow2 driver) on copies of the same images on tmpfs,
// the same client (fio's nbd engine) and settings, one run:
//   - a fresh overlay over a raw base (writes allocate clusters, copy on write)
//   - a fully allocated image (qemu-img convert of the base)
// and on each 4 KiB random write/read and 128 KiB sequential write/read at
// queue depth 32, in that order. Server CPU per request from /proc/PID/stat.
// Prints lunkit/qemu-nbd ratios. Never part of a pass/fail test (STYLE.md §21).
//
//   node dist/tools/bench-qcow2.js [--seconds 10] [--size 1024] [--dir /dev/shm]

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { fioNbd, freePort, stopChild, waitReady, type FioResult } from './bench-process.js';

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Workload {
  name: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  bs: string;
}

const WORKLOADS: Workload[] = [
  { name: '4k-randwrite', rw: 'randwrite', bs: '4k' },
  { name: '128k-seqwrite', rw: 'write', bs: '128k' },
  { name: '4k-randread', rw: 'randread', bs: '4k' },
  { name: '128k-seqread', rw: 'read', bs: '128k' },
];

type Result = FioResult;

type ServerName = 'qemu-nbd' | 'lunkit';

function fio(uri: string, w: Workload, seconds: number, pid: number): Promise<Result> {
  return fioNbd({ uri, rw: w.rw, bs: w.bs, depth: 32, seconds, pid });
}

async function waitNbd(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await execFileP('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/img`], { timeout: 5000 });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function withQemuNbd(image: string, run: (uri: string, pid: number) => Promise<void>): Promise<void> {
  const port = await freePort();
  // QEMU's defaults otherwise (writeback cache, thread pool AIO); several clients allowed (nbdinfo probes first).
  const child = spawn('qemu-nbd', ['-f', 'qcow2', '-t', '-e', '4', '-x', 'img', '-b', '127.0.0.1', '-p', String(port), image], { stdio: 'ignore' });
  try {
    await waitNbd(port, 15_000);
    await run(`nbd://127.0.0.1:${port}/img`, child.pid!);
  } finally {
    await stopChild(child);
  }
}

async function withLunkit(dir: string, image: string, run: (uri: string, pid: number) => Promise<void>): Promise<void> {
  const port = await freePort();
  const cfg = join(dir, 'lunkit.json');
  await writeFile(
    cfg,
    JSON.stringify({ backstores: { img: { type: 'qcow2', path: image } }, nbd: { listen: [`127.0.0.1:${port}`], exports: { img: { backstore: 'img' } } } }),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'lunkit.js'), 'serve', '--config', cfg, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await waitReady(child, /ready/, 30_000);
    await run(`nbd://127.0.0.1:${port}/img`, child.pid!);
  } finally {
    await stopChild(child);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '10' }, size: { type: 'string', default: '1024' }, dir: { type: 'string', default: '/dev/shm' } },
  });
  const seconds = Number(values.seconds);
  const dir = await mkdtemp(join(values.dir, 'lunkit-bench-qcow2-'));
  const base = join(dir, 'base.raw');
  const servers: ServerName[] = ['qemu-nbd', 'lunkit'];
  const scenarios = ['fresh overlay', 'allocated'] as const;
  const results = new Map<string, Result>();
  try {
    await execFileP('dd', ['if=/dev/urandom', `of=${base}`, 'bs=1M', `count=${values.size}`, 'status=none'], { timeout: 300_000 });
    for (const scenario of scenarios) {
      for (const s of servers) {
        // Each server gets its own copy: writes change the image.
        const image = join(dir, `${s}-${scenario === 'allocated' ? 'full' : 'fresh'}.qcow2`);
        if (scenario === 'allocated') await execFileP('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', base, image], { timeout: 300_000 });
        else await execFileP('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'raw', image], { timeout: 60_000 });
        const measure = async (uri: string, pid: number): Promise<void> => {
          for (const w of WORKLOADS) results.set(`${scenario}/${w.name}/${s}`, await fio(uri, w, seconds, pid));
        };
        if (s === 'qemu-nbd') await withQemuNbd(image, measure);
        else await withLunkit(dir, image, measure);
        await rm(image, { force: true });
      }
    }
    const lines = [
      `bench/qcow2: fio (ioengine=nbd, QD32), ${seconds} s per run, ${values.size} MiB images on ${values.dir}, node ${process.version}`,
      'scenario        workload        server     IOPS     MB/s   server CPU us/req',
    ];
    for (const scenario of scenarios) {
      for (const w of WORKLOADS) {
        for (const s of servers) {
          const r = results.get(`${scenario}/${w.name}/${s}`)!;
          lines.push(`${scenario.padEnd(15)} ${w.name.padEnd(15)} ${s.padEnd(8)} ${String(r.iops).padStart(7)} ${String(r.mbps).padStart(8)} ${r.cpuUsPerReq.toFixed(1).padStart(10)}`);
        }
        const q = results.get(`${scenario}/${w.name}/qemu-nbd`)!;
        const l = results.get(`${scenario}/${w.name}/lunkit`)!;
        lines.push(`${scenario.padEnd(15)} ${w.name.padEnd(15)} ratio lunkit/qemu-nbd: throughput ${(l.iops / q.iops).toFixed(2)}x, CPU per request ${(l.cpuUsPerReq / q.cpuUsPerReq).toFixed(2)}x`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-qcow2: ${(e as Error).message}\n`);
  process.exit(1);
});
