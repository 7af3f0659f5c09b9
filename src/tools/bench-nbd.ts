// bench/nbd: nbdkit's file plugin and lunkit's NBD server (a `file` backstore)
// serve the same tmpfs-backed file, one after the other in one run, and the
// same client (fio's nbd engine, libnbd inside) measures them with the same
// settings:
//   - 4 KiB random reads at queue depth 32 (IOPS)
//   - 4 KiB random writes at queue depth 32 (IOPS)
//   - 128 KiB sequential reads at queue depth 32 (MB/s)
// For each, server CPU time per request comes from /proc/PID/stat (utime +
// stime before and after), steadier than IOPS on a small machine where fio
// competes for the same cores. Prints lunkit/nbdkit ratios. Never part of a
// pass/fail test (STYLE.md §21).
//
//   node dist/tools/bench-nbd.js [--seconds 10] [--size 1024] [--dir /dev/shm] [--only lunkit|nbdkit]
//       [--baseline-root DIR]   (a built tree of another revision: measured too, as "baseline")

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { fioNbd, freePort, stopChild, waitReady, type FioResult } from './bench-process.js';

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Workload {
  name: string;
  rw: 'randread' | 'randwrite' | 'read';
  bs: string;
  depth: number;
}

const WORKLOADS: Workload[] = [
  { name: '4k-randread-qd32', rw: 'randread', bs: '4k', depth: 32 },
  { name: '4k-randwrite-qd32', rw: 'randwrite', bs: '4k', depth: 32 },
  { name: '128k-seqread-qd32', rw: 'read', bs: '128k', depth: 32 },
];

type Result = FioResult;

type ServerName = 'nbdkit' | 'lunkit' | 'baseline';

function fio(uri: string, w: Workload, seconds: number, serverPid: number): Promise<Result> {
  return fioNbd({ uri, rw: w.rw, bs: w.bs, depth: w.depth, seconds, rampSeconds: 1, pid: serverPid });
}

async function waitPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await execFileP('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/`], { timeout: 5000 });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function withNbdkit(image: string, run: (uri: string, pid: number) => Promise<void>): Promise<void> {
  const port = await freePort();
  // Defaults otherwise (16 threads, parallel thread model, page cache).
  const child = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), 'file', `file=${image}`], { stdio: 'ignore' });
  try {
    await waitPort(port, 15_000);
    await run(`nbd://127.0.0.1:${port}/`, child.pid!);
  } finally {
    await stopChild(child);
  }
}

async function withLunkit(root: string, dir: string, image: string, nodeArgs: string[], run: (uri: string, pid: number) => Promise<void>): Promise<void> {
  const port = await freePort();
  const cfg = join(dir, 'lunkit.json');
  await writeFile(
    cfg,
    JSON.stringify({
      backstores: { bench: { type: 'file', path: image, create: false } },
      nbd: { listen: [`127.0.0.1:${port}`], exports: { bench: { backstore: 'bench' } } },
    }),
  );
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bin', 'lunkit.js'), 'serve', '--config', cfg, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  try {
    await waitReady(child, /ready/, 30_000);
    await run(`nbd://127.0.0.1:${port}/bench`, child.pid!);
  } finally {
    await stopChild(child);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      size: { type: 'string', default: '1024' },
      dir: { type: 'string', default: '/dev/shm' },
      only: { type: 'string' },
      /** Extra node flags for lunkit, e.g. --node-arg=--cpu-prof (repeatable). */
      'node-arg': { type: 'string', multiple: true, default: [] },
      /** A built lunkit tree of another revision (bench/nbd/run.sh --baseline-rev builds it). */
      'baseline-root': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const baselineRoot = values['baseline-root'];
  let servers: ServerName[] = values.only === 'lunkit' || values.only === 'nbdkit' ? [values.only] : ['nbdkit', 'lunkit'];
  if (baselineRoot) servers = [...servers.filter((s) => s !== 'lunkit'), 'baseline', 'lunkit'];
  const dir = await mkdtemp(join(values.dir, 'lunkit-bench-nbd-'));
  const image = join(dir, 'disk.img');
  try {
    // Real data, not holes, so both servers read the same pages.
    await execFileP('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', `count=${values.size}`, 'status=none'], { timeout: 120_000 });
    const results: Record<ServerName, Record<string, Result>> = { nbdkit: {}, lunkit: {}, baseline: {} };
    for (const s of servers) {
      const measure = async (uri: string, pid: number): Promise<void> => {
        for (const w of WORKLOADS) results[s][w.name] = await fio(uri, w, seconds, pid);
      };
      if (s === 'nbdkit') await withNbdkit(image, measure);
      else await withLunkit(s === 'baseline' && baselineRoot ? baselineRoot : ROOT, dir, image, values['node-arg'], measure);
    }
    const lines = [
      `bench/nbd: fio ${WORKLOADS.length} workloads (ioengine=nbd), ${seconds} s each, ${values.size} MiB file on ${values.dir}, node ${process.version}`,
      'workload              server    IOPS     MB/s   server CPU us/req',
    ];
    for (const w of WORKLOADS) {
      for (const s of servers) {
        const r = results[s][w.name];
        lines.push(`${w.name.padEnd(21)} ${s.padEnd(8)} ${String(r.iops).padStart(6)} ${String(r.mbps).padStart(8)} ${r.cpuUsPerReq.toFixed(1).padStart(10)}`);
      }
      const ratio = (a: ServerName, b: ServerName): void => {
        const x = results[a][w.name];
        const y = results[b][w.name];
        if (!x || !y) return;
        lines.push(
          `${w.name.padEnd(21)} ratio ${a}/${b}: throughput ${(x.iops / y.iops).toFixed(2)}x, CPU per request ${(x.cpuUsPerReq / y.cpuUsPerReq).toFixed(2)}x`,
        );
      };
      if (servers.includes('nbdkit')) ratio('lunkit', 'nbdkit');
      if (servers.includes('nbdkit') && baselineRoot) ratio('baseline', 'nbdkit');
      if (baselineRoot) ratio('lunkit', 'baseline');
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-nbd: ${(e as Error).message}\n`);
  process.exit(1);
});
