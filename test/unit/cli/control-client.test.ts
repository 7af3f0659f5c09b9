// ControlClient against a tiny fake JSON-RPC server on a Unix socket in a temp
// directory: ids, out-of-order responses, error objects, progress
// notifications, connection loss and the missing-daemon message.

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { streamSnapshots } from '../../../src/cli/commands/stats.js';
import { ControlClient, ControlError } from '../../../src/daemon/control-client.js';
import type { StatsSnapshot } from '../../../src/daemon/metrics.js';

interface Req {
  id: number;
  method: string;
  params: Record<string, unknown>;
}

let dir: string;
let server: Server | undefined;
const sockets: Socket[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-cc-'));
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A fake daemon: `onRequest` gets each parsed request and the socket to answer on. */
async function fakeDaemon(onRequest: (req: Req, reply: (obj: unknown) => void, sock: Socket) => void): Promise<string> {
  const path = join(dir, 's.sock');
  server = createServer((sock) => {
    sockets.push(sock);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onRequest(JSON.parse(line) as Req, (obj) => sock.write(`${JSON.stringify(obj)}\n`), sock);
      }
    });
  });
  await new Promise<void>((r) => server!.listen(path, () => r()));
  return path;
}

describe('ControlClient', () => {
  it('sends JSON-RPC 2.0 lines and matches out-of-order responses by id', async () => {
    const seen: Req[] = [];
    const held: Array<() => void> = [];
    const path = await fakeDaemon((req, reply) => {
      seen.push(req);
      const answer = (): void => reply({ jsonrpc: '2.0', id: req.id, result: { echo: req.method, params: req.params } });
      held.push(answer);
      // Answer the second request first, then the first one.
      if (held.length === 2) {
        held[1]();
        held[0]();
      }
    });
    const c = await ControlClient.connect(path);
    const [a, b] = await Promise.all([c.call('ping'), c.call('lun.add', { iqn: 'iqn.2026-01.org.x:t', tpg: 1 })]);
    expect(a).toEqual({ echo: 'ping', params: {} });
    expect(b).toEqual({ echo: 'lun.add', params: { iqn: 'iqn.2026-01.org.x:t', tpg: 1 } });
    expect(seen.map((r) => r.id)).toEqual([1, 2]);
    expect(seen.every((r) => (r as unknown as { jsonrpc: string }).jsonrpc === '2.0')).toBe(true);
    c.close();
  });

  it('turns an error object into a ControlError with the stable code, path and problems', async () => {
    const path = await fakeDaemon((req, reply) =>
      reply({
        jsonrpc: '2.0',
        id: req.id,
        error: { code: -32004, message: 'invalid configuration', data: { code: 'ERR_INVALID_CONFIG', path: 'backstores.d', problems: ['a: bad', 'b: worse'] } },
      }),
    );
    const c = await ControlClient.connect(path);
    const err = await c.call('config.replace', { config: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    const ce = err as ControlError;
    expect(ce.code).toBe('ERR_INVALID_CONFIG');
    expect(ce.rpcCode).toBe(-32004);
    expect(ce.path).toBe('backstores.d');
    expect(ce.problems).toEqual(['a: bad', 'b: worse']);
    expect(ce.message).toBe('invalid configuration');
    c.close();
  });

  it('delivers progress notifications to the call they belong to', async () => {
    const path = await fakeDaemon((req, reply) => {
      if (req.method === 'slow') {
        reply({ jsonrpc: '2.0', method: 'progress', params: { id: req.id, what: 'preallocating d', done: 1, total: 4 } });
        reply({ jsonrpc: '2.0', method: 'progress', params: { id: 999, what: 'someone else', done: 9, total: 9 } });
        reply({ jsonrpc: '2.0', method: 'progress', params: { id: req.id, what: 'preallocating d', done: 4, total: 4 } });
      }
      reply({ jsonrpc: '2.0', id: req.id, result: { revision: 2 } });
    });
    const c = await ControlClient.connect(path);
    const got: unknown[] = [];
    const res = await c.call('slow', {}, { onProgress: (p) => got.push(p) });
    expect(res).toEqual({ revision: 2 });
    expect(got).toEqual([
      { what: 'preallocating d', done: 1, total: 4 },
      { what: 'preallocating d', done: 4, total: 4 },
    ]);
    c.close();
  });

  it('handles a response split across writes and several responses in one write', async () => {
    const path = await fakeDaemon((req, _reply, sock) => {
      if (req.id === 1) return;
      const r1 = JSON.stringify({ jsonrpc: '2.0', id: 1, result: 'one' });
      const r2 = JSON.stringify({ jsonrpc: '2.0', id: 2, result: 'two' });
      const all = `${r1}\n${r2}\n`;
      sock.write(all.slice(0, 7));
      setTimeout(() => sock.write(all.slice(7)), 20);
    });
    const c = await ControlClient.connect(path);
    const [a, b] = await Promise.all([c.call('a'), c.call('b')]);
    expect([a, b]).toEqual(['one', 'two']);
    c.close();
  });

  it('fails pending calls with ERR_CONTROL_CLOSED when the daemon goes away', async () => {
    const path = await fakeDaemon((_req, _reply, sock) => sock.destroy());
    const c = await ControlClient.connect(path);
    await expect(c.call('ping')).rejects.toMatchObject({ code: 'ERR_CONTROL_CLOSED' });
    await expect(c.call('ping')).rejects.toMatchObject({ code: 'ERR_CONTROL_CLOSED' });
  });

  it('fails every pending call with the connection-level error of an id-null response', async () => {
    const path = await fakeDaemon((_req, reply) =>
      reply({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'request line above 1 MiB', data: { code: 'ERR_CONTROL_TOO_LARGE' } } }),
    );
    const c = await ControlClient.connect(path);
    await expect(c.call('x')).rejects.toMatchObject({ code: 'ERR_CONTROL_TOO_LARGE', rpcCode: -32000 });
    c.close();
  });

  it('says how to start a daemon when there is none', async () => {
    const path = join(dir, 'missing.sock');
    const err = await ControlClient.connect(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).code).toBe('ERR_CONTROL_CONNECT');
    expect((err as ControlError).message).toBe(`no lunkit daemon at ${path}: start one with \`lunkit daemon\``);
  });

  it('hands notifications other than progress to onNotification listeners until removed', async () => {
    const path = await fakeDaemon((req, reply) => {
      reply({ jsonrpc: '2.0', method: 'progress', params: { id: req.id, what: 'x', done: 1, total: 2 } });
      reply({ jsonrpc: '2.0', method: 'stats', params: { subscription: 3, n: req.id } });
      reply({ jsonrpc: '2.0', method: 'bare' });
      reply({ jsonrpc: '2.0', id: req.id, result: {} });
    });
    const c = await ControlClient.connect(path);
    const a: unknown[] = [];
    const b: unknown[] = [];
    const offA = c.onNotification((method, params) => a.push([method, params]));
    c.onNotification((method, params) => b.push([method, params]));
    await c.call('one');
    expect(a).toEqual([
      ['stats', { subscription: 3, n: 1 }],
      ['bare', {}],
    ]);
    offA();
    await c.call('two');
    expect(a).toHaveLength(2);
    expect(b).toEqual([
      ['stats', { subscription: 3, n: 1 }],
      ['bare', {}],
      ['stats', { subscription: 3, n: 2 }],
      ['bare', {}],
    ]);
    c.close();
  });

  it('tells onClose listeners once when the connection ends, and at once after it has', async () => {
    const path = await fakeDaemon((_req, _reply, sock) => sock.destroy());
    const c = await ControlClient.connect(path);
    const seen: string[] = [];
    c.onClose((e) => seen.push(e.code));
    await expect(c.call('ping')).rejects.toMatchObject({ code: 'ERR_CONTROL_CLOSED' });
    expect(c.closed).toBe(true);
    expect(seen).toEqual(['ERR_CONTROL_CLOSED']);
    const late = await new Promise<string>((r) => c.onClose((e) => r(e.code)));
    expect(late).toBe('ERR_CONTROL_CLOSED');
    expect(seen).toHaveLength(1);
  });
});

function fakeSnapshot(time: number, seqs: number[] = []): StatsSnapshot {
  return {
    version: 1,
    time,
    core: { luns: [], nexuses: [] },
    iscsi: null,
    events: seqs.map((seq) => ({ seq, time, channel: 'lunkit:iscsi:login', severity: 'info' as const, text: `e${seq}`, fields: {} })),
  };
}

describe('streamSnapshots', () => {
  it('subscribes, delivers only its own stats notifications, and unsubscribes on stop', async () => {
    const methods: Array<[string, Record<string, unknown>]> = [];
    const path = await fakeDaemon((req, reply) => {
      methods.push([req.method, req.params]);
      if (req.method === 'stats.subscribe') {
        reply({ jsonrpc: '2.0', id: req.id, result: { subscription: 7, intervalMs: req.params.intervalMs } });
        reply({ jsonrpc: '2.0', method: 'stats', params: { subscription: 7, snapshot: fakeSnapshot(1000, [1, 2]) } });
        reply({ jsonrpc: '2.0', method: 'stats', params: { subscription: 8, snapshot: fakeSnapshot(1500) } });
        reply({ jsonrpc: '2.0', method: 'stats', params: { subscription: 7, snapshot: fakeSnapshot(2000, [3]) } });
      } else reply({ jsonrpc: '2.0', id: req.id, result: {} });
    });
    const c = await ControlClient.connect(path);
    const got: StatsSnapshot[] = [];
    const errors: Error[] = [];
    const stream = await streamSnapshots(c, 250, { onSnapshot: (s) => got.push(s), onError: (e) => errors.push(e) });
    expect(stream.mode).toBe('subscribe');
    expect(stream.subscription).toBe(7);
    await vi.waitFor(() => expect(got.map((s) => s.time)).toEqual([1000, 2000]));
    await stream.stop();
    expect(methods).toEqual([
      ['stats.subscribe', { intervalMs: 250 }],
      ['stats.unsubscribe', { subscription: 7 }],
    ]);
    c.close();
    expect(errors).toEqual([]);
  });

  it('reports the end of the connection to onError while subscribed', async () => {
    let sock: Socket | undefined;
    const path = await fakeDaemon((req, reply, s) => {
      sock = s;
      reply({ jsonrpc: '2.0', id: req.id, result: { subscription: 1, intervalMs: 1000 } });
    });
    const c = await ControlClient.connect(path);
    const errors: string[] = [];
    const stream = await streamSnapshots(c, 1000, { onSnapshot: () => {}, onError: (e) => errors.push((e as ControlError).code) });
    sock!.destroy();
    await vi.waitFor(() => expect(errors).toEqual(['ERR_CONTROL_CLOSED']));
    await stream.stop();
  });

  it('falls back to polling stats.snapshot with eventsSince when the daemon has no stats.subscribe', async () => {
    const asked: Array<Record<string, unknown>> = [];
    let t = 0;
    const path = await fakeDaemon((req, reply) => {
      if (req.method === 'stats.subscribe') {
        reply({ jsonrpc: '2.0', id: req.id, error: { code: -32601, message: 'unknown method "stats.subscribe"', data: { code: 'ERR_CONTROL_METHOD' } } });
        return;
      }
      asked.push(req.params);
      t += 1000;
      reply({ jsonrpc: '2.0', id: req.id, result: fakeSnapshot(t, t === 1000 ? [1, 2, 3] : []) });
    });
    const c = await ControlClient.connect(path);
    const got: number[] = [];
    const stream = await streamSnapshots(c, 100, { onSnapshot: (s) => got.push(s.time), onError: () => {} });
    expect(stream.mode).toBe('poll');
    await vi.waitFor(() => expect(got.length).toBeGreaterThanOrEqual(3));
    await stream.stop();
    const n = got.length;
    expect(asked[0]).toEqual({});
    expect(asked[1]).toEqual({ eventsSince: 3 });
    await new Promise((r) => setTimeout(r, 250));
    expect(got.length).toBe(n);
    c.close();
  });

  it('passes other errors of stats.subscribe to the caller', async () => {
    const path = await fakeDaemon((req, reply) =>
      reply({ jsonrpc: '2.0', id: req.id, error: { code: -32602, message: 'params.intervalMs: too small', data: { code: 'ERR_INVALID_PARAMS' } } }),
    );
    const c = await ControlClient.connect(path);
    await expect(streamSnapshots(c, 100, { onSnapshot: () => {}, onError: () => {} })).rejects.toMatchObject({ code: 'ERR_INVALID_PARAMS' });
    c.close();
  });
});
