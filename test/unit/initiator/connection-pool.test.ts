// MC/S connection picking and CID allocation, without sockets.
import { describe, expect, it } from 'vitest';
import { allocateCid, commandLoad, pickLeastLoaded, pickSticky, STICKY_SLACK, type LoadPickable, type Pickable } from '../../../src/initiator/connection-pool.js';

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

const l = (load: number, inFlight = 0, state: Pickable['state'] = 'active'): LoadPickable => ({ load, inFlight, state });

/** Assign `n` commands of `bytes` each the way the session does; returns the picks. */
function assign(conns: LoadPickable[], n: number, bytes: number): number[] {
  const picks: number[] = [];
  let last = -1;
  let cursor = 0;
  for (let i = 0; i < n; i++) {
    const k = pickSticky(conns, last, cursor);
    if (k !== last) cursor = k + 1;
    last = k;
    conns[k].inFlight++;
    conns[k].load += commandLoad(bytes);
    picks.push(k);
  }
  return picks;
}

describe('pickSticky', () => {
  it('keeps the last connection while it is within the slack of the least loaded', () => {
    expect(pickSticky([l(STICKY_SLACK), l(0)], 0)).toBe(0);
    expect(pickSticky([l(STICKY_SLACK + 1), l(0)], 0)).toBe(1);
  });

  it('without a last pick (or a gone one) takes the least loaded, ties by fewer tasks, then from the cursor', () => {
    expect(pickSticky([l(300), l(100), l(200)], -1)).toBe(1);
    expect(pickSticky([l(100, 3), l(100, 1)], -1)).toBe(1);
    expect(pickSticky([l(0), l(0), l(0)], -1, 2)).toBe(2);
    expect(pickSticky([l(0, 0, 'failed'), l(9000)], 0)).toBe(1);
    expect(pickSticky([l(0, 0, 'draining'), l(0, 0, 'closed')], 0)).toBe(-1);
  });

  it('sends a burst of small commands out in runs, not alternating', () => {
    const picks = assign([l(0), l(0)], 32, 4096);
    // 4 KiB commands weigh 4608: 15 fit in the slack ahead of an idle connection.
    const switches = picks.filter((k, i) => i > 0 && k !== picks[i - 1]).length;
    expect(switches).toBeLessThanOrEqual(3);
    expect(new Set(picks).size).toBe(2);
  });

  it('alternates commands larger than the slack (each connection gets its share)', () => {
    const conns = [l(0), l(0), l(0), l(0)];
    expect(assign(conns, 4, 1 << 20)).toEqual([0, 1, 2, 3]);
    assign(conns, 4, 1 << 20);
    expect(conns.map((c) => c.inFlight)).toEqual([2, 2, 2, 2]);
  });
});

describe('allocateCid', () => {
  it('takes the first free CID from the start point, wrapping at 16 bits', () => {
    expect(allocateCid(new Set([0, 1, 3]), 0)).toBe(2);
    expect(allocateCid(new Set([0, 1, 3]), 3)).toBe(4);
    expect(allocateCid(new Set([0xffff]), 0xffff)).toBe(0);
  });
});
