// Hostile clients against a real daemon (issue 17): 1,000 half-open TCP
// connections to the iSCSI portal and to the NBD port with small caps
// (maxConnections 200, maxConnectionsPerAddress 100), from ten source
// addresses (127.0.0.1-10). The daemon's fd count stays under the cap plus a
// small margin, the 800 over the caps are closed at once while the 200 admitted
// live until the login / handshake timeout, the log has a line per interval
// (not one per refusal), and afterwards a normal client logs in. Then a CHAP
// brute force: 20 wrong secrets in a row, answers delayed more and more, and a
// right login by another initiator name from another address not delayed.
//
// Timing decides nothing here but through wide margins: an admitted
// connection lives about the timeout (6 s; a server timer never fires early,
// the client may only notice its connect a little late), a refused one is
// closed within milliseconds; half the timeout tells them apart.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';

import { NbdClient } from '../../../src/nbd-client/index.js';
import { chapAttempt, type ChapAttempt } from '../../helpers/chap-login.js';
import { cliOk } from '../../helpers/daemon-process.js';
import { startLunkit, type LunkitProcess } from '../../helpers/lunkit-process.js';
import { fdCount, sampleUsage } from '../../helpers/proc-usage.js';
import { RawInitiator } from '../../helpers/raw-iscsi.js';

const IQN = 'iqn.2026-12.org.example:hostile';
const CAP = 200;
const PER_ADDRESS = 100;
const TIMEOUT_S = 6;
const CLIENTS = 1000;
const ADDRESSES = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 1}`);
/** fds the daemon may hold beyond the cap: connections being refused in one accept burst, the control socket, listeners. */
const FD_MARGIN = 48;

/** A daemon on `config` (portals and NBD on port 0); the ports it got, from its "listening" lines. */
async function startConfigured(config: unknown, logLevel = 'warn'): Promise<{ p: LunkitProcess; dir: string; iscsiPort: number; nbdPort: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-hostile-'));
  const file = join(dir, 'lunkit.json');
  await writeFile(file, JSON.stringify(config));
  try {
    const p = await startLunkit(['daemon', '--socket', join(dir, 's.sock'), '--config', file, '--log-level', logLevel], { dir });
    const port = (re: RegExp) => Number(re.exec(p.stdout())?.[1] ?? 0);
    return { p, dir, iscsiPort: port(/^listening [\d.]+:(\d+)$/m), nbdPort: port(/^nbd listening [\d.]+:(\d+)$/m) };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

interface HalfOpen {
  socket: net.Socket;
  connectedAt: number;
  closedAt?: number;
}

/** One TCP connection that never sends a byte; resolves once connected. */
function halfOpen(port: number, localAddress: string): Promise<HalfOpen> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => {});
    socket.once('error', reject);
    socket.once('connect', () => {
      const h: HalfOpen = { socket, connectedAt: performance.now() };
      socket.once('close', () => (h.closedAt = performance.now()));
      socket.resume();
      resolve(h);
    });
  });
}

/** The first 150 from 127.0.0.1 (over its share of 100), the rest spread over the other nine (over the total). */
function sourceOf(i: number): string {
  return i < 150 ? ADDRESSES[0] : ADDRESSES[1 + (i % (ADDRESSES.length - 1))];
}

/** CLIENTS connections, `batch` connecting at a time. */
async function flood(port: number, batch = 25): Promise<HalfOpen[]> {
  const out: HalfOpen[] = [];
  for (let i = 0; i < CLIENTS; i += batch) {
    const wave = await Promise.all(Array.from({ length: Math.min(batch, CLIENTS - i) }, (_, j) => halfOpen(port, sourceOf(i + j))));
    out.push(...wave);
  }
  return out;
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface FloodResult {
  refused: number;
  admitted: number;
  refusedCloseMsP50: number;
  refusedCloseMsMax: number;
  fdBase: number;
  fdMax: number;
  rssMaxMiB: number;
  logLines: number;
  seconds: number;
}

/** Flood one port; returns what was measured after every half-open connection is gone. */
async function floodAndMeasure(p: LunkitProcess, port: number, logPattern: string): Promise<FloodResult> {
  const pid = p.child.pid!;
  const fdBase = fdCount(pid);
  const usage = sampleUsage(pid, 20);
  const t0 = performance.now();
  const all = await flood(port);
  try {
    // Every connection closes: the refused at once, the admitted at the timeout.
    await waitFor('every half-open connection to be closed', () => all.every((h) => h.closedAt !== undefined), (TIMEOUT_S + 30) * 1000);
  } finally {
    for (const h of all) h.socket.destroy();
  }
  const seen = usage.stop();
  const life = all.map((h) => h.closedAt! - h.connectedAt);
  const refused = life.filter((ms) => ms < (TIMEOUT_S * 1000) / 2).sort((a, b) => a - b);
  const logLines = p.stderr().split('\n').filter((l) => l.includes(logPattern)).length;
  const result: FloodResult = {
    refused: refused.length,
    admitted: life.length - refused.length,
    refusedCloseMsP50: Math.round(refused[Math.floor(refused.length / 2)] ?? 0),
    refusedCloseMsMax: Math.round(refused[refused.length - 1] ?? 0),
    fdBase,
    fdMax: seen.fdMax,
    rssMaxMiB: Math.round(seen.rssMax / 2 ** 20),
    logLines,
    seconds: (performance.now() - t0) / 1000,
  };
  console.log(`${logPattern}: ${JSON.stringify(result)}`);
  return result;
}

describe('hostile clients: 1,000 half-open connections', () => {
  it('iSCSI portal and NBD port: caps hold, the excess closes at once, a line per interval, a normal client afterwards', { timeout: 180_000 }, async () => {
    const { p, dir, iscsiPort, nbdPort } = await startConfigured({
      backstores: { r0: { type: 'ramdisk', size: '8M' } },
      iscsi: {
        targets: {
          [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'r0' }, attributes: { generateNodeAcls: true, loginTimeout: TIMEOUT_S } } } },
        },
      },
      nbd: { listen: ['127.0.0.1:0'], exports: { e0: { backstore: 'r0' } } },
      limits: {
        iscsi: { maxConnections: CAP, maxConnectionsPerAddress: PER_ADDRESS },
        nbd: { maxConnections: CAP, maxConnectionsPerAddress: PER_ADDRESS, handshakeTimeout: TIMEOUT_S },
      },
    });
    try {
      for (const [fabric, port, pattern] of [
        ['iSCSI', iscsiPort, 'iSCSI connection refused'],
        ['NBD', nbdPort, 'NBD connection refused'],
      ] as const) {
        const r = await floodAndMeasure(p, port, pattern);
        expect({ fabric, refused: r.refused, admitted: r.admitted }).toEqual({ fabric, refused: CLIENTS - CAP, admitted: CAP });
        expect(r.fdMax).toBeLessThanOrEqual(r.fdBase + CAP + FD_MARGIN);
        // The first refusal, then at most one summary per 10 s interval (plus one for a partial interval).
        expect(r.logLines).toBeGreaterThanOrEqual(1);
        expect(r.logLines).toBeLessThanOrEqual(2 + Math.ceil(r.seconds / 10));
        // The half-open ones are gone: a normal client gets in.
        if (fabric === 'iSCSI') {
          const c = await RawInitiator.connect(iscsiPort);
          try {
            const res = await c.login('iqn.2026-12.org.example:normal', IQN);
            expect(res.statusClass).toBe(0);
          } finally {
            c.close();
          }
        } else {
          const c = await NbdClient.connect(`nbd://127.0.0.1:${nbdPort}/e0`);
          try {
            expect((await c.read(0, 4096)).length).toBe(4096);
          } finally {
            await c.disconnect().catch(() => c.destroy());
          }
        }
      }
      // The refusals by reason, as `lunkit stats --json` shows them.
      const stats = JSON.parse(await cliOk(join(dir, 's.sock'), ['stats', '--json'])) as {
        iscsi: { connectionsRefused: Record<string, number> };
        nbd: { refusedTotal: number; refusedPerAddress: number };
      };
      const iscsiRefused = stats.iscsi.connectionsRefused;
      // 127.0.0.1 went 50 over its share before the total filled up.
      expect(iscsiRefused['per-address']).toBeGreaterThanOrEqual(50);
      expect(iscsiRefused.total + iscsiRefused['per-address']).toBe(CLIENTS - CAP);
      expect(stats.nbd.refusedPerAddress).toBeGreaterThanOrEqual(50);
      expect(stats.nbd.refusedTotal + stats.nbd.refusedPerAddress).toBe(CLIENTS - CAP);
      console.log(`lunkit stats: iscsi ${JSON.stringify(iscsiRefused)}, nbd total ${stats.nbd.refusedTotal} per-address ${stats.nbd.refusedPerAddress}`);
      expect(p.child.exitCode).toBeNull();
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('hostile clients: CHAP brute force', () => {
  it('20 wrong secrets in a row: answers delayed more and more; another name from another address is not delayed', { timeout: 120_000 }, async () => {
    const VICTIM = 'iqn.2026-12.org.example:victim';
    const GOOD = 'iqn.2026-12.org.example:good';
    const SECRET = 'right-secret-123';
    const acl = (userid: string) => ({ mappedLuns: { '0': 0 }, chap: { userid, password: SECRET } });
    const { p, dir, iscsiPort: port } = await startConfigured(
      {
        backstores: { r0: { type: 'ramdisk', size: '8M' } },
        iscsi: {
          targets: {
            [IQN]: {
              tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'r0' }, acls: { [VICTIM]: acl('victim'), [GOOD]: acl('good') }, attributes: { authentication: true } } },
            },
          },
        },
        limits: { iscsi: { authFailureDelayMs: 20, authFailureMaxDelayMs: 320 } },
      },
      'debug',
    );
    try {
      const attempts: ChapAttempt[] = [];
      for (let i = 0; i < 20; i++) {
        const a = await chapAttempt(port, { initiator: VICTIM, target: IQN, userid: 'victim', secret: `wrong-secret-${i}!!` });
        expect(a.status).toBe(0x0201);
        attempts.push(a);
      }
      // Answer k comes at least the sum of the backoffs after failures 1..k-1
      // (20 ms doubling to 320 ms) after the first response was sent.
      const backoff = (n: number) => Math.min(320, 20 * 2 ** (n - 1));
      let floor = 0;
      attempts.forEach((a, k) => {
        if (k > 0) floor += backoff(k);
        expect(a.answeredAt - attempts[0].sentAt).toBeGreaterThanOrEqual(floor - 1);
      });
      console.log(`CHAP answers (ms): ${attempts.map((a) => Math.round(a.answerMs)).join(' ')}`);
      const good = await chapAttempt(port, { initiator: GOOD, target: IQN, userid: 'good', secret: SECRET, localAddress: '127.0.0.2' });
      expect(good.status).toBe(0);
      console.log(`good login from another name/address answered in ${Math.round(good.answerMs)} ms`);
      const delayedFor = (who: string) => p.stderr().split('\n').filter((l) => l.includes('iSCSI CHAP response delayed after failures') && l.includes(`initiator=${who}`));
      expect(delayedFor(GOOD)).toHaveLength(0);
      expect(delayedFor(VICTIM).length).toBeGreaterThan(0);
      // Failed logins: one line, then summaries, not twenty.
      expect(p.stderr().split('\n').filter((l) => l.includes(' info  iSCSI login failed ')).length).toBe(1);
      expect(p.child.exitCode).toBeNull();
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
