// CHAP throttling: delays per initiator name and per source address, the
// address queue for parallel attempts, reset, quiet period, bounded memory.

import { describe, expect, it } from 'vitest';
import { ADDRESS_GRACE, AuthThrottle, ipv6Prefix64 } from '../../../src/fabrics/iscsi/auth-throttle.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const limits = { authFailureDelayMs: 100, authFailureMaxDelayMs: 1600 };

describe('AuthThrottle', () => {
  it('doubles the wait per failure of a name, up to the ceiling', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => limits, now: c.now });
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      // Each guess from a fresh address: only the name's backoff counts.
      const addr = `10.0.0.${i}`;
      const w = th.delayFor('iqn.x:victim', addr);
      waits.push(w);
      c.advance(w);
      th.failed('iqn.x:victim', addr);
    }
    expect(waits).toEqual([0, 100, 200, 400, 800, 1600, 1600, 1600]);
    expect(th.failuresOf('IQN.X:VICTIM')).toBe(8);
  });

  it('another initiator name from a clean address is not delayed; success resets the name', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => limits, now: c.now });
    for (let i = 0; i < 5; i++) th.failed('iqn.x:victim', '10.0.0.1');
    expect(th.delayFor('iqn.x:other', '10.0.0.2')).toBe(0);
    expect(th.delayFor('iqn.x:victim', '10.0.0.2')).toBeGreaterThan(0);
    th.succeeded('iqn.x:victim');
    expect(th.delayFor('iqn.x:victim', '10.0.0.2')).toBe(0);
  });

  it('an address gets some free failures, then its parallel attempts queue one backoff apart', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => limits, now: c.now });
    // Rotating names: the address is what counts.
    for (let i = 0; i < ADDRESS_GRACE; i++) th.failed(`iqn.x:n${i}`, '10.9.9.9');
    expect(th.delayFor('iqn.x:fresh', '10.9.9.9')).toBe(0);
    th.failed('iqn.x:n-last', '::ffff:10.9.9.9');
    // 200 responses arriving together: each waits one more step.
    const waits = Array.from({ length: 5 }, (_, i) => th.delayFor(`iqn.x:p${i}`, '10.9.9.9'));
    expect(waits).toEqual([100, 200, 300, 400, 500]);
    // Success by name does not clear the address.
    th.succeeded('iqn.x:p0');
    expect(th.delayFor('iqn.x:p9', '10.9.9.9')).toBe(600);
  });

  it('forgets failures after the quiet period', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => limits, now: c.now, quietMs: 5000 });
    th.failed('iqn.x:a', '10.0.0.1');
    expect(th.size).toBe(2);
    c.advance(5000);
    expect(th.delayFor('iqn.x:a', '10.0.0.1')).toBe(0);
    expect(th.size).toBe(0);
  });

  it('keeps at most maxEntries keys, long names as a hash', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => limits, now: c.now, maxEntries: 100 });
    for (let i = 0; i < 10_000; i++) th.failed(`iqn.x:${'n'.repeat(1000)}${i}`, `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect(th.size).toBe(100);
    // The most recent ones are kept.
    expect(th.failuresOf(`iqn.x:${'n'.repeat(1000)}9999`)).toBe(1);
    expect(th.failuresOf(`iqn.x:${'n'.repeat(1000)}0`)).toBe(0);
  });

  it('caps the name part of the wait (below the login timeout), never the address queue', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => ({ authFailureDelayMs: 1000, authFailureMaxDelayMs: 30_000 }), now: c.now });
    for (let i = 0; i < 10; i++) th.failed('iqn.x:victim', `10.1.0.${i}`);
    expect(th.delayFor('iqn.x:victim', '10.2.0.1', 7500)).toBe(7500);
    expect(th.delayFor('iqn.x:victim', '10.2.0.1')).toBe(30_000);
    for (let i = 0; i < 10; i++) th.failed(`iqn.x:n${i}`, '10.3.0.1');
    // The address's own queue is not capped: the attacker waits its turn.
    expect(th.delayFor('iqn.x:other', '10.3.0.1', 7500)).toBe(30_000);
  });

  it('counts IPv6 sources by their /64', () => {
    expect(ipv6Prefix64('2001:db8:1:2::5')).toBe('2001:db8:1:2');
    expect(ipv6Prefix64('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2');
    expect(ipv6Prefix64('2001:db8::1')).toBe('2001:db8:0:0');
    expect(ipv6Prefix64('::1')).toBe('0:0:0:0');
    expect(ipv6Prefix64('fe80::1%eth0')).toBe('fe80:0:0:0');
    expect(ipv6Prefix64('not:an::address::x')).toBe('not:an::address::x');
    const c = clock();
    const th = new AuthThrottle({ limits: () => limits, now: c.now });
    // Every guess from a fresh address of one /64: still one address queue.
    for (let i = 0; i < ADDRESS_GRACE + 1; i++) th.failed(`iqn.x:r${i}`, `2001:db8:1:2::${i + 1}`);
    expect(th.delayFor('iqn.x:fresh', '2001:db8:1:2:ffff::9')).toBeGreaterThan(0);
    expect(th.delayFor('iqn.x:fresh', '2001:db8:1:3::9')).toBe(0);
  });

  it('a zero delay switches throttling off', () => {
    const c = clock();
    const th = new AuthThrottle({ limits: () => ({ authFailureDelayMs: 0, authFailureMaxDelayMs: 0 }), now: c.now });
    for (let i = 0; i < 50; i++) th.failed('iqn.x:a', '10.0.0.1');
    expect(th.delayFor('iqn.x:a', '10.0.0.1')).toBe(0);
  });
});
