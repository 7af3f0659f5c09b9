// bench/bootlab: the boot storm of issue 15. N clients boot at once and all
// read the same golden blocks: N iSCSI sessions, each with its own initiator
// name and so its own qcow2 overlay of one golden raw image (a lunkit boot lab
// with N clients), read the first --span MiB of their disk sequentially,
// concurrently. Per N it prints aggregate MB/s, the time to the first and the
// last client done, and server CPU per MiB read (utime + stime of the whole
// server process from /proc/PID/stat).
//
// Peer, in the same run with the same client: tgtd (Debian's tgt) with one
// target and N logical units that are all the golden file itself (`rdwr`
// backing store, through the page cache); session i reads LU i. tgtd has no
// qcow2, so it is the "no overlay layer" ceiling of serving the same golden
// blocks over iSCSI on this machine, which is what a shared cache could at best
// bring lunkit to. (qemu-storage-daemon with N qcow2 overlays would have the
// overlays, but only over NBD, with another client: the numbers would mix the
// client and the protocol into the comparison.)
//
// The client is lunkit's own initiator (the iscsi backstore: READ(16), retries
// on unit attention), in --client-procs worker processes (default 2 on 2
// cores) so one event loop is not the limit; the workers' CPU is printed too.
// The golden lives in --dir. On a disk file system each N runs "cold" (page
// cache dropped with /proc/sys/vm/drop_caches, root only) and then "warm"; on
// tmpfs only warm (tmpfs pages cannot be dropped).
// Never part of a pass/fail test (STYLE.md §21).
//
//   node dist/tools/bench-bootlab.js [--clients 1,10,50] [--span 256] [--size 1024]
//       [--io-size 128] [--depth 8] [--dir /var/tmp] [--client-procs 2] [--seconds 300]
//       [--servers tgtd,lunkit] [--cache cold,warm] [--cpu-prof DIR] [--baseline-root DIR]

import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { IscsiBackstore } from '../backstores/iscsi/iscsi.js';
import { clientInitiatorIqn, labTargetIqn } from '../bootlab/names.js';
import { LunkitError } from '../protocols/errors.js';
import { CLK_TCK, cpuTicks, freePort, stopChild, waitReady } from './bench-process.js';
import { startTgtd } from './tgtd.js';

const execFileP = promisify(execFile);
const SELF = fileURLToPath(import.meta.url);
const ROOT = resolve(dirname(SELF), '..', '..');
const MiB = 1 << 20;
const LAB = 'storm';
const TGT_IQN = 'iqn.2026-11.io.lunkit:bench-bootlab';
const TMPFS_MAGIC = 0x01021994;

/** One session a worker opens and reads. */
interface SessionJob {
  url: string;
  initiatorName: string;
}

interface WorkerJob {
  sessions: SessionJob[];
  span: number;
  ioSize: number;
  depth: number;
  /** Give up (and report what was read) after this many ms. */
  limitMs: number;
}

type WorkerMessage = { type: 'ready' } | { type: 'done'; sessions: Array<{ doneAt: number; bytes: number }> } | { type: 'error'; message: string };

/** Wall-clock milliseconds with sub-ms resolution, comparable between processes. */
const now = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- worker side

/** A client process: log every session in, say ready, read on "go", report, log out. */
async function workerMain(): Promise<void> {
  const job = JSON.parse(process.argv[process.argv.indexOf('--worker') + 1]) as WorkerJob;
  const send = (m: WorkerMessage): void => void process.send?.(m);
  const stores: IscsiBackstore[] = [];
  try {
    for (const s of job.sessions) {
      stores.push(await IscsiBackstore.open({ url: s.url, readOnly: true, session: { initiatorName: s.initiatorName, keepaliveIntervalMs: 0 } }));
    }
    // The unit attention of a new nexus is taken here, before the clock runs.
    const probe = Buffer.allocUnsafe(4096);
    for (const st of stores) await st.read(probe, 0);
    const go = new Promise<void>((r) => process.once('message', () => r()));
    send({ type: 'ready' });
    await go;
    const until = now() + job.limitMs;
    const results = await Promise.all(stores.map((st) => readSpan(st, job, until)));
    // Stay until the parent has read this process's CPU time and says goodbye.
    const bye = new Promise<void>((r) => process.once('message', () => r()));
    send({ type: 'done', sessions: results });
    await bye;
  } catch (e) {
    send({ type: 'error', message: (e as Error).message });
  } finally {
    await Promise.all(stores.map((st) => st.close().catch(() => undefined)));
  }
}

/** Sequential reads of the first job.span bytes, job.depth in flight; when the last one completed. */
async function readSpan(st: IscsiBackstore, job: WorkerJob, until: number): Promise<{ doneAt: number; bytes: number }> {
  const span = Math.min(job.span, st.size);
  let next = 0;
  let bytes = 0;
  const lane = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(job.ioSize);
    while (next < span && now() < until) {
      const off = next;
      next += job.ioSize;
      const view = off + job.ioSize > span ? buf.subarray(0, span - off) : buf;
      await st.read(view, off);
      bytes += view.length;
    }
  };
  await Promise.all(Array.from({ length: job.depth }, lane));
  return { doneAt: now(), bytes };
}

// ---------------------------------------------------------------- servers

interface Server {
  pid: number;
  /** The session URL and initiator name of client i (0-based). */
  session(i: number): SessionJob;
  stop(): Promise<void>;
}

const clientName = (i: number): string => `c${String(i + 1).padStart(2, '0')}`;
const clientMac = (i: number): string => `52:54:00:15:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

/** A lunkit daemon (`root`'s build) serving lab "storm" with n clients, each a qcow2 overlay of the golden. */
async function startLunkit(root: string, work: string, golden: string, n: number, nodeArgs: string[]): Promise<Server> {
  const labDir = join(work, `lab-${n}`);
  await rm(labDir, { recursive: true, force: true });
  await mkdir(labDir, { recursive: true });
  const ports = { http: await freePort(), tftp: await freePort(), iscsi: await freePort() };
  const clients: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) clients[clientMac(i)] = { name: clientName(i), lun: i, golden, goldenFormat: 'raw' };
  const cfg = join(work, 'lunkit.json');
  await writeFile(cfg, JSON.stringify({ bootlabs: { [LAB]: { golden, goldenFormat: 'raw', listen: '127.0.0.1', ports, dir: labDir, tftpRoot: work, clients } } }));
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, join(root, 'bin', 'lunkit.js'), 'daemon', '--socket', join(work, 'control.sock'), '--config', cfg, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  try {
    await waitReady(child, /^ready$/m, 60_000);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return {
    pid: child.pid!,
    session: (i) => ({ url: `iscsi://127.0.0.1:${ports.iscsi}/${labTargetIqn(LAB)}/0`, initiatorName: clientInitiatorIqn(LAB, clientName(i)) }),
    stop: () => stopChild(child),
  };
}

/** tgtd with one target whose LUs 1..n are all the golden file. */
async function startTgtdPeer(golden: string, n: number): Promise<Server> {
  const t = await startTgtd({ controlBase: 300, targets: [{ iqn: TGT_IQN, luns: Array.from({ length: n }, () => golden) }] });
  return {
    pid: t.pid,
    session: (i) => ({ url: `iscsi://127.0.0.1:${t.port}/${TGT_IQN}/${i + 1}`, initiatorName: `iqn.2026-11.io.lunkit.bench:${clientName(i)}` }),
    stop: () => t.stop(),
  };
}

// ---------------------------------------------------------------- the storm

interface StormResult {
  server: string;
  clients: number;
  cache: 'cold' | 'warm';
  mbps: number;
  firstS: number;
  lastS: number;
  /** Server CPU milliseconds per MiB read (all its threads). */
  cpuMsPerMiB: number;
  /** Server CPU use during the storm, in cores. */
  serverCores: number;
  /** All client workers' CPU use during the storm, in cores. */
  clientCores: number;
  /** Sessions that stopped at --seconds before reading all of the span. */
  short: number;
}

interface StormOptions {
  span: number;
  ioSize: number;
  depth: number;
  procs: number;
  limitMs: number;
}

function startWorker(job: WorkerJob): { child: ChildProcess; next: () => Promise<WorkerMessage> } {
  const child = fork(SELF, ['--worker', JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const queue: WorkerMessage[] = [];
  const waiters: Array<(m: WorkerMessage) => void> = [];
  child.on('message', (m: WorkerMessage) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  child.once('exit', (code) => {
    const m: WorkerMessage = { type: 'error', message: `client worker exited with ${code}` };
    for (const w of waiters.splice(0)) w(m);
    queue.push(m);
  });
  const next = (): Promise<WorkerMessage> => {
    const m = queue.shift();
    return m ? Promise.resolve(m) : new Promise((r) => waiters.push(r));
  };
  return { child, next };
}

async function storm(server: Server, name: string, n: number, cache: 'cold' | 'warm', o: StormOptions): Promise<StormResult> {
  const procs = Math.max(1, Math.min(o.procs, n));
  const jobs: WorkerJob[] = Array.from({ length: procs }, () => ({ sessions: [], span: o.span, ioSize: o.ioSize, depth: o.depth, limitMs: o.limitMs }));
  for (let i = 0; i < n; i++) jobs[i % procs].sessions.push(server.session(i));
  const workers = jobs.map(startWorker);
  const expect = async (type: WorkerMessage['type']): Promise<Array<WorkerMessage & { type: typeof type }>> => {
    const got = await Promise.all(workers.map((w) => w.next()));
    for (const m of got) if (m.type !== type) throw new LunkitError('ERR_TOOL_PEER', m.type === 'error' ? m.message : `client worker said ${m.type}`);
    return got as Array<WorkerMessage & { type: typeof type }>;
  };
  try {
    await expect('ready');
    if (cache === 'cold') await dropPageCache();
    const ticks = async (): Promise<number[]> => Promise.all([server.pid, ...workers.map((w) => w.child.pid!)].map(cpuTicks));
    const before = await ticks();
    const t0 = now();
    for (const w of workers) w.child.send('go');
    const done = (await expect('done')) as Array<Extract<WorkerMessage, { type: 'done' }>>;
    const after = await ticks();
    for (const w of workers) w.child.send('bye');
    const wall = (now() - t0) / 1000;
    const sessions = done.flatMap((d) => d.sessions);
    const bytes = sessions.reduce((a, s) => a + s.bytes, 0);
    const last = Math.max(...sessions.map((s) => s.doneAt));
    const first = Math.min(...sessions.map((s) => s.doneAt));
    const cpu = after.map((a, i) => (a - before[i]) / CLK_TCK);
    const clientCpu = cpu.slice(1).reduce((a, b) => a + b, 0);
    return {
      server: name,
      clients: n,
      cache,
      mbps: bytes / 1e6 / ((last - t0) / 1000),
      firstS: (first - t0) / 1000,
      lastS: (last - t0) / 1000,
      cpuMsPerMiB: (cpu[0] * 1000) / (bytes / MiB),
      serverCores: cpu[0] / wall,
      clientCores: clientCpu / wall,
      short: sessions.filter((s) => s.bytes < o.span).length,
    };
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
  }
}

/** Write back dirty pages, then drop the clean page cache (proc(5) drop_caches; root only). */
async function dropPageCache(): Promise<void> {
  await execFileP('sync');
  await writeFile('/proc/sys/vm/drop_caches', '1\n');
}

// ---------------------------------------------------------------- main

const fmt = (x: number, w: number, d = 1): string => x.toFixed(d).padStart(w);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '1,10,50' },
      span: { type: 'string', default: '256' },
      size: { type: 'string', default: '1024' },
      'io-size': { type: 'string', default: '128' },
      depth: { type: 'string', default: '8' },
      dir: { type: 'string', default: '/var/tmp' },
      'client-procs': { type: 'string', default: '2' },
      seconds: { type: 'string', default: '300' },
      servers: { type: 'string', default: 'tgtd,lunkit' },
      cache: { type: 'string', default: 'cold,warm' },
      /** Profile the lunkit daemon (node --cpu-prof into DIR; one profile per daemon start). */
      'cpu-prof': { type: 'string' },
      /** A built lunkit tree of another revision (bench/bootlab/run.sh --baseline-rev builds it). */
      'baseline-root': { type: 'string' },
    },
  });
  const counts = values.clients.split(',').map(Number);
  const o: StormOptions = {
    span: Number(values.span) * MiB,
    ioSize: Number(values['io-size']) * 1024,
    depth: Number(values.depth),
    procs: Number(values['client-procs']),
    limitMs: Number(values.seconds) * 1000,
  };
  const baselineRoot = values['baseline-root'];
  const servers = values.servers.split(',').filter((s) => s !== '');
  if (baselineRoot && !servers.includes('baseline')) servers.splice(servers.indexOf('lunkit'), 0, 'baseline');
  const nodeArgs = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`] : [];
  const work = await mkdtemp(join(values.dir, 'lunkit-bench-bootlab-'));
  const onTmpfs = (await statfs(work)).type === TMPFS_MAGIC;
  const caches = values.cache.split(',').filter((c): c is 'cold' | 'warm' => (c === 'cold' && !onTmpfs) || c === 'warm');
  const golden = join(work, 'golden.img');
  const results: StormResult[] = [];
  try {
    // Real data, not holes: every server reads the same pages.
    await execFileP('dd', ['if=/dev/urandom', `of=${golden}`, 'bs=1M', `count=${values.size}`, 'status=none'], { timeout: 300_000 });
    // N outside, servers inside: on a shared machine the servers compared at one N run close together in time.
    for (const n of counts) {
      for (const s of servers) {
        const server = s === 'tgtd' ? await startTgtdPeer(golden, n) : await startLunkit(s === 'baseline' ? baselineRoot! : ROOT, work, golden, n, nodeArgs);
        try {
          for (const c of caches) {
            const r = await storm(server, s, n, c, o);
            results.push(r);
            process.stderr.write(`bench-bootlab: ${s} N=${n} ${c}: ${r.mbps.toFixed(0)} MB/s, last done ${r.lastS.toFixed(2)} s\n`);
          }
        } finally {
          await server.stop();
        }
      }
    }
    results.sort((a, b) => servers.indexOf(a.server) - servers.indexOf(b.server) || a.clients - b.clients);
    const lines = [
      `bench/bootlab: N sessions each read the first ${values.span} MiB of its disk (${values['io-size']} KiB reads, ${o.depth} in flight per session),`,
      `golden ${values.size} MiB of random data in ${values.dir}${onTmpfs ? ' (tmpfs: warm only)' : ''}, client: lunkit initiator in ${o.procs} process(es), node ${process.version}`,
      'server    N  cache    MB/s  first(s)  last(s)  srv CPU ms/MiB  srv cores  client cores',
    ];
    for (const r of results) {
      lines.push(
        `${r.server.padEnd(8)} ${String(r.clients).padStart(2)}  ${r.cache.padEnd(5)} ${fmt(r.mbps, 7, 0)} ${fmt(r.firstS, 9, 2)} ${fmt(r.lastS, 8, 2)} ${fmt(r.cpuMsPerMiB, 15, 3)} ${fmt(r.serverCores, 10, 2)} ${fmt(r.clientCores, 13, 2)}${r.short ? `  (${r.short} sessions stopped at --seconds)` : ''}`,
      );
    }
    const ratio = (a: string, b: string): void => {
      for (const x of results.filter((r) => r.server === a)) {
        const y = results.find((r) => r.server === b && r.clients === x.clients && r.cache === x.cache);
        if (!y) continue;
        lines.push(`N=${String(x.clients).padStart(2)} ${x.cache.padEnd(5)} ratio ${a}/${b}: throughput ${(x.mbps / y.mbps).toFixed(2)}x, CPU per MiB ${(x.cpuMsPerMiB / y.cpuMsPerMiB).toFixed(2)}x`);
      }
    };
    if (servers.includes('tgtd')) ratio('lunkit', 'tgtd');
    if (baselineRoot) ratio('lunkit', 'baseline');
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv.includes('--worker')) {
  workerMain().then(
    () => process.exit(0),
    () => process.exit(1),
  );
} else {
  main().catch((e: unknown) => {
    process.stderr.write(`bench-bootlab: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
