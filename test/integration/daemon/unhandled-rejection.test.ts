// A real `lunkit daemon` that meets unhandled promise rejections keeps
// serving and logs them (rate-limited), and still stops cleanly on SIGTERM.
// The rejections come from a preload module (node --import, through
// NODE_OPTIONS for the daemon process only) that rejects a promise nobody
// handles on each SIGUSR2: no test hook in the product.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cliOk, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';

const PRELOAD = `
process.on('SIGUSR2', () => {
  Promise.reject(new Error('test rejection nobody handles'));
});
`;

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('daemon: unhandled promise rejections', () => {
  let dir: string;
  let d: DaemonProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-unhandled-'));
    const preload = join(dir, 'reject-on-usr2.mjs');
    await writeFile(preload, PRELOAD);
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${saved ?? ''} --import=${pathToFileURL(preload).href}`.trim();
    try {
      d = await startDaemon({ args: ['--log-level', 'info'] });
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  }, 30_000);
  afterAll(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs the rejection once per interval, keeps answering, exits 0 on SIGTERM', { timeout: 30_000 }, async () => {
    const daemon = d!;
    for (let i = 0; i < 20; i++) daemon.child.kill('SIGUSR2');
    const lines = () => daemon.stderr().split('\n').filter((l) => l.includes('unhandled promise rejection'));
    await waitFor('the rejection log line', () => lines().length > 0);
    // Still serving: the control socket answers, a change applies.
    await cliOk(daemon.socket, ['backstore', 'create', 'ramdisk', 'after', '--size', '1M']);
    expect(await cliOk(daemon.socket, ['backstore', 'list'])).toMatch(/^after +ramdisk/m);
    expect(daemon.child.exitCode).toBeNull();
    const first = lines()[0];
    expect(first).toMatch(/^\S+ error unhandled promise rejection \(a bug: please report it\); still serving err="test rejection nobody handles"/);
    // The stack is in the same line, its newlines escaped.
    expect(first).toContain('stack="Error: test rejection nobody handles\\n');
    // Twenty rejections, one line (the summary comes at the end of the interval).
    expect(lines()).toHaveLength(1);
    expect(await daemon.stop()).toBe(0);
    d = undefined;
  });
});
