// The soak (issue 17): many iSCSI sessions, each with a queue depth of
// workers doing WRITE(16) then READ(16) of the same blocks and comparing the
// bytes, against a real `lunkit daemon`, for a set time. The daemon's RSS and
// descriptor count are sampled every second; command latencies go into a
// log-scale histogram (p50/p99/p99.9 and max). Used by
// test/interop/soak.test.ts (a few minutes, fewer sessions) and
// scripts/soak.sh (256 sessions x QD32 for 30 minutes).
//
// Each worker owns its own 64 KiB slot of the LUN, so a mismatch can only
// be the target's doing. Sessions use distinct initiator names (the default
// limit is 64 sessions per initiator name).

import { randomFillSync } from 'node:crypto';
import { read16, testUnitReady, write16, IscsiSession } from '../../src/initiator/index.js';
import { fdCount, rssBytes } from '../helpers/proc-usage.js';
import { cpuSeconds } from '../fuzz/live-campaign.js';
import { FUZZ_IQN, startLiveDaemon } from '../fuzz/live-daemon.js';

const BLOCK = 512;
const SLOT = 64 * 1024;

export interface SoakOptions {
  sessions: number;
  queueDepth: number;
  seconds: number;
  /** Seconds before the "after warm-up" RSS/fd figures are taken (default 10% of the run, at least 10 s). */
  warmupSeconds?: number;
  log?: (line: string) => void;
}

export interface Series {
  start: number;
  /** After warm-up. */
  warm: number;
  end: number;
  min: number;
  max: number;
}

export interface SoakReport {
  sessions: number;
  queueDepth: number;
  seconds: number;
  commands: number;
  bytes: number;
  verified: number;
  errors: string[];
  errorCount: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  rss: Series;
  fds: Series;
  daemonCpu: number;
  loginSeconds: number;
}

/** Log-scale latency histogram: 16 buckets per power of two (about 4% wide). */
class Histogram {
  private readonly counts = new Map<number, number>();
  private n = 0;
  max = 0;
  add(us: number): void {
    const b = Math.floor(Math.log2(Math.max(us, 1)) * 16);
    this.counts.set(b, (this.counts.get(b) ?? 0) + 1);
    this.n++;
    if (us > this.max) this.max = us;
  }
  get count(): number {
    return this.n;
  }
  /** Upper edge of the bucket holding quantile q. */
  quantile(q: number): number {
    const want = q * this.n;
    let seen = 0;
    for (const b of [...this.counts.keys()].sort((x, y) => x - y)) {
      seen += this.counts.get(b)!;
      if (seen >= want) return Math.round(2 ** ((b + 1) / 16));
    }
    return this.max;
  }
}

function series(): Series & { add(v: number, warm: boolean): void } {
  return {
    start: -1,
    warm: -1,
    end: 0,
    min: Infinity,
    max: 0,
    add(v: number, warm: boolean) {
      if (this.start < 0) this.start = v;
      if (warm && this.warm < 0) this.warm = v;
      this.end = v;
      this.min = Math.min(this.min, v);
      this.max = Math.max(this.max, v);
    },
  };
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const lunBytes = Math.max(64 << 20, o.sessions * o.queueDepth * SLOT);
  const daemon = await startLiveDaemon({
    backstoreType: 'file',
    lunBytes,
    tls: false,
    limits: { iscsi: { maxConnections: o.sessions + 64, maxConnectionsPerAddress: o.sessions + 64 } },
  });
  const hist = new Histogram();
  const errors: string[] = [];
  let errorCount = 0;
  let commands = 0;
  let bytes = 0;
  let verified = 0;
  const rss = series();
  const fds = series();
  const warmupMs = 1000 * (o.warmupSeconds ?? Math.max(10, o.seconds / 10));
  let running = true;
  let loadStarted = 0;
  const sample = (): void => {
    try {
      const warm = loadStarted > 0 && Date.now() - loadStarted >= warmupMs;
      rss.add(rssBytes(daemon.pid), warm);
      fds.add(fdCount(daemon.pid), warm);
    } catch {
      // the daemon is gone: its crash is reported below
    }
  };
  const fail = (e: unknown): void => {
    errorCount++;
    if (errors.length < 20) errors.push(e instanceof Error ? e.message : String(e));
  };
  sample();
  const sampler = setInterval(sample, 1000);
  const sessions: IscsiSession[] = [];
  const pool = randomFillSync(Buffer.alloc(4 << 20));
  let daemonCpu = 0;
  let loginSeconds = 0;
  try {
    const t0 = Date.now();
    for (let s = 0; s < o.sessions; s++) {
      const session = await IscsiSession.open({ host: '127.0.0.1', port: daemon.iscsiPort, targetName: FUZZ_IQN, initiatorName: `iqn.2026-12.io.lunkit:soak-${s}` });
      sessions.push(session);
      for (let i = 0; i < 4 && !(await testUnitReady(session, 0)).ok; i++);
    }
    loginSeconds = (Date.now() - t0) / 1000;
    log(`soak: ${o.sessions} sessions logged in in ${loginSeconds.toFixed(1)} s; ${o.queueDepth} workers each for ${o.seconds} s (daemon pid ${daemon.pid})`);
    loadStarted = Date.now();
    const deadline = loadStarted + o.seconds * 1000;
    let lastReport = loadStarted;
    const worker = async (session: IscsiSession, slot: number): Promise<void> => {
      const base = slot * SLOT;
      let k = slot * 7919;
      while (running && Date.now() < deadline) {
        k = (k * 1103515245 + 12345) >>> 0;
        const length = BLOCK * (8 + (k % (SLOT / BLOCK - 8)));
        const from = (k >>> 8) % (pool.length - length);
        const data = pool.subarray(from, from + length);
        try {
          let t = process.hrtime.bigint();
          const w = await write16(session, 0, base / BLOCK, data, { blockSize: BLOCK });
          hist.add(Number(process.hrtime.bigint() - t) / 1000);
          if (!w.ok) throw new Error(`WRITE(16) slot ${slot}: status ${w.status}`);
          t = process.hrtime.bigint();
          const r = await read16(session, 0, base / BLOCK, length / BLOCK, { blockSize: BLOCK });
          hist.add(Number(process.hrtime.bigint() - t) / 1000);
          if (!r.ok) throw new Error(`READ(16) slot ${slot}: status ${r.status}`);
          if (!r.value.equals(data)) throw new Error(`slot ${slot}: ${length} bytes read back differ from what was written`);
          commands += 2;
          bytes += 2 * length;
          verified++;
        } catch (e) {
          fail(e);
          await new Promise((res) => setTimeout(res, 100));
        }
        if (Date.now() - lastReport >= 30_000) {
          lastReport = Date.now();
          log(
            `  ${((lastReport - loadStarted) / 1000).toFixed(0)} s: ${commands} commands, ${verified} verified, ${errorCount} errors, p99 ${(hist.quantile(0.99) / 1000).toFixed(1)} ms, RSS ${(rss.end / 2 ** 20).toFixed(0)} MiB, fds ${fds.end}`,
          );
        }
        if (daemon.crashed()) return;
      }
    };
    const workers: Array<Promise<void>> = [];
    sessions.forEach((session, s) => {
      for (let q = 0; q < o.queueDepth; q++) workers.push(worker(session, s * o.queueDepth + q));
    });
    await Promise.all(workers);
    running = false;
    // Let the daemon settle once the load is gone, then take the last sample.
    await new Promise((res) => setTimeout(res, 2000));
    sample();
    const c = daemon.crashed();
    if (c) fail(`the daemon exited (code ${c.code}, signal ${c.signal}):\n${daemon.tail().slice(-3000)}`);
    else daemonCpu = cpuSeconds(daemon.pid);
  } finally {
    running = false;
    clearInterval(sampler);
    await Promise.all(sessions.map((s) => s.logout().catch(() => s.destroy())));
    await daemon.stop();
  }
  return {
    sessions: o.sessions,
    queueDepth: o.queueDepth,
    seconds: o.seconds,
    commands,
    bytes,
    verified,
    errors,
    errorCount,
    latencyUs: { p50: hist.quantile(0.5), p99: hist.quantile(0.99), p999: hist.quantile(0.999), max: Math.round(hist.max) },
    rss,
    fds,
    daemonCpu,
    loginSeconds,
  };
}

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function formatSoak(r: SoakReport): string {
  const ms = (us: number): string => `${(us / 1000).toFixed(2)} ms`;
  return [
    `soak: ${r.sessions} sessions x QD${r.queueDepth} for ${r.seconds} s (logins ${r.loginSeconds.toFixed(1)} s)`,
    `commands ${r.commands} (${(r.commands / r.seconds).toFixed(0)}/s, ${(r.bytes / r.seconds / 2 ** 20).toFixed(1)} MiB/s), write+read pairs verified ${r.verified}, errors ${r.errorCount}`,
    ...r.errors.map((e) => `  error: ${e}`),
    `latency per command: p50 ${ms(r.latencyUs.p50)}, p99 ${ms(r.latencyUs.p99)}, p99.9 ${ms(r.latencyUs.p999)}, max ${ms(r.latencyUs.max)}`,
    `daemon RSS: start ${mib(r.rss.start)}, after warm-up ${mib(r.rss.warm)}, min ${mib(r.rss.min)}, max ${mib(r.rss.max)}, end ${mib(r.rss.end)}`,
    `daemon fds: start ${r.fds.start}, after warm-up ${r.fds.warm}, min ${r.fds.min}, max ${r.fds.max}, end ${r.fds.end}`,
    `daemon CPU: ${r.daemonCpu.toFixed(1)} s`,
  ].join('\n');
}
