// The control socket bounds what one client can make the daemon hold (issue
// 17): requests pipelined without reading the answers stop being read once
// answers pile up, and resume when the client reads; a 65th client is refused
// with ERR_CONTROL_BUSY.

import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlServer, MAX_CLIENTS, MAX_IN_FLIGHT } from '../../../src/daemon/control-server.js';

let dir: string;
let server: ControlServer | undefined;
const clients: Socket[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-ctlbp-'));
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path, () => resolve(s));
    s.once('error', reject);
    clients.push(s);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('control socket budgets', () => {
  it('stops reading a client that does not read its answers, and catches up when it does', async () => {
    let calls = 0;
    const big = 'x'.repeat(64 * 1024);
    server = await ControlServer.listen({ path: join(dir, 's.sock'), handler: async () => (calls++, { big }) });
    const c = await open(server.path);
    c.pause();
    const N = 5000;
    const lines = Array.from({ length: N }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"m"}\n`).join('');
    c.write(lines);
    await sleep(1500);
    const handledWhileUnread = calls;
    // 4 MiB of unread answers (plus what the kernel's socket buffers take) is
    // far from 5000 x 64 KiB = 312 MiB.
    expect(handledWhileUnread).toBeGreaterThan(0);
    expect(handledWhileUnread).toBeLessThan(1000);
    let answered = 0;
    let rest = '';
    const all = new Promise<void>((resolve) => {
      c.on('data', (d: Buffer) => {
        const text = rest + d.toString('latin1');
        const parts = text.split('\n');
        rest = parts.pop() ?? '';
        answered += parts.length;
        if (answered === N) resolve();
      });
    });
    c.resume();
    await all;
    expect(calls).toBe(N);
  }, 60_000);

  it('keeps at most MAX_IN_FLIGHT requests of one client running', async () => {
    let running = 0;
    let peak = 0;
    server = await ControlServer.listen({
      path: join(dir, 's.sock'),
      handler: async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(5);
        running--;
        return {};
      },
    });
    const c = await open(server.path);
    let answered = 0;
    const N = 200;
    const done = new Promise<void>((resolve) => {
      c.on('data', (d: Buffer) => {
        answered += d.toString().split('\n').length - 1;
        if (answered === N) resolve();
      });
    });
    c.write(Array.from({ length: N }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"m"}\n`).join(''));
    await done;
    expect(peak).toBe(MAX_IN_FLIGHT);
  }, 30_000);

  it('refuses a client beyond MAX_CLIENTS with ERR_CONTROL_BUSY', async () => {
    server = await ControlServer.listen({ path: join(dir, 's.sock'), handler: async () => ({}) });
    for (let i = 0; i < MAX_CLIENTS; i++) await open(server.path);
    await sleep(100);
    const extra = await open(server.path);
    const line = await new Promise<string>((resolve) => {
      let text = '';
      extra.on('data', (d: Buffer) => (text += d.toString()));
      extra.on('close', () => resolve(text));
    });
    expect(JSON.parse(line).error.data.code).toBe('ERR_CONTROL_BUSY');
    // A place frees up when a client leaves.
    clients[0].destroy();
    await sleep(100);
    const again = await open(server.path);
    const answer = await new Promise<string>((resolve) => {
      again.once('data', (d: Buffer) => resolve(d.toString()));
      again.write('{"jsonrpc":"2.0","id":1,"method":"m"}\n');
    });
    expect(JSON.parse(answer).id).toBe(1);
  }, 30_000);
});
