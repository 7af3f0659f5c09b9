// The README's first command runs `lunkit demo`: a ramdisk LUN over iSCSI that
// iscsi-ls lists and iscsi-inq reads, stopping cleanly on SIGTERM without a terminal.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startLunkit, type LunkitProcess } from '../../helpers/lunkit-process.js';

const run = promisify(execFile);
let proc: LunkitProcess | undefined;
afterEach(async () => {
  await proc?.stop();
  proc = undefined;
});

describe('lunkit demo', () => {
  it('serves a LUN that iscsi-ls lists and iscsi-inq reads, shows it as a FUSE file, and exits 0 on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lunkit-demo-'));
    const fuseDir = join(dir, 'fuse');
    try {
      await demoRun(fuseDir, join(dir, 'lunkit.sock'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  async function demoRun(fuseDir: string, socket: string): Promise<void> {
    // Its own control socket: the default one may be another test's (demo-daemon.test.ts covers the verbs).
    proc = await startLunkit(['demo', '--port', '0', '--nbd-port', '0', '--size', '64M', '--log-level', 'warn', '--fuse-dir', fuseDir, '--socket', socket]);
    // The tests run as root on a kernel with FUSE (README): the file is there.
    expect(proc.stdout()).toContain(`file:      ${fuseDir}/demo`);
    expect((await stat(join(fuseDir, 'demo'))).size).toBe(64 * 1024 * 1024);
    const url = /URL:\s+(iscsi:\/\/\S+)/.exec(proc.stdout())![1];
    expect(url).toMatch(/^iscsi:\/\/127\.0\.0\.1:\d+\/iqn\.2026-11\.io\.lunkit:demo\/0$/);
    const base = url.replace(/iqn.*$/, '');
    const ls = await run('iscsi-ls', ['-s', base], { timeout: 15_000 });
    expect(ls.stdout).toContain('iqn.2026-11.io.lunkit:demo');
    expect(ls.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS.*Size:\s*64 Mb|Lun:0/);
    const inq = await run('iscsi-inq', [url], { timeout: 15_000 });
    expect(inq.stdout).toMatch(/Vendor:\s*LUNKIT/i);
    const code = await proc.stop();
    proc = undefined;
    expect(code).toBe(0);
    // Unmounted on the way out.
    expect(await readFile('/proc/self/mounts', 'utf8')).not.toContain(fuseDir);
  }

  it('refuses an invalid --size with the reason', async () => {
    // Refused before the daemon starts: no socket is created (the default path is named but never touched).
    await expect(startLunkit(['demo', '--port', '0', '--nbd-port', '0', '--size', '10X'], { timeoutMs: 10_000 })).rejects.toThrow(/unknown unit "X"/);
  });
});
