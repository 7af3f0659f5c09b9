// bench/iscsi: tgtd (Debian's tgt) and lunkit serve the same tmpfs-backed file,
// one after the other in one run, and the same client (libiscsi's iscsi-perf)
// measures them with the same settings:
//   - 4 KiB random reads at queue depth 32 (IOPS)
//   - 128 KiB sequential reads at queue depth 32 (MB/s)
// For each, server CPU time per request is read from /proc/PID/stat (utime +
// stime before and after), which is steadier than IOPS on a 2-core machine
// where the client competes for the same cores. Prints lunkit/tgtd ratios.
// Never part of a pass/fail test (STYLE.md §21).
//
//   node dist/tools/bench-iscsi.js [--seconds 10] [--size 1G] [--dir /dev/shm]

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
}

const WORKLOADS: Workload[] = [
  { name: '4k-randread-qd32', blocks: 8, random: true, depth: 32 },
  { name: '128k-seqread-qd32', blocks: 256, random: false, depth: 32 },
];

interface Result {
  iops: number;
  mbps: number;
  cpuUsPerReq: number;
}

async function perf(url: string, w: Workload, seconds: number, serverPid: number): Promise<Result> {
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

async function withTgtd(image: string, run: (url: string, pid: number) => Promise<void>): Promise<void> {
  const tgtd = await startTgtd({ controlBase: 100, targets: [{ iqn: IQN, luns: [image] }] });
  try {
    await run(`iscsi://127.0.0.1:${tgtd.port}/${IQN}/1`, tgtd.pid);
  } finally {
    await tgtd.stop();
  }
}

async function withLunkit(dir: string, image: string, run: (url: string, pid: number) => Promise<void>): Promise<void> {
  const cfg = join(dir, 'lunkit.json');
  await writeFile(
    cfg,
    JSON.stringify({
      backstores: { bench: { type: 'file', path: image, create: false } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'bench' }, attributes: { generateNodeAcls: true } } } } } },
    }),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'lunkit.js'), 'serve', '--config', cfg, '--log-level', 'warn'], {
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
    options: { seconds: { type: 'string', default: '10' }, size: { type: 'string', default: '1024' }, dir: { type: 'string', default: '/dev/shm' } },
  });
  const seconds = Number(values.seconds);
  const dir = await mkdtemp(join(values.dir, 'lunkit-bench-'));
  const image = join(dir, 'disk.img');
  try {
    // Real data, not holes, so both servers read the same pages.
    await execFileP('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', `count=${values.size}`, 'status=none'], { timeout: 120_000 });
    const results: Record<string, Record<string, Result>> = { tgtd: {}, lunkit: {} };
    await withTgtd(image, async (url, pid) => {
      for (const w of WORKLOADS) results.tgtd[w.name] = await perf(url, w, seconds, pid);
    });
    await withLunkit(dir, image, async (url, pid) => {
      for (const w of WORKLOADS) results.lunkit[w.name] = await perf(url, w, seconds, pid);
    });
    const lines = [
      `bench/iscsi: iscsi-perf, ${seconds} s per run, ${values.size} MiB file on ${values.dir}, node ${process.version}`,
      'workload              server   IOPS     MB/s   server CPU us/req',
    ];
    for (const w of WORKLOADS) {
      for (const s of ['tgtd', 'lunkit'] as const) {
        const r = results[s][w.name];
        lines.push(`${w.name.padEnd(21)} ${s.padEnd(8)} ${String(r.iops).padStart(6)} ${String(r.mbps).padStart(8)} ${r.cpuUsPerReq.toFixed(1).padStart(10)}`);
      }
      const t = results.tgtd[w.name];
      const l = results.lunkit[w.name];
      lines.push(
        `${w.name.padEnd(21)} ratio lunkit/tgtd: throughput ${(l.iops / t.iops).toFixed(2)}x, CPU per request ${(l.cpuUsPerReq / t.cpuUsPerReq).toFixed(2)}x`,
      );
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
