// bench/initiator: throughput of lunkit's iSCSI initiator (the backstore
// `lunkit attach iscsi://` uses, src/attach/throughput.ts) with 1, 2 and 4
// connections per session (MC/S) against lunkit's target (TPG parameter
// MaxConnections=8), and with 1 connection against tgtd (no MC/S), over the
// same tmpfs file with the same jobs, in one run. Prints MB/s, IOPS and the
// ratios against lunkit's 1-connection session and against tgtd. The client
// and the servers share this machine's cores; never part of a pass/fail
// test (STYLE.md §21).
//
//   node dist/tools/bench-initiator.js [--seconds 5] [--size 512] [--dir /dev/shm] [--connections 1,2,4]

import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { measureIscsiThroughput, type ThroughputJob, type ThroughputResult } from '../attach/throughput.js';
import { stopChild, waitReady } from './bench-process.js';
import { startTgtd } from './tgtd.js';

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IQN = 'iqn.2026-11.io.lunkit:bench-initiator';
const MiB = 1 << 20;

const JOBS: ThroughputJob[] = [
  { name: '1M-seqread-qd8', ioSize: MiB, depth: 8, op: 'read', random: false },
  { name: '1M-seqwrite-qd8', ioSize: MiB, depth: 8, op: 'write', random: false },
  { name: '4k-randread-qd32', ioSize: 4096, depth: 32, op: 'read', random: true },
];

async function withTgtd(image: string, run: (url: string) => Promise<void>): Promise<void> {
  const tgtd = await startTgtd({ controlBase: 100, targets: [{ iqn: IQN, luns: [image] }] });
  try {
    await run(`iscsi://127.0.0.1:${tgtd.port}/${IQN}/1`);
  } finally {
    await tgtd.stop();
  }
}

async function withLunkit(dir: string, image: string, run: (url: string) => Promise<void>): Promise<void> {
  const cfg = join(dir, 'lunkit.json');
  await writeFile(
    cfg,
    JSON.stringify({
      backstores: { bench: { type: 'file', path: image, create: false } },
      iscsi: {
        targets: {
          [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'bench' }, attributes: { generateNodeAcls: true }, parameters: { MaxConnections: '8' } } } },
        },
      },
    }),
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'lunkit.js'), 'serve', '--config', cfg, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let port = 0;
  child.stdout?.on('data', (d: Buffer) => {
    const m = /listening [\d.]+:(\d+)/.exec(d.toString());
    if (m) port = Number(m[1]);
  });
  try {
    await waitReady(child, /ready/, 30_000);
    await run(`iscsi://127.0.0.1:${port}/${IQN}/0`);
  } finally {
    await stopChild(child);
  }
}

interface Row {
  label: string;
  results: ThroughputResult[] | Error;
}

const fmt = (n: number, w: number, d = 1): string => n.toFixed(d).padStart(w);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      size: { type: 'string', default: '512' },
      dir: { type: 'string', default: '/dev/shm' },
      connections: { type: 'string', default: '1,2,4' },
    },
  });
  const seconds = Number(values.seconds);
  const counts = values.connections.split(',').map(Number);
  const dir = await mkdtemp(join(values.dir, 'lunkit-bench-init-'));
  const image = join(dir, 'disk.img');
  const rows: Row[] = [];
  // A failing configuration (say, an initiator without MC/S yet) is reported, and the others still run.
  const measure = async (label: string, url: string, connections: number): Promise<void> => {
    try {
      rows.push({ label, results: await measureIscsiThroughput({ url, connections, seconds, jobs: JOBS }) });
    } catch (e) {
      rows.push({ label, results: e as Error });
    }
  };
  try {
    // Real data, not holes, so both targets read the same pages.
    await execFileP('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', `count=${values.size}`, 'status=none'], { timeout: 120_000 });
    await withLunkit(dir, image, async (url) => {
      for (const c of counts) await measure(`lunkit c=${c}`, url, c);
    });
    await withTgtd(image, (url) => measure('tgtd c=1', url, 1));

    const lines = [
      `bench/initiator: lunkit's initiator (attach backstore, no FUSE), ${seconds} s per job, ${values.size} MiB file on ${values.dir}, node ${process.version}`,
      'job                 target          conns      MB/s      IOPS   vs lunkit c=1   vs tgtd',
    ];
    const base = rows.find((r) => r.label === `lunkit c=${counts[0]}`);
    const tgtd = rows.find((r) => r.label === 'tgtd c=1');
    const pick = (r: Row | undefined, job: string): ThroughputResult | undefined => (r && !(r.results instanceof Error) ? r.results.find((x) => x.job === job) : undefined);
    for (const job of JOBS) {
      for (const r of rows) {
        if (r.results instanceof Error) continue;
        const x = pick(r, job.name) as ThroughputResult;
        const b = pick(base, job.name);
        const t = pick(tgtd, job.name);
        lines.push(
          `${job.name.padEnd(19)} ${r.label.padEnd(15)} ${String(x.connections).padStart(5)} ${fmt(x.mbps, 9)} ${fmt(x.iops, 9, 0)} ${b ? fmt(x.mbps / b.mbps, 14, 2) + 'x' : ''.padStart(15)} ${t ? fmt(x.mbps / t.mbps, 8, 2) + 'x' : ''}`,
        );
      }
    }
    for (const r of rows) if (r.results instanceof Error) lines.push(`${r.label}: failed: ${r.results.message}`);
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-initiator: ${(e as Error).message}\n`);
  process.exit(1);
});
