// sd_notify messages: their format, which NOTIFY_SOCKET values are used, that
// the variable leaves the environment, failures logged not thrown, and a real
// datagram through the native addon arriving with this process's PID.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSdNotifier, formatNotifyMessage, nativeDatagramSender, parseNotifySocket } from '../../../src/daemon/sd-notify.js';
import type { Logger } from '../../../src/util/log.js';
import { startFakeNotifySocket, type FakeNotifySocket } from '../../helpers/notify-socket.js';

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, f?: Record<string, unknown>) => lines.push(`${level} ${msg} ${JSON.stringify(f ?? {})}`);
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

describe('formatNotifyMessage', () => {
  it('writes KEY=VALUE lines in order, newline-terminated', () => {
    expect(formatNotifyMessage({ READY: 1, MAINPID: 42, STATUS: 'serving' })).toBe('READY=1\nMAINPID=42\nSTATUS=serving\n');
  });
  it('turns newlines in a value into spaces so a STATUS cannot forge another field', () => {
    expect(formatNotifyMessage({ STATUS: 'bad\nREADY=1' })).toBe('STATUS=bad READY=1\n');
  });
  it('refuses field names that are not upper-case keys', () => {
    expect(() => formatNotifyMessage({ 'ready': 1 })).toThrow(/not upper-case/);
    expect(() => formatNotifyMessage({ 'A=B': 1 })).toThrow(/not upper-case/);
  });
});

describe('parseNotifySocket', () => {
  it('takes absolute paths and abstract names', () => {
    expect(parseNotifySocket('/run/systemd/notify')).toEqual({ path: '/run/systemd/notify' });
    expect(parseNotifySocket('@/org/freedesktop/systemd1/notify/123')).toEqual({ path: '@/org/freedesktop/systemd1/notify/123' });
  });
  it('is off without the variable', () => {
    expect(parseNotifySocket(undefined)).toEqual({});
    expect(parseNotifySocket('')).toEqual({});
  });
  it('names what is wrong with other values', () => {
    expect(parseNotifySocket('relative/sock').problem).toMatch(/not an absolute path/);
    expect(parseNotifySocket('vsock:2:1234').problem).toMatch(/vsock/);
    expect(parseNotifySocket('@').problem).toBeDefined();
    expect(parseNotifySocket(`/${'x'.repeat(120)}`).problem).toMatch(/longer/);
  });
});

describe('createSdNotifier', () => {
  it('is a no-op without NOTIFY_SOCKET', () => {
    const sent: string[] = [];
    const n = createSdNotifier({ env: {}, send: (_p, m) => sent.push(m) });
    expect(n.enabled).toBe(false);
    expect(n.notify({ READY: 1 })).toBe(false);
    expect(sent).toEqual([]);
  });

  it('sends to the socket and removes NOTIFY_SOCKET from the environment', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/x.sock', OTHER: 'kept' };
    const sent: Array<[string, string]> = [];
    const n = createSdNotifier({ env, send: (p, m) => sent.push([p, m]) });
    expect(env).toEqual({ OTHER: 'kept' });
    expect(n.enabled).toBe(true);
    expect(n.notify({ READY: 1 })).toBe(true);
    expect(n.notify({ STOPPING: 1 })).toBe(true);
    expect(sent).toEqual([
      ['/run/x.sock', 'READY=1\n'],
      ['/run/x.sock', 'STOPPING=1\n'],
    ]);
  });

  it('logs a failed send and returns false instead of throwing', () => {
    const logger = recordingLogger();
    const n = createSdNotifier({
      env: { NOTIFY_SOCKET: '/run/x.sock' },
      logger,
      send: () => {
        throw Object.assign(new Error('ECONNREFUSED: Connection refused, sendto'), { code: 'ECONNREFUSED' });
      },
    });
    expect(n.notify({ READY: 1 })).toBe(false);
    expect(logger.lines.join('\n')).toMatch(/warn systemd notification not delivered .*READY=1/);
  });

  it('says loudly when systemd waits but nothing can send', () => {
    const logger = recordingLogger();
    const n = createSdNotifier({ env: { NOTIFY_SOCKET: '/run/x.sock' }, logger, send: undefined });
    expect(n.enabled).toBe(false);
    expect(logger.lines.join('\n')).toMatch(/error NOTIFY_SOCKET is set but the lunkit_native addon/);
  });

  it('warns about an unusable NOTIFY_SOCKET and stays off', () => {
    const logger = recordingLogger();
    const n = createSdNotifier({ env: { NOTIFY_SOCKET: 'vsock:2:99' }, logger, send: () => undefined });
    expect(n.enabled).toBe(false);
    expect(logger.lines.join('\n')).toMatch(/warn systemd notifications are off/);
  });
});

describe('the native sender', () => {
  let sock: FakeNotifySocket;
  beforeAll(async () => {
    sock = await startFakeNotifySocket();
  });
  afterAll(async () => {
    await sock?.close();
  });

  it('is built (npm run install) and delivers one datagram with this PID as sender', async () => {
    const send = nativeDatagramSender();
    expect(send, 'the lunkit_native addon with sdNotify: run `npm run install`').toBeDefined();
    const n = createSdNotifier({ env: { NOTIFY_SOCKET: sock.path } });
    expect(n.notify({ READY: 1, STATUS: 'unit test' })).toBe(true);
    const m = await sock.waitFor(/READY=1/);
    expect(m).toEqual({ pid: process.pid, text: 'READY=1\nSTATUS=unit test\n' });
  });

  it('reaches an abstract-namespace socket ("@name")', async () => {
    const abstract = await startFakeNotifySocket({ abstract: true });
    try {
      expect(abstract.path.startsWith('@')).toBe(true);
      const n = createSdNotifier({ env: { NOTIFY_SOCKET: abstract.path } });
      expect(n.notify({ STOPPING: 1 })).toBe(true);
      expect(await abstract.waitFor(/STOPPING=1/)).toEqual({ pid: process.pid, text: 'STOPPING=1\n' });
    } finally {
      await abstract.close();
    }
  });

  it('throws errno errors for a missing socket and a bad address', () => {
    const send = nativeDatagramSender()!;
    expect(() => send(`${sock.path}.missing`, 'READY=1\n')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => send('relative', 'READY=1\n')).toThrow(/absolute path/);
  });
});
