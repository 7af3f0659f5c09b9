// Every CLI verb that takes a secret, through the real CLI (bin/lunkit.js)
// and a real daemon: --password-file FILE, "-" (stdin) for the value or the
// file, the old argv flag still working, and clear usage errors (exit 2) for
// ambiguous or unreadable input. Secrets set over the control socket are
// checked in the saved configuration; the initiator verbs log in with them.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cliOk, freePort, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';

const T = 'iqn.2026-01.org.example:secrets';
const I = 'iqn.1994-05.com.redhat:secrets1';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `lunkit ARGS` with `input` on stdin (stdin closed when undefined), time-boxed. */
function lunkit(socket: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LUNKIT_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LUNKIT_SOCKET: socket } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lunkit ${args.join(' ')} did not finish\n${stderr}`));
    }, 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('secrets from a file or stdin, every verb', () => {
  let d: DaemonProcess;
  let work: string;
  let port: number;
  const file = (name: string) => join(work, name);

  beforeAll(async () => {
    d = await startDaemon();
    work = await mkdtemp(join(tmpdir(), 'lunkit-secrets-'));
    port = await freePort();
    await cliOk(d.socket, ['backstore', 'create', 'ramdisk', 'rd0', '--size', '8M']);
    await cliOk(d.socket, ['target', 'create', T, '--portal', `127.0.0.1:${port}`]);
    await cliOk(d.socket, ['lun', 'add', T, 'rd0']);
    await cliOk(d.socket, ['acl', 'add', T, I]);
    await cliOk(d.socket, ['acl', 'map', T, I, '0', '0']);
    await cliOk(d.socket, ['acl', 'chap', T, I, '--userid', 'u0', '--password', 'initial-secret-0']);
    await cliOk(d.socket, ['set', 'attribute', T, 'authentication=true']);
    await writeFile(file('one.secret'), 'file-secret-one\n', { mode: 0o600 });
    await writeFile(file('two.secret'), 'file-secret-two\r\n', { mode: 0o600 });
    await writeFile(file('short.secret'), 'short\n', { mode: 0o600 });
    await writeFile(file('huge.secret'), 'x'.repeat(10_000), { mode: 0o600 });
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The saved configuration (it holds the secrets; written 0600 by the daemon). */
  async function saved(): Promise<string> {
    const out = file(`saved-${Date.now()}.json`);
    await cliOk(d.socket, ['save', out]);
    const text = await readFile(out, 'utf8');
    await rm(out, { force: true });
    return text;
  }

  it('acl chap: --password-file, --mutual-password-file (CRLF dropped too)', async () => {
    const r = await lunkit(d.socket, ['acl', 'chap', T, I, '--userid', 'u1', '--password-file', file('one.secret'), '--mutual-userid', 'tgt', '--mutual-password-file', file('two.secret')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = await saved();
    expect(s).toContain('"file-secret-one"');
    expect(s).toContain('"file-secret-two"');
  });

  it('acl chap: --password - and --password-file - read stdin', async () => {
    let r = await lunkit(d.socket, ['acl', 'chap', T, I, '--userid', 'u2', '--password', '-'], 'stdin-secret-a\n');
    expect(r.code).toBe(0);
    expect(await saved()).toContain('"stdin-secret-a"');
    r = await lunkit(d.socket, ['acl', 'chap', T, I, '--userid', 'u2', '--password-file', '-', '--mutual-userid', 'tgt', '--mutual-password-file', file('two.secret')], 'stdin-secret-b');
    expect(r.code).toBe(0);
    const s = await saved();
    expect(s).toContain('"stdin-secret-b"');
    expect(s).toContain('"file-secret-two"');
  });

  it('acl chap: the old argv flag still works and says why not to use it in --help', async () => {
    const r = await lunkit(d.socket, ['acl', 'chap', T, I, '--userid', 'u3', '--password', 'argv-secret-12']);
    expect(r.code).toBe(0);
    expect(await saved()).toContain('"argv-secret-12"');
    const help = await lunkit(d.socket, ['acl', 'chap', '--help']);
    expect(help.stdout).toContain('--password-file');
    expect(help.stdout).toContain('--mutual-password-file');
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('visible to other local users in ps');
  });

  it('refuses ambiguous or unreadable secrets with exit code 2, changing nothing', async () => {
    await cliOk(d.socket, ['acl', 'chap', T, I, '--userid', 'keep', '--password', 'keep-this-secret']);
    const cases: Array<[string[], RegExp, string?]> = [
      [['acl', 'chap', T, I, '--userid', 'x', '--password', 'argv-secret-12', '--password-file', file('one.secret')], /give --password or --password-file, not both/],
      [['acl', 'chap', T, I, '--userid', 'x', '--password', '-', '--mutual-userid', 't', '--mutual-password', '-'], /only one secret can come from stdin/, 'a\n'],
      [['acl', 'chap', T, I, '--userid', 'x', '--password-file', file('missing.secret')], /--password-file .*missing\.secret: cannot open \(ENOENT\)/],
      [['acl', 'chap', T, I, '--userid', 'x', '--password-file', file('huge.secret')], /longer than 4096 bytes/],
      [['acl', 'chap', T, I, '--userid', 'x', '--password-file', file('short.secret')], /12 to 255 characters/],
      [['acl', 'chap', T, I, '--userid', 'x', '--password', '-'], /12 to 255 characters/, ''],
      [['set', 'discovery-auth', '--userid', 'x', '--password-file', file('missing.secret')], /cannot open/],
    ];
    for (const [args, msg, input] of cases) {
      const r = await lunkit(d.socket, args, input);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(msg);
    }
    expect(await saved()).toContain('"keep-this-secret"');
  });

  it('set discovery-auth: --password-file and --password -', async () => {
    let r = await lunkit(d.socket, ['set', 'discovery-auth', '--userid', 'disc', '--password-file', file('one.secret')]);
    expect(r.code).toBe(0);
    expect(await saved()).toMatch(/"disc"[\s\S]*"file-secret-one"|"file-secret-one"[\s\S]*"disc"/);
    r = await lunkit(d.socket, ['set', 'discovery-auth', '--userid', 'disc', '--password', '-', '--mutual-userid', 'tgt', '--mutual-password-file', file('two.secret')], 'disc-stdin-secret\n');
    expect(r.code).toBe(0);
    expect(await saved()).toContain('"disc-stdin-secret"');
  });

  it('initiator verbs: --password-file and --target-password-file log in; a wrong secret fails', async () => {
    // The ACL: one-way secret from one.secret, mutual from two.secret.
    await cliOk(d.socket, ['acl', 'chap', T, I, '--userid', 'u1', '--password-file', file('one.secret'), '--mutual-userid', 'tgt', '--mutual-password-file', file('two.secret')]);
    const url = `iscsi://u1@127.0.0.1:${port}/${T}/0`;
    let r = await lunkit(d.socket, ['iscsi', 'readcap', url, '--initiator-name', I, '--password-file', file('one.secret'), '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Ours from stdin, the target's from a file: mutual CHAP.
    r = await lunkit(d.socket, ['iscsi', 'readcap', url, '--initiator-name', I, '--password-file', '-', '--target-user', 'tgt', '--target-password-file', file('two.secret')], 'file-secret-one\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // A target secret that does not match: the initiator refuses the target.
    r = await lunkit(d.socket, ['iscsi', 'readcap', url, '--initiator-name', I, '--password-file', file('one.secret'), '--target-user', 'tgt', '--target-password', '-'], 'not-the-target-secret\n');
    expect(r.code).not.toBe(0);
    // Our secret wrong: the target refuses us.
    r = await lunkit(d.socket, ['iscsi', 'readcap', url, '--initiator-name', I, '--password-file', file('two.secret')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/auth/i);
    // discover with discovery CHAP from a file.
    await cliOk(d.socket, ['set', 'discovery-auth', '--userid', 'disc', '--password-file', file('one.secret')]);
    r = await lunkit(d.socket, ['discover', `iscsi://disc@127.0.0.1:${port}`, '--initiator-name', I, '--password-file', file('one.secret'), '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(T);
    r = await lunkit(d.socket, ['discover', `iscsi://disc@127.0.0.1:${port}`, '--initiator-name', I, '--password-file', file('two.secret')]);
    expect(r.code).not.toBe(0);
  }, 60_000);
});
