// Connection admission: total and per-address caps, release, live limits, and
// refusals logged once per interval rather than once per attempt.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConnectionAdmission, RateLimitedLog, addressKey } from '../../../src/util/admission.js';

type Line = { msg: string; fields: Record<string, unknown> };

function recorder(): { lines: Line[]; warn: (msg: string, fields?: Record<string, unknown>) => void } {
  const lines: Line[] = [];
  return { lines, warn: (msg, fields) => lines.push({ msg, fields: fields ?? {} }) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ConnectionAdmission', () => {
  it('caps connections per address, then in total, and releases exactly once', () => {
    const rec = recorder();
    const limits = { maxConnections: 5, maxConnectionsPerAddress: 2 };
    const a = new ConnectionAdmission({ limits: () => limits, fabric: 'NBD', log: rec });
    const r1 = a.admit('10.0.0.1');
    const r2 = a.admit('::ffff:10.0.0.1');
    expect(r1).toBeTypeOf('function');
    expect(r2).toBeTypeOf('function');
    expect(a.admit('10.0.0.1')).toBeUndefined();
    expect(a.refused()['per-address']).toBe(1);
    const others = ['10.0.0.2', '10.0.0.3', '10.0.0.4'].map((ip) => a.admit(ip));
    expect(others.every((r) => typeof r === 'function')).toBe(true);
    expect(a.active).toBe(5);
    expect(a.admit('10.0.0.9')).toBeUndefined();
    expect(a.refused().total).toBe(1);
    r1!();
    r1!();
    expect(a.active).toBe(4);
    expect(a.admit('10.0.0.1')).toBeTypeOf('function');
    for (const r of others) r!();
    expect(a.addresses).toBe(1);
  });

  it('reads the limits at every check (setLimits applies to the next connection)', () => {
    const limits = { maxConnections: 1, maxConnectionsPerAddress: 1 };
    const a = new ConnectionAdmission({ limits: () => limits, fabric: 'iSCSI', log: {} });
    expect(a.admit('a')).toBeTypeOf('function');
    expect(a.admit('b')).toBeUndefined();
    limits.maxConnections = 2;
    expect(a.admit('b')).toBeTypeOf('function');
  });

  it('logs the first refusal at once and the rest as one summary per interval', () => {
    vi.useFakeTimers();
    const rec = recorder();
    const a = new ConnectionAdmission({ limits: () => ({ maxConnections: 2, maxConnectionsPerAddress: 1 }), fabric: 'iSCSI', log: rec, intervalMs: 10_000, now: () => Date.now() });
    a.admit('1.1.1.1');
    // 1.1.1.1 again: per address; 2.2.2.2 gets the last slot, then it is over its share too.
    for (let i = 0; i < 1000; i++) a.admit(i % 2 === 0 ? '1.1.1.1' : '2.2.2.2');
    expect(rec.lines).toHaveLength(1);
    expect(rec.lines[0]).toEqual({ msg: 'iSCSI connection refused', fields: { reason: 'per-address', remote: '1.1.1.1', limit: 1, live: 1 } });
    vi.advanceTimersByTime(10_000);
    expect(rec.lines).toHaveLength(2);
    expect(rec.lines[1]).toEqual({ msg: 'iSCSI connection refused (repeated)', fields: { more: 998, seconds: 10, 'per-address': 998 } });
    // Still flooding: one more summary per interval.
    for (let i = 0; i < 50; i++) a.admit('3.3.3.3');
    vi.advanceTimersByTime(10_000);
    expect(rec.lines).toHaveLength(3);
    expect(rec.lines[2].fields.more).toBe(50);
    // Quiet for an interval: the next refusal is logged at once again.
    vi.advanceTimersByTime(20_000);
    a.admit('4.4.4.4');
    expect(rec.lines).toHaveLength(4);
    expect(rec.lines[3].msg).toBe('iSCSI connection refused');
    expect(a.refused()).toEqual({ total: 51, 'per-address': 999, 'per-initiator': 0 });
  });

  it('flushLog writes what is pending', () => {
    const rec = recorder();
    const log = new RateLimitedLog(rec.warn, 'x', 60_000);
    log.note({ n: 1 });
    log.note({ n: 2 }, 'b');
    log.flush();
    log.flush();
    expect(rec.lines.map((l) => l.msg)).toEqual(['x', 'x (repeated)']);
    expect(rec.lines[1].fields).toEqual({ more: 1, seconds: 60, b: 1 });
  });

  it('counts an address under one key', () => {
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('FE80::1')).toBe('fe80::1');
    expect(addressKey(undefined)).toBe('unknown');
  });
});
