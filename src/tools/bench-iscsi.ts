// bench/iscsi: tgtd (Debian's tgt) and lunkit serve the same tmpfs-backed file,
// one after the other in one run, and the same clients measure them with the
// same settings:
//   - 4 KiB random reads at queue depth 32 (IOPS; libiscsi's iscsi-perf)
//   - 128 KiB sequential reads at queue depth 32 (MB/s; iscsi-perf)
//   - 128 KiB sequential writes at queue depth 32 (MB/s; qemu-img bench -w,
//     QEMU's iSCSI driver, which is libiscsi too)
// For each, server CPU time per request is read from /proc/PID/stat (utime +
// stime before and after), which is steadier than IOPS on a 2-core machine
// where the client competes for the same cores. Prints lunkit/tgtd ratios.
// Never part of a pass/fail test (STYLE.md §21).
//
//   node dist/tools/bench-iscsi.js [--seconds 10] [--size 1024] [--dir /dev/shm]
//       [--baseline-root DIR]   (a built tree of another revision: measured too, as "baseline")

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { LunkitError } from '../protocols/errors.js';
import { CLK_TCK, cpuTicks, stopChild, waitReady } from './bench-process.js';
import { startTgtd } from './tgtd.js';

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IQN = 'iqn.2026-11.io.lunkit:bench';

interface Workload {
  name: string;
  blocks: number;
  random: boolean;
  depth: number;
  /** Writes go through qemu-img bench (iscsi-perf only reads). */
  write?: boolean;
}

const WORKLOADS: Workload[] = [
  { name: '4k-randread-qd32', blocks: 8, random: true, depth: 32 },
  { name: '128k-seqread-qd32', blocks: 256, random: false, depth: 32 },
  { name: '128k-seqwrite-qd32', blocks: 256, random: false, depth: 32, write: true },
];

/** qemu-img bench is count-based: requests per second of --seconds asked for (about what both servers manage here). */
const WRITE_REQUESTS_PER_SECOND = 3000;

interface Result {
  iops: number;
  mbps: number;
  cpuUsPerReq: number;
}

async function perf(url: string, w: Workload, seconds: number, serverPid: number): Promise<Result> {
  if (w.write) return writeBench(url, w, seconds, serverPid);
  const args = ['-m', String(w.depth), '-b', String(w.blocks), '-t', String(seconds), ...(w.random ? ['-r'] : []), url];
  const before = await cpuTicks(serverPid);
  const { stdout } = await execFileP('iscsi-perf', args, { timeout: (seconds + 30) * 1000, maxBuffer: 16 << 20 });
  const after = await cpuTicks(serverPid);
  const m = /iops average (\d+) \((\d+) MB\/s\)\s*$/m.exec(stdout.replace(/\r/g, '\n'));
  if (!m) throw new LunkitError('ERR_TOOL_PEER', `iscsi-perf printed no average:\n${stdout.slice(-500)}`);
  const iops = Number(m[1]);
  const requests = iops * seconds;
  const cpuUs = ((after - before) / CLK_TCK) * 1e6;
  return { iops, mbps: Number(m[2]), cpuUsPerReq: requests ? cpuUs / requests : NaN };
}

/** Sequential writes with qemu-img bench (wraps at the end of the LU), timed by qemu-img itself. */
async function writeBench(url: string, w: Workload, seconds: number, serverPid: number): Promise<Result> {
  const bytes = w.blocks * 512;
  const count = WRITE_REQUESTS_PER_SECOND * seconds;
  const args = ['bench', '-f', 'raw', '-w', '-t', 'none', '-d', String(w.depth), '-s', String(bytes), '-S', String(bytes), '-c', String(count), url];
  const before = await cpuTicks(serverPid);
  const { stdout } = await execFileP('qemu-img', args, { timeout: (seconds * 10 + 60) * 1000, maxBuffer: 16 << 20 });
  const after = await cpuTicks(serverPid);
  const m = /Run completed in ([\d.]+) seconds/.exec(stdout);
  if (!m) throw new LunkitError('ERR_TOOL_PEER', `qemu-img bench printed no time:\n${stdout.slice(-500)}`);
  const iops = Math.round(count / Number(m[1]));
  const cpuUs = ((after - before) / CLK_TCK) * 1e6;
  return { iops, mbps: Math.round((iops * bytes) / 1e6), cpuUsPerReq: cpuUs / count };
}

async function withTgtd(image: string, run: (url: string, pid: number) => Promise<void>): Promise<void> {
  const tgtd = await startTgtd({ controlBase: 100, targets: [{ iqn: IQN, luns: [image] }] });
  try {
    await run(`iscsi://127.0.0.1:${tgtd.port}/${IQN}/1`, tgtd.pid);
  } finally {
    await tgtd.stop();
  }
}

async function withLunkit(root: string, dir: string, image: string, run: (url: string, pid: number) => Promise<void>): Promise<void> {
  const cfg = join(dir, 'lunkit.json');
  await writeFile(
    cfg,
    JSON.stringify({
      backstores: { bench: { type: 'file', path: image, create: false } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'bench' }, attributes: { generateNodeAcls: true } } } } } },
    }),
  );
  const child = spawn(process.execPath, [join(root, 'bin', 'lunkit.js'), 'serve', '--config', cfg, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  let port = 0;
  child.stdout?.on('data', (d: Buffer) => {
    const m = /listening [\d.]+:(\d+)/.exec(d.toString());
    if (m) port = Number(m[1]);
  });
  try {
    await waitReady(child, /ready/, 30_000);
    await run(`iscsi://127.0.0.1:${port}/${IQN}/0`, child.pid!);
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
      /** A built lunkit tree of another revision (bench/iscsi/run.sh --baseline-rev builds it). */
      'baseline-root': { type: 'string' },
    },
  });
  const baselineRoot = values['baseline-root'];
  const servers = baselineRoot ? (['tgtd', 'baseline', 'lunkit'] as const) : (['tgtd', 'lunkit'] as const);
  const seconds = Number(values.seconds);
  const dir = await mkdtemp(join(values.dir, 'lunkit-bench-'));
  const image = join(dir, 'disk.img');
  try {
    // Real data, not holes, so both servers read the same pages.
    await execFileP('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', `count=${values.size}`, 'status=none'], { timeout: 120_000 });
    const results: Record<string, Record<string, Result>> = { tgtd: {}, lunkit: {}, baseline: {} };
    for (const s of servers) {
      const measure = async (url: string, pid: number): Promise<void> => {
        for (const w of WORKLOADS) results[s][w.name] = await perf(url, w, seconds, pid);
      };
      if (s === 'tgtd') await withTgtd(image, measure);
      else await withLunkit(s === 'baseline' && baselineRoot ? baselineRoot : ROOT, dir, image, measure);
    }
    const lines = [
      `bench/iscsi: iscsi-perf, ${seconds} s per run, ${values.size} MiB file on ${values.dir}, node ${process.version}`,
      'workload              server   IOPS     MB/s   server CPU us/req',
    ];
    for (const w of WORKLOADS) {
      for (const s of servers) {
        const r = results[s][w.name];
        lines.push(`${w.name.padEnd(21)} ${s.padEnd(8)} ${String(r.iops).padStart(6)} ${String(r.mbps).padStart(8)} ${r.cpuUsPerReq.toFixed(1).padStart(10)}`);
      }
      const ratio = (a: string, b: string): void => {
        const x = results[a][w.name];
        const y = results[b][w.name];
        lines.push(`${w.name.padEnd(21)} ratio ${a}/${b}: throughput ${(x.iops / y.iops).toFixed(2)}x, CPU per request ${(x.cpuUsPerReq / y.cpuUsPerReq).toFixed(2)}x`);
      };
      ratio('lunkit', 'tgtd');
      if (baselineRoot) {
        ratio('baseline', 'tgtd');
        ratio('lunkit', 'baseline');
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-iscsi: ${(e as Error).message}\n`);
  process.exit(1);
});
