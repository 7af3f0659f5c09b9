// Issue 19 acceptance for `lunkit apply`: while libiscsi's iscsi-perf reads
// LUN A of target T1, one apply adds LUN B to target T2, changes T2's ACL
// (its CHAP secret) and removes target T3. The diff lists exactly those three
// objects (the secret masked); iscsi-perf runs to its end and exits 0 (it
// retries a unit attention silently but then miscounts and cannot end
// cleanly, so a clean end also says none came), and its session is the same
// one (ISID, TSIH, login time) before and after. An invalid file changes
// nothing and names the path of every problem.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cliOk, freePort, runCli, startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';

const T1 = 'iqn.2026-01.org.example:apply-t1';
const T2 = 'iqn.2026-01.org.example:apply-t2';
const T3 = 'iqn.2026-01.org.example:apply-t3';
const IA = 'iqn.1994-05.com.example:perf';
const IB = 'iqn.1994-05.com.example:other';
const SECRET_OLD = 'oldsecret-0123';
const SECRET_NEW = 'newsecret-4567';
const PERF_SECONDS = 12;

interface SessionJson {
  target: string;
  initiator: string;
  type: string;
  isid: string;
  tsih: number;
  loginTime: number;
  luns: number[];
  expCmdSN: number;
}

function configDoc(port: number, after: boolean): unknown {
  const portals = [`127.0.0.1:${port}`];
  return {
    backstores: {
      a: { type: 'ramdisk', size: 16 << 20 },
      b: { type: 'ramdisk', size: 8 << 20 },
      c: { type: 'ramdisk', size: 8 << 20 },
      d: { type: 'ramdisk', size: 8 << 20 },
    },
    iscsi: {
      targets: {
        [T1]: { tpgs: { '1': { portals, luns: { '0': 'a' }, acls: { [IA]: { mappedLuns: { '0': 0 } } } } } },
        [T2]: {
          tpgs: {
            '1': {
              portals,
              luns: after ? { '0': 'c', '1': 'b' } : { '0': 'c' },
              acls: { [IB]: { chap: { userid: 'other', password: after ? SECRET_NEW : SECRET_OLD } } },
              attributes: { authentication: true },
            },
          },
        },
        ...(after ? {} : { [T3]: { tpgs: { '1': { portals, luns: { '0': 'd' }, acls: { [IB]: { mappedLuns: { '0': 0 } } } } } } }),
      },
    },
  };
}

describe('lunkit apply under a running iscsi-perf session', () => {
  let d: DaemonProcess | undefined;
  let dir: string;
  let port: number;
  const children: Array<ReturnType<typeof spawn>> = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-apply-live-'));
    port = await freePort();
    await writeFile(join(dir, 'before.json'), JSON.stringify(configDoc(port, false)));
    await writeFile(join(dir, 'after.json'), JSON.stringify(configDoc(port, true)));
    d = await startDaemon({ dir, config: join(dir, 'before.json') });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await d?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cli = (args: string[]): Promise<string> => cliOk(d!.socket, args, { cwd: dir });
  const perfSession = async (): Promise<SessionJson | undefined> =>
    (JSON.parse(await cli(['sessions', '--json'])) as { sessions: SessionJson[] }).sessions.find((s) => s.initiator === IA && s.type === 'normal');

  it('adds a LUN, changes an ACL and removes a target without disturbing the session on LUN A', async () => {
    // The diff of the change: exactly the three objects, the secret masked.
    const diff = await runCli(d!.socket, ['diff', 'after.json', '--json'], { cwd: dir });
    expect(diff.code, diff.stderr).toBe(2);
    const parsed = JSON.parse(diff.stdout) as { changed: boolean; changes: Array<{ op: string; path: string }> };
    expect(parsed.changed).toBe(true);
    expect(parsed.changes.map((c) => `${c.op} ${c.path}`)).toEqual([
      `remove iscsi.targets["${T3}"]`,
      `add iscsi.targets["${T2}"].tpgs["1"].luns["1"]`,
      `change iscsi.targets["${T2}"].tpgs["1"].acls["${IB}"]`,
    ]);
    const human = await runCli(d!.socket, ['diff', 'after.json'], { cwd: dir });
    expect(human.code).toBe(2);
    expect(human.stdout).toContain(`~ iscsi.targets["${T2}"].tpgs["1"].acls["${IB}"]`);
    expect(human.stdout).toMatch(/chap\.password: "\*+" -> "\*+"/);
    for (const out of [diff.stdout, human.stdout]) {
      expect(out).not.toContain(SECRET_OLD);
      expect(out).not.toContain(SECRET_NEW);
    }

    // iscsi-perf on LUN A of T1 (stdbuf: its \r progress lines would sit in the pipe).
    const perf = spawn('stdbuf', ['-o0', 'iscsi-perf', '-i', IA, '-m', '4', '-b', '8', '-t', String(PERF_SECONDS), `iscsi://127.0.0.1:${port}/${T1}/0`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(perf);
    let out = '';
    perf.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    perf.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => perf.once('close', (code) => r(code)));
    let before: SessionJson | undefined;
    for (let i = 0; i < 50 && !before; i++) {
      before = await perfSession();
      if (!before) await new Promise((r) => setTimeout(r, 200));
    }
    expect(before, out).toBeDefined();
    // Let it read a while, then apply in the middle of its run.
    await new Promise((r) => setTimeout(r, 2000));
    const applied = await runCli(d!.socket, ['apply', 'after.json', '--json'], { cwd: dir });
    expect(applied.code, applied.stderr).toBe(0);
    expect((JSON.parse(applied.stdout) as { applied: boolean }).applied).toBe(true);
    // The running configuration is the file now: nothing left to change.
    const again = await runCli(d!.socket, ['diff', 'after.json'], { cwd: dir });
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout.trim()).toBe('No changes.');

    // The same session (no logout, no new login), still on its one LUN.
    const identity = (x: SessionJson | undefined): unknown => x && { target: x.target, isid: x.isid, tsih: x.tsih, loginTime: x.loginTime, luns: x.luns };
    const during = await perfSession();
    expect(identity(during)).toEqual(identity(before));
    expect(during!.expCmdSN).not.toBe(before!.expCmdSN);
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), (PERF_SECONDS + 20) * 1000))]);
    expect(code, out).toBe(0);
    expect(out).not.toMatch(/fail|abort|error|sense/i);
    expect(out).toMatch(/IOPS|MB\/s|iops/i);
  }, 90_000);

  it('an invalid file changes nothing and names the path of every problem', async () => {
    const lsBefore = await cli(['ls', '--json']);
    const bad = configDoc(port, true) as { iscsi: { targets: Record<string, { tpgs: Record<string, { luns: Record<string, string>; portals: string[] }> }> } };
    bad.iscsi.targets[T1].tpgs['1'].luns.x = 'a';
    bad.iscsi.targets[T2].tpgs['1'].portals = ['not a portal:99999'];
    await writeFile(join(dir, 'bad.json'), JSON.stringify(bad));
    for (const verb of ['apply', 'diff']) {
      const r = await runCli(d!.socket, [verb, 'bad.json'], { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`iscsi.targets["${T1}"].tpgs["1"].luns.x`);
      expect(r.stderr).toContain(`iscsi.targets["${T2}"].tpgs["1"].portals[0]`);
    }
    expect(await cli(['ls', '--json'])).toBe(lsBefore);
  }, 30_000);
});
