// fio as the FUSE benchmarks run it (bench-fuse.ts, bench-fuse-modes.ts): one
// direct-I/O job on a file, with the CPU of whoever serves the file measured
// around it, reported per fio I/O.

import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { LunkitError } from '../protocols/errors.js';

export interface FioJob {
  name: string;
  rw: 'read' | 'write' | 'randread';
  bs: string;
  engine: 'psync' | 'libaio';
  iodepth: number;
}

export interface FioJobResult {
  mbps: number;
  iops: number;
  /** CPU (user+system) per fio I/O, microseconds, one figure per CPU counter given. */
  cpuUs: number[];
}

/** fio's warm-up, excluded from its counts but inside the CPU window (estimated from the rate). */
export const FIO_RAMP_S = 1;

export function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, out, errOut) =>
      err ? rej(new LunkitError('ERR_TOOL_PEER', `${cmd} ${args.join(' ')}: ${errOut || err.message}`, { cause: err })) : res(out),
    );
  });
}

/** Waits until path exists with a non-zero size (a FUSE file appearing). */
export async function waitFile(path: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await stat(path).then((s) => s.size > 0, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new LunkitError('ERR_TOOL_PEER', `${path} did not appear`);
}

/** Runs one job on `file`; `cpu()` gives CPU seconds counters read before and after. */
export async function fioJob(file: string, job: FioJob, runtime: number, size: string, cpu: () => Promise<number[]>): Promise<FioJobResult> {
  const c0 = await cpu();
  const out = await sh('fio', [
    '--name=b', `--filename=${file}`, `--rw=${job.rw}`, `--bs=${job.bs}`, `--ioengine=${job.engine}`, `--iodepth=${job.iodepth}`,
    '--direct=1', `--size=${size}`, '--time_based', `--runtime=${runtime}`, `--ramp_time=${FIO_RAMP_S}`, '--output-format=json',
  ]);
  const c1 = await cpu();
  type Side = { bw_bytes: number; iops: number; total_ios: number };
  const j = JSON.parse(out) as { jobs: Array<{ read: Side; write: Side }> };
  const side = job.rw === 'write' ? j.jobs[0].write : j.jobs[0].read;
  // The CPU window includes fio's ramp, whose I/Os total_ios leaves out: estimate them from the rate.
  const ios = side.total_ios + side.iops * FIO_RAMP_S;
  return { mbps: side.bw_bytes / 1e6, iops: side.iops, cpuUs: c0.map((a, i) => (ios > 0 ? ((c1[i] - a) * 1e6) / ios : 0)) };
}
