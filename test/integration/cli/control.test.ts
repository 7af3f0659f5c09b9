// The real CLI (bin/lunkit.js) against a real daemon on a temp socket: every
// verb end to end, --json output, exit codes (0 ok, 1 operation error, 2 usage
// error), refused changes leaving the configuration unchanged, and the
// progress bar absent when stdout is not a terminal.

import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cliOk, freePort, runCli, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';

/** Runs a program to completion (time-boxed); stdout and stderr together. */
function runProgram(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

const T = 'iqn.2026-01.org.example:cli';
const I = 'iqn.1994-05.com.redhat:c1';

describe('lunkit CLI against a live daemon', () => {
  let d: DaemonProcess;
  let work: string;

  beforeAll(async () => {
    d = await startDaemon();
    work = await mkdtemp(join(tmpdir(), 'lunkit-cli-'));
  });
  afterAll(async () => {
    await d?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const lsJson = async (): Promise<unknown> => JSON.parse(await cliOk(d.socket, ['ls', '--json']));

  it('builds a configuration verb by verb and shows it', async () => {
    const port = await freePort();
    expect(await cliOk(d.socket, ['backstore', 'create', 'file', 'disk0', '--path', 'disk0.img', '--size', '64M'], { cwd: work })).toBe(
      'Created file backstore disk0.\n',
    );
    expect(statSync(join(work, 'disk0.img')).size).toBe(64 * 1024 * 1024);
    await cliOk(d.socket, ['backstore', 'create', 'ramdisk', 'rd0', '--size', '16M']);
    await cliOk(d.socket, ['target', 'create', T, '--portal', `127.0.0.1:${port}`]);
    const lun = JSON.parse(await cliOk(d.socket, ['lun', 'add', T, 'disk0', '--json'])) as { lun: number; revision: number };
    expect(lun.lun).toBe(0);
    expect(lun.revision).toBeGreaterThan(1);
    expect(await cliOk(d.socket, ['lun', 'add', T, 'rd0', '--lun', '3'])).toBe(`Added LUN 3 -> rd0 on ${T} tpg 1.\n`);
    await cliOk(d.socket, ['acl', 'add', T, I]);
    await cliOk(d.socket, ['acl', 'chap', T, I, '--userid', 'c1', '--password', 'secretsecret12', '--mutual-userid', 'tgt', '--mutual-password', 'othersecret34']);
    await cliOk(d.socket, ['acl', 'map', T, I, '0', '3', '--read-only']);
    await cliOk(d.socket, ['set', 'attribute', T, 'loginTimeout=30', 'authentication=true']);
    await cliOk(d.socket, ['set', 'parameter', T, 'MaxBurstLength=1048576']);
    await cliOk(d.socket, ['nbd', 'export', 'add', 'golden', 'rd0', '--read-only', '--description', 'a ramdisk']);

    const tree = await cliOk(d.socket, ['ls', '--width', '20']);
    expect(tree).toContain(`  | | o- disk0 ... [${join(work, 'disk0.img')} (64M) thin]\n`);
    expect(tree).toContain(`  |     | o- ${I} ... [Mapped LUNs: 1, mutual CHAP]\n`);
    expect(tree).toContain('  |     |   o- mapped_lun0 ... [lun3 rd0 (ro)]\n');
    expect(tree).toContain(`  |       o- 127.0.0.1:${port} ... [OK]\n`);
    expect(tree).toContain('      o- golden ... [rd0 (ro) "a ramdisk"]\n');
    expect(await cliOk(d.socket, ['ls', '/iscsi/' + T + '/tpg1/luns', '--width', '20'])).toBe(
      `o- luns ... [LUNs: 2]\n  o- lun0 ... [file/disk0 (${join(work, 'disk0.img')})]\n  o- lun3 ... [ramdisk/rd0]\n`,
    );

    expect(await cliOk(d.socket, ['get', T, 'attribute', 'loginTimeout'])).toBe('loginTimeout=30\n');
    expect(JSON.parse(await cliOk(d.socket, ['get', T, '--json']))).toMatchObject({
      attributes: { authentication: true, loginTimeout: 30 },
      parameters: { MaxBurstLength: '1048576' },
    });
    expect(await cliOk(d.socket, ['backstore', 'list'])).toMatch(/^NAME +TYPE +SIZE +PATH\/URL +FLAGS\ndisk0 +file +64M .*thin\nrd0 +ramdisk +16M +-/);
    expect(await cliOk(d.socket, ['target', 'list'])).toContain(`${T}  1    127.0.0.1:${port}  2     1`);
    expect(await cliOk(d.socket, ['nbd', 'export', 'list'])).toMatch(/golden +rd0 +ro +a ramdisk/);
    expect(await cliOk(d.socket, ['sessions'])).toBe('No iSCSI sessions.\n');
    expect(JSON.parse(await cliOk(d.socket, ['sessions', '--json']))).toEqual({ sessions: [] });
  });

  it('refuses bad input locally with exit code 2, sending nothing', async () => {
    const before = await lsJson();
    const cases: Array<[string[], RegExp]> = [
      [['target', 'create', 'iqn.2026-1.org.example:x'], /target name "iqn.2026-1.org.example:x" is not a valid iSCSI name: expected iqn.yyyy-mm/],
      [['acl', 'add', T, 'Client1'], /initiator name "Client1" is not a valid iSCSI name/],
      [['backstore', 'create', 'ramdisk', 'r9', '--size', '10Q'], /unknown unit "Q" .*\(ERR_INVALID_SIZE\)/],
      [['backstore', 'resize', 'disk0', 'lots'], /ERR_INVALID_SIZE/],
      [['set', 'attribute', T, 'nosuch=1'], /unknown TPG attribute/],
      [['acl', 'chap', T, I, '--userid', 'x', '--password', 'short'], /12 to 255 characters/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(d.socket, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^lunkit: /);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
    }
    const unknown = await runCli(d.socket, ['frobnicate']);
    expect(unknown.code).toBe(2);
    const missing = await runCli(d.socket, ['lun', 'add', T]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Not enough non-option arguments/);
    const j = await runCli(d.socket, ['target', 'create', 'bad', '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stderr)).toEqual({ error: { code: 'ERR_INVALID_NAME', message: expect.stringMatching(/not a valid iSCSI name/) } });
    expect(await lsJson()).toEqual(before);
  });

  it('reports daemon errors with their stable code, exit code 1, configuration unchanged', async () => {
    const before = await lsJson();
    const inUse = await runCli(d.socket, ['backstore', 'delete', 'disk0']);
    expect(inUse.code).toBe(1);
    expect(inUse.stderr).toMatch(/^lunkit: .*disk0.*LUN 0.* \(ERR_IN_USE\)\n/);
    const dup = await runCli(d.socket, ['lun', 'add', T, 'rd0', '--lun', '3', '--json']);
    expect(dup.code).toBe(1);
    expect((JSON.parse(dup.stderr) as { error: { code: string } }).error.code).toBe('ERR_EXISTS');
    const noBs = await runCli(d.socket, ['lun', 'add', T, 'nosuch']);
    expect(noBs.code).toBe(1);
    expect(noBs.stderr).toMatch(/\(ERR_NOT_FOUND\)/);
    const noTarget = await runCli(d.socket, ['get', 'iqn.2026-01.org.example:none']);
    expect(noTarget.code).toBe(1);
    expect(noTarget.stderr).toMatch(/no target named iqn.2026-01.org.example:none \(ERR_NOT_FOUND\)/);
    const noPath = await runCli(d.socket, ['ls', '/iscsi/nope']);
    expect(noPath.code).toBe(1);
    expect(await lsJson()).toEqual(before);
  });

  it('says how to start a daemon when there is none (exit 1, ERR_CONTROL_CONNECT)', async () => {
    const sock = join(work, 'none.sock');
    const r = await runCli(undefined, ['ls', '--socket', sock]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`lunkit: no lunkit daemon at ${sock}: start one with \`lunkit daemon\` (ERR_CONTROL_CONNECT)\n`);
    const j = await runCli(undefined, ['backstore', 'list', '--json', '--socket', sock]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stderr)).toMatchObject({ error: { code: 'ERR_CONTROL_CONNECT' } });
  });

  it('preallocates with no progress bar when stdout is not a terminal', async () => {
    const r = await runCli(d.socket, ['backstore', 'create', 'file', 'thick', '--path', join(work, 'thick.img'), '--size', '32M', '--no-thin']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Created file backstore thick.\n');
    expect(r.stdout).not.toMatch(/[█░%]/);
    expect(r.stdout).not.toContain('\u001b[');
    const rs = await runCli(d.socket, ['backstore', 'resize', 'thick', '48M']);
    expect(rs.code).toBe(0);
    expect(rs.stdout).toBe('Resized backstore thick to 48M.\n');
    expect(statSync(join(work, 'thick.img')).size).toBe(48 * 1024 * 1024);
    await cliOk(d.socket, ['backstore', 'delete', 'thick']);
  });

  it('draws a progress bar when stdout is a terminal (script(1) gives it a pty)', async () => {
    const img = join(work, 'tty.img');
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(LUNKIT_BIN)} backstore create file ttybar --path ${JSON.stringify(img)} --size 64M --no-thin`;
    const r = await runProgram('script', ['-qec', cmd, '/dev/null'], { LUNKIT_SOCKET: d.socket });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('preallocating ttybar');
    expect(r.out).toContain('█');
    expect(r.out).toContain('100%');
    expect(r.out).toContain('Created file backstore ttybar.');
    await cliOk(d.socket, ['backstore', 'delete', 'ttybar']);
  });

  it('save, clear and restore give back the same configuration', async () => {
    const before = await lsJson();
    const saved = JSON.parse(await cliOk(d.socket, ['save', 'saved.json', '--json'], { cwd: work })) as { path: string };
    expect(saved.path).toBe(join(work, 'saved.json'));
    expect(JSON.parse(await readFile(join(work, 'saved.json'), 'utf8'))).toEqual(before);
    expect(await cliOk(d.socket, ['clear'])).toBe('Cleared the configuration.\n');
    expect(await lsJson()).toMatchObject({ backstores: {}, iscsi: { targets: {} } });
    expect(await cliOk(d.socket, ['restore', join(work, 'saved.json'), '--dry-run'])).toMatch(/is valid; nothing was changed/);
    expect(await lsJson()).toMatchObject({ backstores: {} });
    const r = await runCli(d.socket, ['restore', join(work, 'saved.json')]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[█░%]/);
    expect(await lsJson()).toEqual(before);
  });

  it('restore validates the file first and names the JSON path', async () => {
    const before = await lsJson();
    const bad = join(work, 'bad.json');
    await writeFile(bad, JSON.stringify({ version: 1, backstores: { d: { type: 'ramdisk', size: '1X' } } }));
    const r = await runCli(d.socket, ['restore', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backstores\.d\.size: .*unknown unit/);
    expect(r.stderr).toMatch(/\(ERR_INVALID_CONFIG\)/);
    await writeFile(bad, '{ not json');
    expect((await runCli(d.socket, ['restore', bad])).stderr).toMatch(/not valid JSON/);
    expect(await lsJson()).toEqual(before);
  });

  it('deletes what it created: ACL mapping, ACL, LUNs, portal, target, export, backstores', async () => {
    const port2 = await freePort();
    await cliOk(d.socket, ['portal', 'add', T, `127.0.0.1:${port2}`]);
    await cliOk(d.socket, ['portal', 'delete', T, `127.0.0.1:${port2}`]);
    await cliOk(d.socket, ['acl', 'unmap', T, I, '0']);
    await cliOk(d.socket, ['set', 'attribute', T, 'authentication=false']);
    await cliOk(d.socket, ['acl', 'chap', T, I, '--clear']);
    await cliOk(d.socket, ['acl', 'delete', T, I]);
    await cliOk(d.socket, ['lun', 'delete', T, '3']);
    await cliOk(d.socket, ['lun', 'delete', T, '0']);
    await cliOk(d.socket, ['target', 'delete', T]);
    await cliOk(d.socket, ['nbd', 'export', 'delete', 'golden']);
    await cliOk(d.socket, ['backstore', 'delete', 'rd0']);
    await cliOk(d.socket, ['backstore', 'delete', 'disk0']);
    const cfg = (await lsJson()) as { backstores: object; iscsi: { targets: object } };
    expect(cfg.backstores).toEqual({});
    expect(cfg.iscsi.targets).toEqual({});
    expect(existsSync(join(work, 'disk0.img'))).toBe(true);
  });
});
