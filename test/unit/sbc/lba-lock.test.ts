import { describe, expect, it } from 'vitest';
import { LbaRangeLock } from '../../../src/core/lba-lock.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('LbaRangeLock', () => {
  it('grants disjoint ranges at once and serialises overlapping ones', async () => {
    const lock = new LbaRangeLock();
    const a = await lock.lock(0n, 10);
    const b = await lock.lock(10n, 10);
    let got = false;
    const c = lock.lock(5n, 10).then((r) => {
      got = true;
      return r;
    });
    await tick();
    expect(got).toBe(false);
    a();
    await tick();
    expect(got).toBe(false);
    b();
    (await c)();
    expect(got).toBe(true);
    expect(lock.heldCount).toBe(0);
  });

  it('is FIFO fair: a later overlapping request does not overtake an earlier waiter', async () => {
    const lock = new LbaRangeLock();
    const order: string[] = [];
    const first = await lock.lock(0n, 4);
    const w1 = lock.lock(2n, 4).then((r) => (order.push('w1'), r));
    // Overlaps w1 (not the held range): it must wait for w1.
    const w2 = lock.lock(5n, 2).then((r) => (order.push('w2'), r));
    // Disjoint from everything: granted at once.
    const w3 = lock.lock(100n, 1).then((r) => (order.push('w3'), r));
    (await w3)();
    expect(order).toEqual(['w3']);
    first();
    const r1 = await w1;
    await tick();
    expect(order).toEqual(['w3', 'w1']);
    r1();
    (await w2)();
    expect(order).toEqual(['w3', 'w1', 'w2']);
    expect(lock.waitingCount).toBe(0);
  });

  it('releasing twice is harmless and zero-length ranges never block', async () => {
    const lock = new LbaRangeLock();
    const a = await lock.lock(0n, 1);
    a();
    a();
    const z = await lock.lock(0n, 0);
    z();
    expect(lock.heldCount).toBe(0);
  });
});
