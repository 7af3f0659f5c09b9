// The boot-lab TFTP server against real clients: curl (tftp://), atftp and
// tftp-hpa (Debian packages curl, atftp, tftp-hpa; scripts/setup.sh installs
// them). Every fetch is compared by sha256 with its source; every client
// process is time-boxed and killed by PID; temp files are removed.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTftpServer, type TftpServer } from '../../src/bootlab/tftp-server.js';

const IPXE = '/usr/lib/ipxe/undionly.kpxe';
const CLIENT_TIMEOUT_MS = 60_000;

let root: string;
let out: string;
let server: TftpServer;
let port: number;
const files = new Map<string, Buffer>();
/** Options the server granted, per transfer, from its debug log. */
const granted: string[] = [];
const logger = {
  debug: (msg: string, f?: Record<string, unknown>) => {
    if (msg === 'tftp: transfer') granted.push(`${String(f?.file)} ${String(f?.options)}`);
  },
  info() {},
  warn() {},
  error() {},
};
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Runs a client; killed (SIGKILL, by PID) when it overstays CLIENT_TIMEOUT_MS. */
function run(cmd: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { cwd: out }, (err, stdout, stderr) => {
      clearTimeout(timer);
      if (err) reject(Object.assign(err, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, CLIENT_TIMEOUT_MS);
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

async function fetched(local: string): Promise<string> {
  const file = path.join(out, local);
  const data = await readFile(file);
  await rm(file);
  return sha(data);
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lunkit-tftp-root-'));
  out = await mkdtemp(path.join(tmpdir(), 'lunkit-tftp-out-'));
  files.set('small.bin', randomBytes(1000));
  files.set('exact.bin', randomBytes(1428 * 3)); // exact multiple of 1428 and of 512
  files.set('big.bin', randomBytes(33 * 1024 * 1024 + 77)); // > 65535 blocks of 512
  for (const [name, data] of files) await writeFile(path.join(root, name), data);
  if (existsSync(IPXE)) files.set('undionly.kpxe', await readFile(IPXE));
  server = await startTftpServer({
    root,
    host: '127.0.0.1',
    port: 0,
    files: existsSync(IPXE) ? new Map([['undionly.kpxe', files.get('undionly.kpxe')!]]) : undefined,
    maxWindowsize: 16,
    logger,
  });
  port = server.address().port;
});

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
  await rm(out, { recursive: true, force: true });
});

describe('curl tftp://', () => {
  it.each([
    ['small.bin', []],
    ['exact.bin', []],
    ['exact.bin', ['--tftp-blksize', '1428']],
    ['small.bin', ['--tftp-no-options']],
    ['big.bin', ['--tftp-blksize', '1468']],
    ['undionly.kpxe', []],
  ] as [string, string[]][])('fetches %s %j', async (name, extra) => {
    await run('curl', ['-sS', '--max-time', '50', ...extra, '-o', 'got', `tftp://127.0.0.1:${port}/${name}`]);
    expect(await fetched('got')).toBe(sha(files.get(name)!));
  });

  it('gets ERROR 2 (curl exit 69) for ../ and ERROR 1 (exit 68) for /etc/passwd', async () => {
    // --path-as-is: curl would otherwise fold the ".." away before sending.
    await expect(run('curl', ['-sS', '--path-as-is', '--max-time', '20', '-o', 'nope', `tftp://127.0.0.1:${port}/../etc/passwd`])).rejects.toMatchObject({ code: 69 });
    await expect(run('curl', ['-sS', '--max-time', '20', '-o', 'nope', `tftp://127.0.0.1:${port}//etc/passwd`])).rejects.toMatchObject({ code: 68 });
    await rm(path.join(out, 'nope'), { force: true });
  });
});

describe('atftp', () => {
  it.each([
    ['small.bin', []],
    ['exact.bin', ['--option', 'blksize 1428']],
    ['small.bin', ['--option', 'tsize']],
    ['exact.bin', ['--option', 'blksize 1428', '--option', 'tsize', '--option', 'timeout 2']],
    ['big.bin', ['--option', 'blksize 1428', '--option', 'windowsize 8']],
    ['exact.bin', ['--option', 'windowsize 4']],
    ['undionly.kpxe', ['--option', 'blksize 1468']],
  ] as [string, string[]][])('fetches %s %j', async (name, extra) => {
    await run('atftp', [...extra, '-g', '-r', name, '-l', 'got', '127.0.0.1', String(port)]);
    expect(await fetched('got')).toBe(sha(files.get(name)!));
    for (const o of extra.filter((e) => e !== '--option')) expect(granted.at(-1)).toContain(o.split(' ')[0] + '=');
  });

  it('was granted windowsize 8 for the big file', () => {
    expect(granted).toContain(`big.bin blksize=1428,windowsize=8`);
  });
});

describe('tftp-hpa tftp', () => {
  it.each(['small.bin', 'exact.bin', 'undionly.kpxe', 'big.bin'])('fetches %s in binary mode', async (name) => {
    await run('tftp', ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', name, 'got']);
    expect(await fetched('got')).toBe(sha(files.get(name)!));
  });

  it('reads a file the way a netascii client expects it', async () => {
    await writeFile(path.join(root, 'text.txt'), 'line one\nline two\n');
    await run('tftp', ['127.0.0.1', String(port), '-c', 'get', 'text.txt', 'got']);
    expect((await readFile(path.join(out, 'got'))).toString()).toBe('line one\nline two\n');
    await rm(path.join(out, 'got'));
  });

  it('sees the server still serving after the clients are done', () => {
    expect(server.stats().active).toBe(0);
    expect(server.stats().transfers).toBeGreaterThan(10);
  });
});
