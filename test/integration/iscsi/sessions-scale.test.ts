// Session scale, the suite's slice of bench/sessions: 200 sessions of one
// connection each log in back to back to a real daemon, each runs an
// INQUIRY, all log out. Every step must succeed, and the daemon's RSS per
// session must stay under a generous 64 KiB (bench/sessions: about 11 KiB at
// rest). No timing is asserted.
//
// The daemon runs with --max-semi-space-size=1: a burst of logins grows V8's
// young generation (up to 32 MiB by default, kept until the memory reducer
// runs some 30 s later), a fixed cost that over 200 sessions would read as
// 160 KiB each; bounding it makes the figure what the sessions hold.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';
import { rssBytes } from '../../helpers/proc-usage.js';
import { inquiry, loginSession, logout } from '../../../src/tools/session-scale.js';

const IQN = 'iqn.2026-12.io.lunkit:sessions-scale';
const SESSIONS = 200;
let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  const c = child;
  if (c && c.exitCode === null && c.signalCode === null) {
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
  child = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function startDaemon(): Promise<{ pid: number; port: number }> {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-sessions-'));
  const n = SESSIONS + 16;
  await writeFile(
    join(dir, 'lunkit.json'),
    JSON.stringify({
      backstores: { ram: { type: 'ramdisk', size: '1M' } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'ram' }, attributes: { generateNodeAcls: true } } } } } },
      limits: { iscsi: { maxConnections: n, maxConnectionsPerAddress: n, maxSessionsPerInitiator: n } },
    }),
  );
  const c = spawn(process.execPath, ['--max-semi-space-size=1', LUNKIT_BIN, 'serve', '--config', join(dir, 'lunkit.json'), '--log-level', 'warn'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child = c;
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`daemon not ready: ${out}`)), 20_000);
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening [\d.]+:(\d+)/.exec(out);
      if (m && /^ready$/m.test(out)) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    c.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`daemon exited with ${code}: ${out}`));
    });
  });
  return { pid: c.pid!, port };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

describe('session scale (slice of bench/sessions)', () => {
  it(`${SESSIONS} sessions log in back to back, each runs INQUIRY, all log out; RSS per session under 64 KiB`, { timeout: 90_000 }, async () => {
    const { pid, port } = await startDaemon();
    const target = { host: '127.0.0.1', port, iqn: IQN, lun: 0 };
    // One session first: one-time costs (code, first allocations) are not per session.
    const warm = await loginSession(target, 100_000);
    expect(await inquiry(warm, 0)).toBe(0);
    await logout(warm);
    await settle();
    const before = rssBytes(pid);

    const conns = [];
    for (let i = 0; i < SESSIONS; i++) conns.push(await loginSession(target, i));
    const statuses = await Promise.all(conns.map((c) => inquiry(c, 0)));
    expect(statuses.filter((s) => s === 0).length).toBe(SESSIONS);
    await settle();
    const perSession = (rssBytes(pid) - before) / SESSIONS;
    expect(perSession).toBeLessThan(64 * 1024);

    const results = await Promise.allSettled(conns.map((c) => logout(c)));
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(SESSIONS);
    // The daemon is still there and serves a new session after all that.
    const after = await loginSession(target, 100_001);
    expect(await inquiry(after, 0)).toBe(0);
    await logout(after);
  });
});
