// Issue 3, first acceptance line, scripted from the CLI only against a real
// `lunkit daemon`, with libiscsi's tools as the peers:
//   a sparse file backstore and a ramdisk, a target with two portals, two
//   LUNs, ACLs with CHAP (one mutual); iscsi-ls with the right CHAP
//   credentials sees both LUNs through both portals and with wrong ones is
//   refused (also for the ACL with mutual CHAP: iscsi-ls does not ask the
//   target to authenticate, which RFC 7143 §12.1.3 leaves to the initiator);
//   iscsi-inq logs in with mutual CHAP, and a wrong target secret is refused
//   by the initiator; while iscsi-perf sessions run, a third LUN is mapped to one
//   (its session keeps running: libiscsi retries the REPORTED LUNS DATA HAS
//   CHANGED unit attention, and the session's LUN list grows) and another's
//   ACL is deleted (that session ends, its iscsi-perf exits early) while the
//   daemon keeps serving the other initiators; `save`, stop, `daemon --config`
//   the saved file, and `lunkit ls --json` is identical to before.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cliOk, freePort, startDaemon, type DaemonProcess } from '../helpers/daemon-process.js';

const T = 'iqn.2026-01.org.example:mgmt';
const A = 'iqn.2026-01.org.example:init-a'; // mutual CHAP; runs iscsi-perf, gets a third LUN
const B = 'iqn.2026-01.org.example:init-b'; // one-way CHAP; keeps being served
const C = 'iqn.2026-01.org.example:init-c'; // runs iscsi-perf, its ACL is deleted
const CHAP = {
  a: { user: 'usera', pass: 'secret-a-1234', tuser: 'target-a', tpass: 'mutual-a-5678' },
  b: { user: 'userb', pass: 'secret-b-1234' },
  c: { user: 'userc', pass: 'secret-c-1234' },
};
const MiB = 1024 * 1024;

interface Tool {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  done: boolean;
}

const tools: Tool[] = [];

function tool(cmd: string, args: string[], env: Record<string, string> = {}): Tool {
  // Mutual CHAP secrets come from these variables in libiscsi; never inherit any.
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('LIBISCSI_')) delete base[k];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const t: Tool = {
    child,
    out: () => out,
    done: false,
    exited: new Promise((r) => child.once('close', (code) => r(code))),
  };
  void t.exited.then(() => (t.done = true));
  tools.push(t);
  return t;
}

async function runTool(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
  const t = tool(cmd, args, env);
  const timer = setTimeout(() => t.child.kill('SIGKILL'), timeoutMs);
  const code = await t.exited;
  clearTimeout(timer);
  return { code, out: t.out() };
}

async function until<V>(what: string, fn: () => Promise<V | undefined>, timeoutMs = 20_000): Promise<V> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

interface SessionJson {
  initiator: string;
  type: string;
  luns: number[];
}

describe('management session from the CLI only (issue 3 acceptance)', () => {
  let dir: string;
  let d: DaemonProcess | undefined;
  let ports: number[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-mgmt-'));
    d = await startDaemon({ dir });
    ports = [await freePort(), await freePort()];
    while (ports[1] === ports[0]) ports[1] = await freePort();
  });
  afterAll(async () => {
    for (const t of tools) if (!t.done) t.child.kill('SIGKILL');
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (args: string[]): Promise<string> => cliOk(d!.socket, args, { cwd: dir });
  const sessions = async (): Promise<SessionJson[]> => (JSON.parse(await cli(['sessions', '--json'])) as { sessions: SessionJson[] }).sessions;
  const url = (port: number, who: { user: string; pass: string }, lun?: number): string =>
    `iscsi://${who.user}%${who.pass}@127.0.0.1:${port}/${lun === undefined ? '' : `${T}/${lun}`}`;

  it('runs the whole scripted session', async () => {
    // --- build it, from the CLI only ---
    await cli(['backstore', 'create', 'file', 'sparse0', '--path', 'sparse0.img', '--size', '64M']);
    const st = await stat(join(dir, 'sparse0.img'));
    expect(st.size).toBe(64 * MiB);
    expect(st.blocks * 512).toBeLessThan(st.size); // sparse: no blocks preallocated
    await cli(['backstore', 'create', 'ramdisk', 'ram0', '--size', '32M']);
    await cli(['backstore', 'create', 'ramdisk', 'ram1', '--size', '16M']);
    await cli(['target', 'create', T, '--portal', `127.0.0.1:${ports[0]}`, '--portal', `127.0.0.1:${ports[1]}`]);
    expect(JSON.parse(await cli(['lun', 'add', T, 'sparse0', '--json']))).toMatchObject({ lun: 0 });
    expect(JSON.parse(await cli(['lun', 'add', T, 'ram0', '--json']))).toMatchObject({ lun: 1 });
    for (const [ini, c] of [[A, CHAP.a], [B, CHAP.b], [C, CHAP.c]] as const) {
      await cli(['acl', 'add', T, ini]);
      const mutual = 'tuser' in c ? ['--mutual-userid', c.tuser, '--mutual-password', c.tpass] : [];
      await cli(['acl', 'chap', T, ini, '--userid', c.user, '--password', c.pass, ...mutual]);
      await cli(['acl', 'map', T, ini, '0', '0']);
      await cli(['acl', 'map', T, ini, '1', '1']);
    }
    await cli(['set', 'attribute', T, 'authentication=true']);

    // --- iscsi-ls: right credentials see both LUNs through both portals; wrong ones are refused ---
    // A's ACL has mutual CHAP; iscsi-ls logs in with one-way CHAP (it never
    // asks the target to prove itself), which the target accepts.
    for (const [ini, creds] of [[B, CHAP.b], [A, CHAP.a]] as const) {
      const ok = await runTool('iscsi-ls', ['-s', '-i', ini, url(ports[0], creds)]);
      expect(ok.code, ok.out).toBe(0);
      for (const p of ports) expect(ok.out).toContain(`Target:${T} Portal:127.0.0.1:${p},1`);
      // iscsi-ls prints block size x last LBA (READ CAPACITY(10)), one block
      // short of the capacity: 64M shows as 63M.
      expect(ok.out.match(/Lun:0 +Type:DIRECT_ACCESS \(Size:63M\)/g), ok.out).toHaveLength(2);
      expect(ok.out.match(/Lun:1 +Type:DIRECT_ACCESS \(Size:31M\)/g), ok.out).toHaveLength(2);
    }
    for (const [ini, user] of [[B, CHAP.b.user], [A, CHAP.a.user]] as const) {
      const wrong = await runTool('iscsi-ls', ['-s', '-i', ini, url(ports[0], { user, pass: 'not-the-secret-99' })]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.out).toMatch(/iscsi_connect failed.*Authentication failure/);
      expect(wrong.out).not.toMatch(/Lun:0/);
    }

    // --- mutual CHAP: the initiator checks the target's answer too ---
    for (const lun of [0, 1]) {
      const mutualOk = await runTool('iscsi-inq', ['-i', A, url(ports[1], CHAP.a, lun)], {
        LIBISCSI_CHAP_TARGET_USERNAME: CHAP.a.tuser,
        LIBISCSI_CHAP_TARGET_PASSWORD: CHAP.a.tpass,
      });
      expect(mutualOk.code, mutualOk.out).toBe(0);
      expect(mutualOk.out).toMatch(/Peripheral Device Type/i);
    }
    const mutualBad = await runTool('iscsi-inq', ['-i', A, url(ports[1], CHAP.a, 1)], {
      LIBISCSI_CHAP_TARGET_USERNAME: CHAP.a.tuser,
      LIBISCSI_CHAP_TARGET_PASSWORD: 'wrong-target-secret',
    });
    expect(mutualBad.code).not.toBe(0);

    // --- live changes while iscsi-perf sessions run ---
    // stdbuf: iscsi-perf's progress lines (ending in \r) would sit in a pipe buffer.
    const perfA = tool('stdbuf', ['-o0', 'iscsi-perf', '-i', A, '-m', '4', '-b', '8', '-t', '120', url(ports[0], CHAP.a, 0)], {
      LIBISCSI_CHAP_TARGET_USERNAME: CHAP.a.tuser,
      LIBISCSI_CHAP_TARGET_PASSWORD: CHAP.a.tpass,
    });
    const perfC = tool('iscsi-perf', ['-i', C, '-m', '4', '-b', '8', '-t', '120', '-x', '0', url(ports[1], CHAP.c, 0)]);
    const normal = (s: SessionJson[], ini: string): SessionJson | undefined => s.find((x) => x.initiator === ini && x.type === 'normal');
    const before = await until('both iscsi-perf sessions', async () => {
      const s = await sessions();
      return normal(s, A) && normal(s, C) ? s : undefined;
    });
    expect(normal(before, A)!.luns).toEqual([0, 1]);

    expect(JSON.parse(await cli(['lun', 'add', T, 'ram1', '--json']))).toMatchObject({ lun: 2 });
    await cli(['acl', 'map', T, A, '2', '2']);
    // A's running session now sees a third LUN (and was told by unit attention,
    // which iscsi-perf retries through without an error).
    await until('the third LUN in the running session', async () => {
      const a = normal(await sessions(), A);
      return a && a.luns.includes(2) ? a : undefined;
    });

    const deletedAt = Date.now();
    await cli(['acl', 'delete', T, C]);
    const codeC = await Promise.race([perfC.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000))]);
    expect(codeC, perfC.out()).not.toBe('running');
    expect(Date.now() - deletedAt).toBeLessThan(30_000);
    expect(normal(await sessions(), C)).toBeUndefined();

    // The daemon keeps serving the others: A's perf still runs, B lists its LUNs.
    expect(perfA.done, perfA.out()).toBe(false);
    const stillB = await runTool('iscsi-ls', ['-s', '-i', B, url(ports[1], CHAP.b)]);
    expect(stillB.code, stillB.out).toBe(0);
    expect(stillB.out).toMatch(/Lun:1 +Type:DIRECT_ACCESS \(Size:31M\)/);
    // A's session is still reading: its progress output keeps coming. (iscsi-perf
    // retries a unit attention silently, but miscounts the retried command, so
    // after one it cannot end cleanly: it is stopped here instead.)
    const seen = perfA.out().length;
    await until('more iscsi-perf progress', async () => (perfA.out().length > seen + 100 ? true : undefined), 15_000);
    expect(perfA.done, perfA.out()).toBe(false);
    expect(perfA.out()).not.toMatch(/ABORTED|failed/);
    perfA.child.kill('SIGKILL');
    await perfA.exited;
    await until('the end of the killed session', async () => (normal(await sessions(), A) ? undefined : true));

    // --- save, stop, start from the saved file: the same tree ---
    const lsBefore = await cli(['ls', '--json']);
    const saved = JSON.parse(await cli(['save', 'saved.json', '--json'])) as { path: string };
    expect(saved.path).toBe(join(dir, 'saved.json'));
    expect(await d!.stop()).toBe(0);
    d = await startDaemon({ dir, config: join(dir, 'saved.json') });
    expect(await cli(['ls', '--json'])).toBe(lsBefore);
    // And it serves again from the restored configuration.
    const again = await runTool('iscsi-ls', ['-s', '-i', B, url(ports[1], CHAP.b)]);
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(/Lun:1 +Type:DIRECT_ACCESS \(Size:31M\)/);
    const third = await runTool('iscsi-inq', ['-i', A, url(ports[0], CHAP.a, 2)], {
      LIBISCSI_CHAP_TARGET_USERNAME: CHAP.a.tuser,
      LIBISCSI_CHAP_TARGET_PASSWORD: CHAP.a.tpass,
    });
    expect(third.code, third.out).toBe(0);
  });
});
