// What every benchmark driver needs around the servers it compares: a free
// port, a server's CPU time from /proc/PID/stat (steadier than IOPS on a
// 2-core machine shared with the client), waiting for a child to say it is
// ready, and stopping it by PID.

import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { LunkitError } from '../protocols/errors.js';

/** CLK_TCK on Linux (USER_HZ), the unit of utime/stime in /proc/PID/stat. */
export const CLK_TCK = 100;

/** A port free on 127.0.0.1 right now (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

/** utime+stime of a process in clock ticks (proc(5) fields 14 and 15, counted after the ")" of comm, which may hold spaces). */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** utime+stime of a process in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  return (await cpuTicks(pid)) / CLK_TCK;
}

/** Resolves when the child's stdout matches `re`; rejects if it exits first or after `ms`. */
export function waitReady(child: ChildProcess, re: RegExp, ms: number): Promise<void> {
  return new Promise((res, rej) => {
    let buf = '';
    const t = setTimeout(() => rej(new LunkitError('ERR_TOOL_PEER', `not ready after ${ms} ms: ${buf}`)), ms);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (re.test(buf)) {
        clearTimeout(t);
        res();
      }
    });
    child.once('exit', (c) => {
      clearTimeout(t);
      rej(new LunkitError('ERR_TOOL_PEER', `exited with ${c}: ${buf}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

export interface FioResult {
  iops: number;
  mbps: number;
  /** Server CPU microseconds per request (all its threads, from /proc/PID/stat). */
  cpuUsPerReq: number;
}

export interface FioNbdOptions {
  uri: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  bs: string;
  depth: number;
  seconds: number;
  /** fio's ramp_time: run but not counted in IOPS (its requests still cost the server CPU; counted by rate). */
  rampSeconds?: number;
  /** The server whose CPU time is measured. */
  pid: number;
}

/** One time-based fio job with the nbd engine (libnbd inside) against `uri`. */
export async function fioNbd(o: FioNbdOptions): Promise<FioResult> {
  const ramp = o.rampSeconds ?? 0;
  const args = [
    '--name=bench',
    '--ioengine=nbd',
    `--uri=${o.uri}`,
    `--rw=${o.rw}`,
    `--bs=${o.bs}`,
    `--iodepth=${o.depth}`,
    '--numjobs=1',
    '--time_based',
    `--runtime=${o.seconds}`,
    ...(ramp > 0 ? [`--ramp_time=${ramp}`] : []),
    '--norandommap',
    '--randrepeat=0',
    '--output-format=json',
  ];
  const before = await cpuTicks(o.pid);
  const { stdout } = await promisify(execFile)('fio', args, { timeout: (o.seconds + ramp + 60) * 1000, maxBuffer: 16 << 20 });
  const after = await cpuTicks(o.pid);
  const job = (JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: Array<{ read: { iops: number; bw: number }; write: { iops: number; bw: number } }> }).jobs[0];
  const side = o.rw === 'randwrite' || o.rw === 'write' ? job.write : job.read;
  const requests = side.iops * (o.seconds + ramp);
  const cpuUs = ((after - before) / CLK_TCK) * 1e6;
  return { iops: Math.round(side.iops), mbps: Math.round((side.bw * 1024) / 1e6), cpuUsPerReq: requests ? cpuUs / requests : NaN };
}
