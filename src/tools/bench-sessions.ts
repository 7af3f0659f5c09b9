// bench/sessions: session scale, lunkit against tgtd (Debian's tgt) with the
// same client (session-scale.ts). N sessions of one connection each log in
// back to back, then one INQUIRY goes out on each, then all log out. Printed:
// the login rate (sessions/s), the server's CPU per login (from
// /proc/PID/stat: steadier than the rate on a shared machine) and its RSS per
// session (RSS delta over the sessions, from /proc/PID/status) right after
// the logins and at rest (lowest RSS over --rest-seconds of idle time: V8
// keeps the young generation the login burst grew until its memory reducer
// runs, some 20-30 s later), side by side with ratios.
//
// Options: --sessions N (default 1000), --rounds R (default 1; the median
// round is printed), --rest-seconds S (default 40), --baseline-root TREE
// (another build, see bench/baseline.sh), --node-arg ARG (repeatable: passed
// to lunkit's node, e.g. --node-arg=--cpu-prof).

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stopChild, waitReady } from './bench-process.js';
import { startTgtd } from './tgtd.js';
import { runScale, type ScaleRun, type ScaleTarget } from './session-scale.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IQN = 'iqn.2026-12.io.lunkit:bench-sessions';

type Run = (t: ScaleTarget, pid: number) => Promise<ScaleRun>;

async function withTgtd(image: string, run: Run): Promise<ScaleRun> {
  const tgtd = await startTgtd({ controlBase: 300, targets: [{ iqn: IQN, luns: [image] }] });
  try {
    return await run({ host: '127.0.0.1', port: tgtd.port, iqn: IQN, lun: 1 }, tgtd.pid);
  } finally {
    await tgtd.stop();
  }
}

async function withLunkit(root: string, dir: string, image: string, sessions: number, nodeArgs: string[], run: Run): Promise<ScaleRun> {
  const cfg = join(dir, 'lunkit.json');
  // The connection and per-initiator caps are raised over the run's size:
  // this measures sessions, not the caps (all connections come from 127.0.0.1).
  const n = sessions + 16;
  await writeFile(
    cfg,
    JSON.stringify({
      backstores: { bench: { type: 'file', path: image, create: false } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'bench' }, attributes: { generateNodeAcls: true } } } } } },
      limits: { iscsi: { maxConnections: n, maxConnectionsPerAddress: n, maxSessionsPerInitiator: n } },
    }),
  );
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'bin', 'lunkit.js'), 'serve', '--config', cfg, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: dir,
    env: process.env,
  });
  let port = 0;
  child.stdout?.on('data', (d: Buffer) => {
    const m = /listening [\d.]+:(\d+)/.exec(d.toString());
    if (m) port = Number(m[1]);
  });
  try {
    await waitReady(child, /ready/, 30_000);
    return await run({ host: '127.0.0.1', port, iqn: IQN, lun: 0 }, child.pid!);
  } finally {
    await stopChild(child);
  }
}

interface Figures {
  rate: number;
  cpuMsPerLogin: number;
  kibPerSession: number;
  kibPerSessionAtRest: number;
  good: number;
  logouts: number;
}

function figures(r: ScaleRun): Figures {
  return {
    rate: r.sessions / r.loginSeconds,
    cpuMsPerLogin: (r.loginCpuSeconds * 1000) / r.sessions,
    kibPerSession: (r.rssAfter - r.rssBefore) / r.sessions / 1024,
    kibPerSessionAtRest: (r.rssRest - r.rssBefore) / r.sessions / 1024,
    good: r.commandsGood,
    logouts: r.logoutsOk,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string', default: '1000' },
      rounds: { type: 'string', default: '1' },
      'rest-seconds': { type: 'string', default: '40' },
      'baseline-root': { type: 'string' },
      'node-arg': { type: 'string', multiple: true, default: [] },
    },
  });
  const sessions = Number(values.sessions);
  const rounds = Number(values.rounds);
  const restSeconds = Number(values['rest-seconds']);
  const baselineRoot = values['baseline-root'];
  const nodeArgs = values['node-arg'] ?? [];
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-bench-sessions-'));
  const image = join(dir, 'lun.img');
  await writeFile(image, Buffer.alloc(1 << 20));
  const servers = baselineRoot ? (['tgtd', 'baseline', 'lunkit'] as const) : (['tgtd', 'lunkit'] as const);
  const all: Record<string, Figures[]> = { tgtd: [], lunkit: [], baseline: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const s of servers) {
        const run: Run = (t, pid) => runScale(t, sessions, pid, { restSeconds });
        const r =
          s === 'tgtd'
            ? await withTgtd(image, run)
            : await withLunkit(s === 'baseline' ? baselineRoot! : ROOT, dir, image, sessions, s === 'lunkit' ? nodeArgs : [], run);
        all[s].push(figures(r));
        process.stderr.write(`${s} round ${round + 1}: ${JSON.stringify(figures(r))}\n`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const pick = (s: string): Figures => {
    const f = all[s];
    const med = (k: keyof Figures): number => median(f.map((x) => x[k]));
    return {
      rate: med('rate'),
      cpuMsPerLogin: med('cpuMsPerLogin'),
      kibPerSession: med('kibPerSession'),
      kibPerSessionAtRest: med('kibPerSessionAtRest'),
      good: Math.min(...f.map((x) => x.good)),
      logouts: Math.min(...f.map((x) => x.logouts)),
    };
  };
  console.log(
    `bench/sessions: ${sessions} sessions x 1 connection, logged in back to back, then 1 INQUIRY each; client: lunkit session-scale.ts (2-step login, no digests); ${rounds} round(s), median; at rest = lowest RSS over ${restSeconds} s idle`,
  );
  console.log('server    logins/s   CPU ms/login   KiB/session after   KiB/session at rest   INQUIRY good   logouts ok');
  for (const s of servers) {
    const f = pick(s);
    console.log(
      `${s.padEnd(9)} ${f.rate.toFixed(0).padStart(8)}   ${f.cpuMsPerLogin.toFixed(2).padStart(12)}   ${f.kibPerSession.toFixed(1).padStart(17)}   ${f.kibPerSessionAtRest.toFixed(1).padStart(19)}   ${String(f.good).padStart(12)}   ${String(f.logouts).padStart(10)}`,
    );
  }
  const t = pick('tgtd');
  const x = (a: number, b: number): string => `x${(a / b).toFixed(2)}`;
  for (const s of servers.filter((v) => v !== 'tgtd')) {
    const f = pick(s);
    console.log(
      `${s}/tgtd: login rate ${x(f.rate, t.rate)}, CPU per login ${x(f.cpuMsPerLogin, t.cpuMsPerLogin)}, RSS per session ${x(f.kibPerSession, t.kibPerSession)} after, ${x(f.kibPerSessionAtRest, t.kibPerSessionAtRest)} at rest`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
