// The live fuzz campaign (issue 17): a real `lunkit daemon`, iSCSI and NBD
// fuzz lanes running side by side until each fabric has used its case budget
// or the time is up, a side session per fabric verifying its data all the
// while, and the daemon's RSS, descriptors and CPU sampled. The suite runs a
// time-boxed slice (live-daemon.fuzz.test.ts); scripts/fuzz-campaign.sh runs
// a million cases per fabric.
//
// Lanes are plain loops over a seeded generator, not fast-check properties:
// a case's meaning depends on the connection's state (session, window,
// digests), so shrinking one case alone says little; instead every failing
// case is printed with its bytes, the operators that made it and the bytes
// its connection was sent, and saved as a reproducer.

import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/daemon-process.js';
import { fdCount, rssBytes } from '../helpers/proc-usage.js';
import { IscsiFuzzer } from './live-iscsi-lanes.js';
import { NbdFuzzer } from './live-nbd-lanes.js';
import { startLiveDaemon, type LiveDaemon } from './live-daemon.js';
import { describeFinding, newStats, saveFinding, type FabricStats, type Finding } from './live-outcomes.js';
import { SideWorkload, type SideReport } from './live-side.js';

export interface CampaignOptions {
  seed: number;
  iscsiCases: number;
  nbdCases: number;
  /** Wall-clock budget for the whole run. */
  timeLimitMs: number;
  /** A case unanswered and not closed this long is a hang. */
  replyTimeoutMs?: number;
  /** Where reproducers of findings are written (default: a temp directory). */
  findingsDir?: string;
  log?: (line: string) => void;
  /** Only lanes of these phases (login, discovery, ffp, handshake, transmission); default all. */
  lanes?: string[];
  /** The daemon's --log-level (default error); its last lines are printed when a side session fails. */
  daemonLogLevel?: string;
}

export interface UsageFigures {
  start: number;
  end: number;
  min: number;
  max: number;
}

export interface CampaignReport {
  seed: number;
  seconds: number;
  iscsi: FabricStats;
  nbd: FabricStats;
  /** The first findings (all are counted). */
  findings: Finding[];
  findingCount: number;
  findingsDir: string;
  crash: string | undefined;
  internalErrors: string[];
  side: { iscsi: SideReport; nbd: SideReport };
  rss: UsageFigures;
  fds: UsageFigures;
  /** CPU seconds (user + system) of the daemon and of this fuzzing process. */
  daemonCpu: number;
  fuzzerCpu: number;
}

const KEEP_FINDINGS = 40;

function figures(): UsageFigures & { add(v: number): void } {
  return {
    start: -1,
    end: 0,
    min: Infinity,
    max: 0,
    add(v: number) {
      if (this.start < 0) this.start = v;
      this.end = v;
      this.min = Math.min(this.min, v);
      this.max = Math.max(this.max, v);
    },
  };
}

/** utime + stime of a process in seconds (/proc/PID/stat, clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A case budget shared by a fabric's lanes, and the run's deadline. */
function budget(count: number, over: () => boolean): () => boolean {
  let left = count;
  return () => {
    if (left <= 0 || over()) return false;
    left--;
    return true;
  };
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const replyTimeoutMs = o.replyTimeoutMs ?? 10_000;
  const findingsDir = o.findingsDir ?? join(tmpdir(), `lunkit-fuzz-findings-${o.seed}`);
  const daemon: LiveDaemon = await startLiveDaemon({ logLevel: o.daemonLogLevel });
  const started = Date.now();
  const deadline = started + o.timeLimitMs;
  let crash: string | undefined;
  const over = (): boolean => crash !== undefined || Date.now() > deadline;
  const findings: Finding[] = [];
  let findingCount = 0;
  const onFinding = (f: Finding): void => {
    findingCount++;
    if (findings.length >= KEEP_FINDINGS) return;
    findings.push(f);
    const file = saveFinding(findingsDir, f);
    log(`FINDING ${describeFinding(f)}\n  saved: ${file}`);
    if (f.kind === 'hang' && statsSaved++ < 3) {
      // What the daemon says of its connections while the case hangs (readPaused, queued bytes...).
      const out = file.replace(/\.hex$/, '.stats.json');
      void runCli(join(daemon.dir, 's.sock'), ['stats', '--json'], { timeoutMs: 20_000 })
        .then((r) => writeFileSync(out, `${f.detail}\nlocal port ${f.localPort ?? '?'}\n${r.stdout}${r.stderr}`))
        .catch(() => {});
    }
  };
  let statsSaved = 0;
  const rss = figures();
  const fds = figures();
  const cpuAtStart = process.cpuUsage();
  let daemonCpu = 0;
  const sample = (): void => {
    const c = daemon.crashed();
    if (c && !crash) crash = `daemon exited (code ${c.code}, signal ${c.signal}) after ${((Date.now() - started) / 1000).toFixed(1)} s:\n${daemon.tail().slice(-4000)}`;
    if (crash) return;
    try {
      rss.add(rssBytes(daemon.pid));
      fds.add(fdCount(daemon.pid));
      daemonCpu = cpuSeconds(daemon.pid);
    } catch {
      // gone between the check and the read: the next sample reports the crash
    }
  };
  sample();
  const sampler = setInterval(sample, 250);
  const iscsiStats = newStats();
  const nbdStats = newStats();
  const sides = { iscsi: new SideWorkload('iscsi', o.seed), nbd: new SideWorkload('nbd', o.seed) };
  let progress: NodeJS.Timeout | undefined;
  try {
    await sides.iscsi.start(daemon);
    await sides.nbd.start(daemon);
    log(`live fuzz: seed ${o.seed}, daemon pid ${daemon.pid}, iSCSI port ${daemon.iscsiPort}, NBD port ${daemon.nbdPort}; up to ${o.iscsiCases} iSCSI and ${o.nbdCases} NBD cases in ${Math.round(o.timeLimitMs / 1000)} s`);
    const iscsi = new IscsiFuzzer({ port: daemon.iscsiPort, seed: o.seed, stats: iscsiStats, take: budget(o.iscsiCases, over), onFinding, replyTimeoutMs });
    const nbd = new NbdFuzzer({ port: daemon.nbdPort, seed: o.seed, stats: nbdStats, take: budget(o.nbdCases, over), onFinding, replyTimeoutMs });
    progress = setInterval(() => {
      const s = ((Date.now() - started) / 1000).toFixed(0);
      log(
        `  ${s} s: iSCSI ${iscsiStats.cases} cases (${iscsiStats.answered} answered, ${iscsiStats.closed + iscsiStats.eofClosed} closed), NBD ${nbdStats.cases} (${nbdStats.answered} answered, ${nbdStats.closed + nbdStats.eofClosed} closed), side verified ${sides.iscsi.report.verified}/${sides.nbd.report.verified}, findings ${findingCount}, RSS ${(rss.end / 2 ** 20).toFixed(0)} MiB, fds ${fds.end}`,
      );
    }, 15_000);
    const lanes: Array<[string, () => Promise<void>]> = [
      ['login', () => iscsi.runLane('login', 0)],
      ['login', () => iscsi.runLane('login', 1)],
      ['login', () => iscsi.runLane('login', 2)],
      ['discovery', () => iscsi.runLane('discovery', 3)],
      ['discovery', () => iscsi.runLane('discovery', 4)],
      ['ffp', () => iscsi.runLane('ffp', 5)],
      ['ffp', () => iscsi.runLane('ffp', 6)],
      ['ffp', () => iscsi.runLane('ffp', 7)],
      ['ffp', () => iscsi.runLane('ffp', 8, true)],
      ['ffp', () => iscsi.runLane('ffp', 9, true)],
      ['ffp', () => iscsi.runLane('ffp', 10, true)],
      ['handshake', () => nbd.runLane('handshake', 0)],
      ['handshake', () => nbd.runLane('handshake', 1)],
      ['handshake', () => nbd.runLane('handshake', 2)],
      ['transmission', () => nbd.runLane('transmission', 3, 'simple')],
      ['transmission', () => nbd.runLane('transmission', 4, 'simple')],
      ['transmission', () => nbd.runLane('transmission', 5, 'structured')],
      ['transmission', () => nbd.runLane('transmission', 6, 'structured')],
      ['transmission', () => nbd.runLane('transmission', 7, 'extended')],
      ['transmission', () => nbd.runLane('transmission', 8, 'extended')],
    ];
    await Promise.all(lanes.filter(([phase]) => !o.lanes || o.lanes.includes(phase)).map(([, run]) => run()));
  } catch (e) {
    clearInterval(sampler);
    await daemon.stop();
    throw e;
  } finally {
    clearInterval(progress);
  }
  const side = { iscsi: await sides.iscsi.stop(), nbd: await sides.nbd.stop() };
  clearInterval(sampler);
  sample();
  const internalErrors = [...daemon.internalErrors()];
  if (side.iscsi.failures.length + side.nbd.failures.length > 0) log(`daemon output about the side sessions and resets:\n${daemon.sideLines().join('\n')}`);
  await daemon.stop();
  const u = process.cpuUsage(cpuAtStart);
  return {
    seed: o.seed,
    seconds: (Date.now() - started) / 1000,
    iscsi: iscsiStats,
    nbd: nbdStats,
    findings,
    findingCount,
    findingsDir,
    crash,
    internalErrors,
    side,
    rss,
    fds,
    daemonCpu,
    fuzzerCpu: (u.user + u.system) / 1e6,
  };
}

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** The figures as a table (printed by the suite and by scripts/fuzz-campaign.sh). */
export function formatReport(r: CampaignReport): string {
  const row = (name: string, s: FabricStats): string =>
    `| ${name} | ${s.cases} | ${s.answered} | ${s.closed} | ${s.eofClosed} | ${s.failed} | ${s.padded} | ${s.replies} | ${s.rejects} | ${s.connects} | ${s.logins} | ${Object.entries(s.phases)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} |`;
  return [
    `live fuzz campaign, seed ${r.seed}, ${r.seconds.toFixed(0)} s (${((r.iscsi.cases + r.nbd.cases) / r.seconds).toFixed(0)} cases/s)`,
    '| fabric | cases | answered | closed | closed after our FIN | in findings | completed with zeros | replies parsed | rejects/errors | connections | logins/GOs | cases by phase |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    row('iSCSI', r.iscsi),
    row('NBD', r.nbd),
    `crashes: ${r.crash ? 1 : 0}${r.crash ? `\n${r.crash}` : ''}`,
    `findings (hangs, unparseable replies, refused service): ${r.findingCount}${r.findingCount ? ` (reproducers in ${r.findingsDir})` : ''}`,
    `daemon internal-error log lines: ${r.internalErrors.length}${r.internalErrors.length ? `\n  ${r.internalErrors.join('\n  ')}` : ''}`,
    `side sessions: iSCSI ${r.side.iscsi.writes} writes, ${r.side.iscsi.verified} verified reads, ${r.side.iscsi.failures.length} failures; NBD ${r.side.nbd.writes} writes, ${r.side.nbd.verified} verified reads, ${r.side.nbd.failures.length} failures`,
    ...[...r.side.iscsi.failures, ...r.side.nbd.failures].map((f) => `  side failure: ${f}`),
    `CPU: daemon ${r.daemonCpu.toFixed(1)} s, fuzzer and side sessions ${r.fuzzerCpu.toFixed(1)} s`,
    `daemon RSS: start ${mib(r.rss.start)}, min ${mib(r.rss.min)}, max ${mib(r.rss.max)}, end ${mib(r.rss.end)}; fds: start ${r.fds.start}, min ${r.fds.min}, max ${r.fds.max}, end ${r.fds.end}`,
  ].join('\n');
}
