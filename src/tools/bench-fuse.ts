// bench/fuse: lunkit's FUSE file against nbdfuse over the same export, in one
// run. Both sit on one `nbdkit file` export of a file in /dev/shm: lunkit via
// `lunkit attach nbd://` (its NBD backstore -> ScsiCore -> FUSE fabric),
// nbdfuse directly. fio runs sequential 1 MiB reads/writes and 4 KiB random
// reads, psync and libaio, direct=1, and the table prints MB/s, IOPS,
// server CPU per fio I/O (user+system of the lunkit holder and of nbdfuse,
// from /proc/PID/stat before and after each job: steadier than throughput on a
// 2-core machine where fio competes for the same cores) and lunkit/nbdfuse
// ratios. Usage: node dist/tools/bench-fuse.js [--runtime S] [--cli PATH]
// [--attach-args "..."] [--baseline PATH].
//
// --baseline PATH: the attach CLI of another lunkit build (e.g. the last
// commit, built in a copy of the tree) attached to the same export as a
// third server, measured job by job with the other two, so a before/after
// comparison shares one machine state (a shared VM drifts between runs). The
// order of the servers rotates from job to job.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LunkitError } from '../protocols/errors.js';
import { fioJob, sh, waitFile, type FioJob } from './bench-fio.js';
import { cpuSeconds, freePort } from './bench-process.js';

const JOBS: FioJob[] = [
  { name: 'seq-read 1M psync', rw: 'read', bs: '1M', engine: 'psync', iodepth: 1 },
  { name: 'seq-read 1M libaio qd8', rw: 'read', bs: '1M', engine: 'libaio', iodepth: 8 },
  { name: 'seq-write 1M psync', rw: 'write', bs: '1M', engine: 'psync', iodepth: 1 },
  { name: 'seq-write 1M libaio qd8', rw: 'write', bs: '1M', engine: 'libaio', iodepth: 8 },
  { name: 'rand-read 4K psync', rw: 'randread', bs: '4k', engine: 'psync', iodepth: 1 },
  { name: 'rand-read 4K libaio qd32', rw: 'randread', bs: '4k', engine: 'libaio', iodepth: 32 },
];

interface Result {
  mbps: number;
  iops: number;
  /** Server CPU (user+system) per fio I/O, in microseconds. */
  cpuUs: number;
}


/** The holder's pid from its state file (<run>/attach/<id>.json), found by the file it serves. */
async function holderPid(file: string): Promise<number> {
  const { findAttach } = await import('../attach/attach.js');
  const st = await findAttach(file);
  if (!st) throw new LunkitError('ERR_TOOL_PEER', `no attach state for ${file}`);
  return st.pid;
}

async function fio(file: string, job: FioJob, runtime: number, size: string, serverPid: number): Promise<Result> {
  const r = await fioJob(file, job, runtime, size, async () => [await cpuSeconds(serverPid)]);
  return { mbps: r.mbps, iops: r.iops, cpuUs: r.cpuUs[0] };
}

interface Target {
  label: string;
  file: string;
  pid: number;
}

function row(cells: Array<[string, number]>): string {
  return cells.map(([v, w], i) => (i === 0 ? v.padEnd(w) : v.padStart(w))).join(' ');
}

/** `lunkit attach` of url on file through cli, with its own run directory; returns the file and the holder's pid. */
async function attach(cli: string, url: string, file: string, runDir: string, extra: string[]): Promise<Target & { cli: string; runDir: string }> {
  const env = { ...process.env, LUNKIT_RUN_DIR: runDir };
  const path = (await sh(process.execPath, [cli, 'attach', url, file, ...extra], env)).trim();
  process.env.LUNKIT_RUN_DIR = runDir;
  const pid = await holderPid(path);
  return { label: '', file: path, pid, cli, runDir };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, dflt: string): string => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
  };
  const runtime = Number(opt('--runtime', '8'));
  const cli = opt('--cli', join(process.cwd(), 'test/integration/fuse/lunkit-fuse-cli.mjs'));
  const baselineCli = opt('--baseline', '');
  const extra = opt('--attach-args', '').split(' ').filter(Boolean);
  // --source file: lunkit serves the image file itself (file backstore, no NBD hop: what a
  // daemon-hosted FUSE file over a file backstore does); nbdfuse still goes through nbdkit file.
  const source = opt('--source', 'nbd');
  const base = await mkdtemp('/dev/shm/lunkit-bench-fuse-');
  const img = join(base, 'export.img');
  await writeFile(img, '');
  await truncate(img, 1024 * 1024 * 1024);
  const port = await freePort();
  const url = `nbd://127.0.0.1:${port}/`;
  const children: ChildProcess[] = [];
  const nbdfuseDir = join(base, 'nbdfuse');
  const attached: Array<{ cli: string; runDir: string; file: string }> = [];
  try {
    children.push(spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), 'file', img], { stdio: 'ignore' }));
    await new Promise((r) => setTimeout(r, 500));
    const targets: Target[] = [];
    const lk = await attach(cli, source === 'file' ? img : url, join(base, 'lunkit', 'disk'), join(base, 'run'), extra);
    attached.push(lk);
    targets.push({ ...lk, label: 'lunkit' });
    if (baselineCli) {
      const bl = await attach(baselineCli, source === 'file' ? img : url, join(base, 'baseline', 'disk'), join(base, 'run-baseline'), extra);
      attached.push(bl);
      targets.push({ ...bl, label: 'baseline' });
    }
    await sh('mkdir', ['-p', nbdfuseDir]);
    const nbdfuse = spawn('nbdfuse', [join(nbdfuseDir, 'disk'), url], { stdio: 'ignore' });
    children.push(nbdfuse);
    await waitFile(join(nbdfuseDir, 'disk'));
    targets.push({ label: 'nbdfuse', file: join(nbdfuseDir, 'disk'), pid: nbdfuse.pid ?? 0 });
    for (const t of targets.slice(0, -1)) {
      process.stdout.write(`${t.label} holder pid ${t.pid}\n`);
    }
    process.stdout.write(`nbdfuse pid ${nbdfuse.pid}\n`);
    // Fill the region read by the benchmarks so reads see data, not holes.
    await sh('dd', ['if=/dev/urandom', `of=${img}`, 'bs=1M', 'count=512', 'conv=notrunc', 'status=none']);
    const header: Array<[string, number]> = [['job', 26]];
    for (const t of targets) header.push([`${t.label} MB/s`, Math.max(12, t.label.length + 5)], ['IOPS', 7], ['cpu us/io', 10]);
    for (const t of targets.slice(0, -1)) header.push([`${t.label} MB/s ratio`, t.label.length + 11], ['cpu ratio', 10]);
    const rows = [row(header)];
    process.stdout.write(rows[0] + '\n');
    for (const [j, job] of JOBS.entries()) {
      // Rotate which server goes first: on a shared VM the first measurement of a job was seen to lose consistently.
      const r: Result[] = new Array<Result>(targets.length);
      for (let k = 0; k < targets.length; k++) {
        const i = (j + k) % targets.length;
        r[i] = await fio(targets[i].file, job, runtime, '512M', targets[i].pid);
      }
      const peer = r[r.length - 1];
      const cells: Array<[string, number]> = [[job.name, 26]];
      targets.forEach((t, i) => cells.push([r[i].mbps.toFixed(1), Math.max(12, t.label.length + 5)], [r[i].iops.toFixed(0), 7], [r[i].cpuUs.toFixed(0), 10]));
      targets.slice(0, -1).forEach((t, i) => cells.push([(r[i].mbps / peer.mbps).toFixed(2), t.label.length + 11], [(r[i].cpuUs / peer.cpuUs).toFixed(2), 10]));
      rows.push(row(cells));
      process.stdout.write(rows[rows.length - 1] + '\n');
    }
    process.stdout.write('\n' + rows.join('\n') + '\n');
  } finally {
    for (const a of attached) {
      await sh(process.execPath, [a.cli, 'detach', a.file], { ...process.env, LUNKIT_RUN_DIR: a.runDir }).catch((e: unknown) => process.stderr.write(`${String(e)}\n`));
    }
    await sh('umount', [nbdfuseDir]).catch(() => {});
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-fuse: ${(e as Error).message}\n`);
  process.exit(1);
});
