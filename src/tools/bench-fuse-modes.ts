// bench/fuse-modes: the two /dev/fuse reader modes of lunkit's FUSE fabric
// measured against each other (issue 16: "measure both"), with nbdfuse as a
// calibration peer in the same run (STYLE.md §21).
//
// In this process: one ScsiCore, one 1 GiB ramdisk (512-byte blocks, the
// first --size bytes filled with random data so reads see data), exported as
// a file by one FuseFabric per variant: 'threads' (reader threads on the
// mount's fd and one clone, the old default), 'poll' (the event loop reads
// the one fd) and 'poll2' (the event loop polls the fd and a clone). The peer
// is nbdfuse over `nbdkit memory 1G` (skipped when either is missing).
// fio runs against each file in turn, the order rotating from job to job, all
// --direct=1: 4k randread psync qd1, 4k randread libaio qd32, 1M seq read
// psync, 1M seq write libaio qd8.
//
// CPU per I/O: process.cpuUsage() before and after (user+system of every
// thread of this process: the event loop, the reader threads, libuv's pool),
// divided by fio's I/O count; for nbdfuse from /proc/PID/stat of nbdfuse
// alone and of nbdfuse + nbdkit. On a 2-core machine this is steadier than
// throughput. --rounds repeats everything and the summary prints medians.
//
// Usage (as root): node dist/tools/bench-fuse-modes.js [--runtime S]
// [--rounds N] [--size 512M] [--modes threads,poll,poll2] [--no-peer]

import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RamdiskBackstore } from '../backstores/ramdisk/ramdisk.js';
import { ScsiCore } from '../core/engine.js';
import { FuseFabric } from '../fabrics/fuse/fabric.js';
import type { FuseChannelMode } from '../fabrics/fuse/kernel/channel.js';
import { LunkitError } from '../protocols/errors.js';
import { FIO_RAMP_S, fioJob, sh, waitFile, type FioJob } from './bench-fio.js';
import { cpuSeconds, freePort } from './bench-process.js';

const JOBS: FioJob[] = [
  { name: 'rand-read 4K psync qd1', rw: 'randread', bs: '4k', engine: 'psync', iodepth: 1 },
  { name: 'rand-read 4K libaio qd32', rw: 'randread', bs: '4k', engine: 'libaio', iodepth: 32 },
  { name: 'seq-read 1M psync', rw: 'read', bs: '1M', engine: 'psync', iodepth: 1 },
  { name: 'seq-write 1M libaio qd8', rw: 'write', bs: '1M', engine: 'libaio', iodepth: 8 },
];

const VARIANTS: Record<string, { mode: FuseChannelMode; threads: number }> = {
  threads: { mode: 'threads', threads: 2 },
  threads1: { mode: 'threads', threads: 1 },
  poll: { mode: 'poll', threads: 1 },
  poll2: { mode: 'poll', threads: 2 },
};

interface Result {
  mbps: number;
  iops: number;
  /** CPU (user+system) per fio I/O, in microseconds. */
  cpuUs: number;
  /** For the peer: nbdfuse + nbdkit. */
  cpuAllUs?: number;
}

interface Target {
  label: string;
  file: string;
  /** CPU seconds of what serves the file; the second figure, when given, adds the peer's NBD server. */
  cpu: () => Promise<[number, number?]>;
}

function selfCpu(): Promise<[number]> {
  const u = process.cpuUsage();
  return Promise.resolve([(u.user + u.system) / 1e6]);
}

async function fio(t: Target, job: FioJob, runtime: number, size: string): Promise<Result> {
  const r = await fioJob(t.file, job, runtime, size, async () => (await t.cpu()).filter((c): c is number => c !== undefined));
  const out: Result = { mbps: r.mbps, iops: r.iops, cpuUs: r.cpuUs[0] };
  if (r.cpuUs[1] !== undefined) out.cpuAllUs = r.cpuUs[1];
  return out;
}

function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)$/i.exec(s);
  if (!m) throw new LunkitError('EINVAL', `bad size ${s}`);
  return Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cell(v: string, w: number, left = false): string {
  return left ? v.padEnd(w) : v.padStart(w);
}

async function commandExists(cmd: string): Promise<boolean> {
  return sh('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: string): string => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
  };
  const runtime = Number(opt('--runtime', '5'));
  const rounds = Number(opt('--rounds', '3'));
  const size = opt('--size', '512M');
  const fill = parseSize(size);
  const variants = opt('--modes', 'threads,poll,poll2').split(',').filter(Boolean);
  for (const v of variants) if (!(v in VARIANTS)) throw new LunkitError('EINVAL', `unknown mode ${v} (${Object.keys(VARIANTS).join(', ')})`);
  const withPeer = !argv.includes('--no-peer') && (await commandExists('nbdfuse')) && (await commandExists('nbdkit'));

  const base = await mkdtemp('/tmp/lunkit-bench-fuse-modes-');
  const core = new ScsiCore();
  const store = new RamdiskBackstore({ name: 'ram0', size: 1024 ** 3, blockSize: 512 });
  const device = core.createDevice(store, { name: 'ram0' });
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  for (let off = 0; off < fill; off += chunk.length) await store.write(randomFillSync(chunk), off);

  const fabrics: FuseFabric[] = [];
  const children: ChildProcess[] = [];
  const peerDir = join(base, 'nbdfuse');
  const targets: Target[] = [];
  try {
    for (const v of variants) {
      const fabric = new FuseFabric(core, { mountpoint: join(base, v), channelMode: VARIANTS[v].mode, threads: VARIANTS[v].threads });
      await fabric.setExport('disk', { device });
      await fabric.mount();
      fabrics.push(fabric);
      targets.push({ label: v, file: fabric.pathOf('disk'), cpu: selfCpu });
    }
    if (withPeer) {
      const port = await freePort();
      const nbdkit = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), 'memory', '1G'], { stdio: 'ignore' });
      children.push(nbdkit);
      await new Promise((r) => setTimeout(r, 500));
      await mkdir(peerDir, { recursive: true });
      const nbdfuse = spawn('nbdfuse', [join(peerDir, 'disk'), `nbd://127.0.0.1:${port}/`], { stdio: 'ignore' });
      children.push(nbdfuse);
      await waitFile(join(peerDir, 'disk'));
      await sh('dd', ['if=/dev/urandom', `of=${join(peerDir, 'disk')}`, 'bs=1M', `count=${Math.ceil(fill / 2 ** 20)}`, 'oflag=direct', 'conv=notrunc', 'status=none']);
      const pids = [nbdfuse.pid ?? 0, nbdkit.pid ?? 0];
      targets.push({
        label: 'nbdfuse',
        file: join(peerDir, 'disk'),
        cpu: async () => {
          const [a, b] = await Promise.all(pids.map((p) => cpuSeconds(p)));
          return [a, a + b];
        },
      });
    }
    process.stdout.write(`fio ${runtime} s per job (+${FIO_RAMP_S} s ramp), direct=1, ${size} region, ${rounds} rounds; targets: ${targets.map((t) => t.label).join(', ')}\n`);
    // results[job][target] = one Result per round
    const results: Result[][][] = JOBS.map(() => targets.map(() => []));
    for (let round = 0; round < rounds; round++) {
      for (const [j, job] of JOBS.entries()) {
        for (let k = 0; k < targets.length; k++) {
          const i = (j + k + round) % targets.length;
          const r = await fio(targets[i], job, runtime, size);
          results[j][i].push(r);
          const all = r.cpuAllUs !== undefined ? ` (+nbdkit ${r.cpuAllUs.toFixed(1)})` : '';
          process.stdout.write(
            `round ${round + 1} ${cell(job.name, 26, true)} ${cell(targets[i].label, 8, true)} ${r.iops.toFixed(0).padStart(7)} IOPS ${r.mbps.toFixed(1).padStart(8)} MB/s ${r.cpuUs.toFixed(1).padStart(7)} us/io${all}\n`,
          );
        }
      }
    }
    const w = 26;
    let header = cell('job (median)', w, true);
    for (const t of targets) header += ` | ${cell(t.label, 8, true)} ${cell('IOPS', 7)} ${cell('MB/s', 7)} ${cell('cpu us/io', 11)}`;
    const lines = [header, '-'.repeat(header.length)];
    for (const [j, job] of JOBS.entries()) {
      let line = cell(job.name, w, true);
      targets.forEach((t, i) => {
        const rs = results[j][i];
        const cpu = median(rs.map((r) => r.cpuUs)).toFixed(1);
        const all = rs[0].cpuAllUs !== undefined ? `/${median(rs.map((r) => r.cpuAllUs ?? 0)).toFixed(0)}` : '';
        line += ` | ${cell('', 8)} ${cell(median(rs.map((r) => r.iops)).toFixed(0), 7)} ${cell(median(rs.map((r) => r.mbps)).toFixed(1), 7)} ${cell(cpu + all, 11)}`;
      });
      lines.push(line);
    }
    if (withPeer) lines.push('nbdfuse cpu us/io: nbdfuse alone / nbdfuse + nbdkit memory');
    process.stdout.write('\n' + lines.join('\n') + '\n');
  } finally {
    for (const f of fabrics) await f.close().catch((e: unknown) => process.stderr.write(`close: ${String(e)}\n`));
    await core.flushAll().catch(() => {});
    if (withPeer) await sh('umount', [peerDir]).catch(() => sh('umount', ['-l', peerDir]).catch(() => ''));
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-fuse-modes: ${(e as Error).message}\n`);
  process.exit(1);
});
