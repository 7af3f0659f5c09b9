// Unix socket listeners: a stale socket file is replaced, a live one is not
// taken over, the file goes away on close, and the handshake works over it.
import { mkdtemp, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-unix-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function config(sock: string): ReturnType<typeof parseConfig> {
  return parseConfig({
    backstores: { ram: { type: 'ramdisk', size: '1M' } },
    nbd: { listen: [`unix:${sock}`], exports: { ram: { backstore: 'ram' } } },
  });
}

/** Reads the 18-byte greeting over the socket. */
function greeting(sock: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('timeout')), 5000);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 18) {
        clearTimeout(timer);
        c.destroy();
        resolve(buf.subarray(0, 18));
      }
    });
    c.on('error', reject);
  });
}

describe('NBD over a Unix socket', () => {
  it('replaces a stale socket file, greets, refuses to take over a live one, removes the file on close', async () => {
    const sock = join(dir, 'nbd.sock');
    // A stale socket: its server was killed (SIGKILL leaves the file behind).
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`]);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error('helper server did not start')), 10_000);
        child.stdout.once('data', () => {
          clearTimeout(t);
          res();
        });
      });
    } finally {
      // Killed by PID whether or not it came up, so no process is left behind.
      child.kill('SIGKILL');
      await exited;
    }
    expect(existsSync(sock)).toBe(true);

    const rt = await LunkitRuntime.start(config(sock));
    try {
      expect(rt.nbdSocketPaths()).toEqual([sock]);
      expect((await greeting(sock)).subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
      await expect(LunkitRuntime.start(config(sock))).rejects.toThrow(/another server is listening/);
    } finally {
      await rt.stop(0);
    }
    expect(existsSync(sock)).toBe(false);
  });
});
