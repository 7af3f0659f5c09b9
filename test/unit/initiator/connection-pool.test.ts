// MC/S connection picking and CID allocation, without sockets.
import { describe, expect, it } from 'vitest';
import { allocateCid, pickLeastLoaded, type Pickable } from '../../../src/initiator/connection-pool.js';

const c = (inFlight: number, state: Pickable['state'] = 'active'): Pickable => ({ inFlight, state });

describe('pickLeastLoaded', () => {
  it('picks the active connection with the fewest tasks in flight', () => {
    expect(pickLeastLoaded([c(3), c(1), c(2)])).toBe(1);
  });

  it('skips draining, failed and closed connections; -1 when none is active', () => {
    expect(pickLeastLoaded([c(0, 'draining'), c(5), c(0, 'failed'), c(0, 'closed')])).toBe(1);
    expect(pickLeastLoaded([c(0, 'failed'), c(0, 'closed')])).toBe(-1);
    expect(pickLeastLoaded([])).toBe(-1);
  });

  it('ties rotate from the cursor instead of piling onto the first', () => {
    const conns = [c(0), c(0), c(0)];
    expect(pickLeastLoaded(conns, 0)).toBe(0);
    expect(pickLeastLoaded(conns, 1)).toBe(1);
    expect(pickLeastLoaded(conns, 2)).toBe(2);
    expect(pickLeastLoaded(conns, 3)).toBe(0);
  });

  it('spreads a burst evenly when the caller counts what it assigns', () => {
    const conns = [c(0), c(0), c(0), c(0)];
    let cursor = 0;
    for (let i = 0; i < 16; i++) {
      const k = pickLeastLoaded(conns, cursor);
      conns[k].inFlight++;
      cursor = k + 1;
    }
    expect(conns.map((x) => x.inFlight)).toEqual([4, 4, 4, 4]);
  });
});

describe('allocateCid', () => {
  it('takes the first free CID from the start point, wrapping at 16 bits', () => {
    expect(allocateCid(new Set([0, 1, 3]), 0)).toBe(2);
    expect(allocateCid(new Set([0, 1, 3]), 3)).toBe(4);
    expect(allocateCid(new Set([0xffff]), 0xffff)).toBe(0);
  });
});
