// The daemon over its control socket: framing, error codes, all-or-nothing
// changes, concurrency, progress, saving. Every invalid input of issue 3's
// acceptance list leaves config.get unchanged.

import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LunkitDaemon } from '../../../src/daemon/daemon.js';
import { RawRpc } from './rpc.js';

const IQN = 'iqn.2026-11.io.lunkit.test:sock';
let dir: string;
let sock: string;
let daemon: LunkitDaemon;
let rpc: RawRpc;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-daemon-'));
  sock = join(dir, 'run', 'lunkit.sock');
  await writeFile(join(dir, 'saved.json'), '{}');
  daemon = await LunkitDaemon.start({ socketPath: sock, configFile: join(dir, 'saved.json'), backups: 2 });
  rpc = await RawRpc.connect(sock);
});

afterAll(async () => {
  rpc?.close();
  await daemon?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

async function config(): Promise<unknown> {
  return (await rpc.ok('config.get')).config;
}

async function expectError(method: string, params: Record<string, unknown>, code: string): Promise<{ message: string; path?: string; problems?: string[] }> {
  const before = await config();
  const r = await rpc.call(method, params);
  expect(r.error, `${method} should fail with ${code}`).toBeDefined();
  expect(r.error!.data.code).toBe(code);
  expect(await config()).toEqual(before);
  return { message: r.error!.message, path: r.error!.data.path, problems: r.error!.data.problems };
}

describe('control socket', () => {
  it('is a 0600 socket in a 0700 directory it created', async () => {
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'run'))).mode & 0o777).toBe(0o700);
  });

  it('answers ping and config.get', async () => {
    const p = await rpc.ok('ping');
    expect(p).toMatchObject({ pid: process.pid, revision: 1, socket: sock, configFile: join(dir, 'saved.json') });
    expect(typeof p.version).toBe('string');
    const g = await rpc.ok('config.get');
    expect(g.revision).toBe(1);
    expect(g.config).toEqual({ version: 1, backstores: {}, iscsi: { targets: {} } });
  });

  it('creates a backstore, a target and a LUN live, bumping revision', async () => {
    expect(await rpc.ok('backstore.create', { name: 'ram0', backstore: { type: 'ramdisk', size: '8M' } })).toEqual({ revision: 2 });
    expect(await rpc.ok('target.create', { iqn: IQN, portals: ['127.0.0.1:0'] })).toEqual({ revision: 3 });
    expect(await rpc.ok('lun.add', { iqn: IQN, tpg: 1, backstore: 'ram0' })).toEqual({ lun: 0, revision: 4 });
    const cfg = (await config()) as { backstores: Record<string, unknown>; iscsi: { targets: Record<string, { tpgs: Record<string, { luns: unknown; portals: unknown }> }> } };
    expect(cfg.backstores.ram0).toEqual({ type: 'ramdisk', size: 8 * 1024 * 1024, blockSize: 512, readOnly: false, removable: false });
    expect(cfg.iscsi.targets[IQN].tpgs['1']).toMatchObject({ portals: ['127.0.0.1:0'], luns: { '0': 'ram0' } });
    expect(daemon.runtime.iscsi.targetAddresses(IQN)[0].port).toBeGreaterThan(0);
  });

  it('refuses a bad IQN with ERR_INVALID_PARAMS', async () => {
    const e = await expectError('target.create', { iqn: 'not-an-iqn' }, 'ERR_INVALID_PARAMS');
    expect(e.message).toMatch(/not-an-iqn/);
  });

  it('refuses an unknown backstore with ERR_NOT_FOUND', async () => {
    const e = await expectError('lun.add', { iqn: IQN, tpg: 1, backstore: 'nope' }, 'ERR_NOT_FOUND');
    expect(e.path).toBe('backstores.nope');
  });

  it('refuses a duplicate LUN with ERR_EXISTS', async () => {
    const e = await expectError('lun.add', { iqn: IQN, tpg: 1, backstore: 'ram0', lun: 0 }, 'ERR_EXISTS');
    expect(e.path).toBe(`iscsi.targets[${JSON.stringify(IQN)}].tpgs["1"].luns["0"]`);
  });

  it('refuses a bad size with ERR_INVALID_PARAMS', async () => {
    await expectError('backstore.create', { name: 'bad', backstore: { type: 'ramdisk', size: '10X' } }, 'ERR_INVALID_PARAMS');
    await expectError('backstore.create', { name: 'bad', backstore: { type: 'ramdisk', size: 1000 } }, 'ERR_INVALID_PARAMS');
    await expectError('backstore.resize', { name: 'ram0', size: 'huge' }, 'ERR_INVALID_PARAMS');
  });

  it('refuses deleting a backstore in use, naming the LUN', async () => {
    const e = await expectError('backstore.delete', { name: 'ram0' }, 'ERR_IN_USE');
    expect(e.message).toContain(`LUN 0 of ${IQN} tpg 1`);
  });

  it('answers malformed JSON with ERR_CONTROL_PARSE and keeps the connection', async () => {
    const before = await config();
    rpc.sendLine('{"jsonrpc":"2.0","id":77,"method":\n');
    const err = await rpc.waitFor((m) => m.error?.data.code === 'ERR_CONTROL_PARSE');
    expect(err.id).toBeNull();
    expect(err.error!.code).toBe(-32700);
    expect(await config()).toEqual(before);
  });

  it('answers non-requests, unknown methods and bad params with their codes', async () => {
    rpc.sendLine('[1,2]\n');
    await rpc.waitFor((m) => m.error?.data.code === 'ERR_CONTROL_REQUEST');
    const r = await rpc.call('no.such.method');
    expect(r.error!.data.code).toBe('ERR_CONTROL_METHOD');
    expect(r.error!.code).toBe(-32601);
    rpc.sendLine(`${JSON.stringify({ jsonrpc: '2.0', id: 'p', method: 'ping', params: [1] })}\n`);
    const p = await rpc.waitFor((m) => m.id === 'p');
    expect(p.error!.data.code).toBe('ERR_INVALID_PARAMS');
  });

  it('reassembles a request split at every byte, accepts CRLF, answers no notification', async () => {
    const c = await RawRpc.connect(sock);
    try {
      c.sendLine(`${JSON.stringify({ jsonrpc: '2.0', method: 'ping' })}\n`);
      const bytes = Buffer.from(`${JSON.stringify({ jsonrpc: '2.0', id: 'split', method: 'ping' })}\r\n`);
      for (let i = 0; i < bytes.length; i++) {
        c.sendLine(bytes.subarray(i, i + 1));
        await new Promise((r) => setImmediate(r));
      }
      const m = await c.waitFor((x) => x.id === 'split');
      expect(m.result!.pid).toBe(process.pid);
      expect(c.received).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  it('ends a connection that sends a line above 1 MiB, after ERR_CONTROL_TOO_LARGE', async () => {
    const before = await config();
    const big = await RawRpc.connect(sock);
    big.sendLine(`{"jsonrpc":"2.0","id":1,"method":"backstore.create","params":{"name":"x","pad":"${'a'.repeat(1024 * 1024 + 10)}"}}\n`);
    const m = await big.waitFor((x) => x.error !== undefined);
    expect(m.error!.data.code).toBe('ERR_CONTROL_TOO_LARGE');
    expect(m.error!.code).toBe(-32000);
    await new Promise<void>((r) => (big.closed ? r() : big.socket.once('close', () => r())));
    expect(await config()).toEqual(before);
  });

  it('applies a change whose client went away, and keeps serving', async () => {
    const gone = await RawRpc.connect(sock);
    gone.sendLine(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'backstore.create', params: { name: 'orphan', backstore: { type: 'null', size: '1M' } } })}\n`);
    gone.close();
    // The request was read whole: it applies fully (or not at all), never half.
    for (let i = 0; i < 50; i++) {
      const cfg = (await config()) as { backstores: Record<string, unknown> };
      if ('orphan' in cfg.backstores) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const cfg = (await config()) as { backstores: Record<string, unknown> };
    expect(cfg.backstores.orphan).toEqual({ type: 'null', size: 1024 * 1024, blockSize: 512 });
    expect(daemon.runtime.backstores.has('orphan')).toBe(true);
    await rpc.ok('backstore.delete', { name: 'orphan' });
  });

  it('rolls a change back when a portal cannot bind (ERR_APPLY_FAILED)', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const before = daemon.runtime.iscsi.targetAddresses(IQN);
      const e = await expectError('portal.add', { iqn: IQN, tpg: 1, portal: `127.0.0.1:${port}` }, 'ERR_APPLY_FAILED');
      expect(e.message).toMatch(/EADDRINUSE|in use/i);
      expect(daemon.runtime.iscsi.targetAddresses(IQN)).toEqual(before);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('serialises concurrent clients: every change gets its own revision', async () => {
    const start = (await rpc.ok('ping')).revision as number;
    const clients = await Promise.all(Array.from({ length: 8 }, () => RawRpc.connect(sock)));
    const results = await Promise.all(clients.map((c, i) => c.ok('backstore.create', { name: `c${i}`, backstore: { type: 'null', size: '1M' } })));
    for (const c of clients) c.close();
    const revs = results.map((r) => r.revision as number).sort((a, b) => a - b);
    expect(revs).toEqual(Array.from({ length: 8 }, (_, i) => start + 1 + i));
    for (let i = 0; i < 8; i++) await rpc.ok('backstore.delete', { name: `c${i}` });
  });

  it('sends progress notifications while preallocating a thick file', async () => {
    const path = join(dir, 'thick.img');
    const r = await rpc.call('backstore.create', { name: 'thick', backstore: { type: 'file', path, size: '3M', thin: false } });
    expect(r.error).toBeUndefined();
    const idx = rpc.received.indexOf(r);
    const progress = rpc.received.filter((m, i) => m.method === 'progress' && m.params?.id === r.id && i < idx);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)!.params).toMatchObject({ what: 'preallocating thick', done: 3 * 1024 * 1024, total: 3 * 1024 * 1024 });
    expect((await stat(path)).size).toBe(3 * 1024 * 1024);
    await rpc.ok('backstore.delete', { name: 'thick' });
  });

  it('validates config.replace whole, listing every problem, and supports dryRun', async () => {
    const bad = { backstores: { a: { type: 'ramdisk', size: '1M' } }, iscsi: { targets: { 'bad-name': { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'zz' } } } } } } };
    const e = await expectError('config.replace', { config: bad }, 'ERR_INVALID_CONFIG');
    expect(e.problems!.length).toBeGreaterThanOrEqual(2);
    expect(e.problems!.join('\n')).toMatch(/luns\["0"\]: no backstore named "zz"/);
    const cur = await config();
    const dry = await rpc.ok('config.replace', { config: { backstores: {} }, dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(await config()).toEqual(cur);
    const v9 = await expectError('config.replace', { config: { version: 9 } }, 'ERR_INVALID_CONFIG');
    expect(v9.problems![0]).toMatch(/newer than this lunkit/);
  });

  it('reports config.replace progress in objects and applies it whole', async () => {
    const cur = (await config()) as { backstores: Record<string, unknown>; iscsi: unknown };
    const next = { ...cur, backstores: { ...cur.backstores, n1: { type: 'null', size: 4096, blockSize: 512 }, n2: { type: 'null', size: 4096, blockSize: 512 }, n3: { type: 'null', size: 4096, blockSize: 512 } } };
    const r = await rpc.call('config.replace', { config: next });
    expect(r.error).toBeUndefined();
    const progress = rpc.received.filter((m) => m.method === 'progress' && m.params?.id === r.id);
    expect(progress.map((m) => m.params!.done)).toEqual([1, 2, 3]);
    expect(progress.every((m) => m.params!.total === 3)).toBe(true);
    expect(await config()).toEqual(next);
    await rpc.ok('config.replace', { config: cur });
    expect(await config()).toEqual(cur);
  });

  it('saves atomically with rotated backups, mode 0600', async () => {
    const file = join(dir, 'saved.json');
    await rm(file);
    const first = await rpc.ok('config.save');
    expect(first).toEqual({ path: file, backups: [] });
    await rpc.ok('config.save');
    const third = await rpc.ok('config.save');
    expect(third.backups).toEqual([`${file}.1`, `${file}.2`]);
    await rpc.ok('config.save');
    await expect(stat(`${file}.3`)).rejects.toThrow();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(await config());
  });

  it('refuses to start on the socket of a live daemon', async () => {
    await expect(LunkitDaemon.start({ socketPath: sock })).rejects.toThrow(/another lunkit daemon is listening/);
    // The live one is untouched.
    expect((await rpc.ok('ping')).pid).toBe(process.pid);
  });
});

describe('stale control socket', () => {
  it('is removed and replaced when nothing answers on it', async () => {
    const d = await mkdtemp(join(tmpdir(), 'lunkit-stale-'));
    const path = join(d, 'stale.sock');
    try {
      // A process that dies by SIGKILL leaves its socket file behind.
      const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
      await new Promise<void>((r) => child.stdout.once('data', () => r()));
      child.kill('SIGKILL');
      await new Promise<void>((r) => child.once('exit', () => r()));
      expect((await stat(path)).isSocket()).toBe(true);
      const dm = await LunkitDaemon.start({ socketPath: path });
      try {
        const c = await RawRpc.connect(path);
        expect((await c.ok('ping')).revision).toBe(1);
        c.close();
      } finally {
        await dm.stop(0);
      }
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
