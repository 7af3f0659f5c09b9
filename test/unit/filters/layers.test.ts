// Calls pass through every layer of a stack in order: outermost first on the
// way in, innermost first on the way out (nbdkit tests/test-layers.c).

import { describe, expect, it } from 'vitest';
import {
  BackstoreFilter,
  DelayFilter,
  ErrorFilter,
  ReadonlyFilter,
  applyFilters,
  filterConfigsOf,
  filterOf,
  filtersOf,
  innermost,
} from '../../../src/backstores/filters/index.js';
import type { BackstoreCaps, BackstoreOps } from '../../../src/core/types.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { MinimalStore, RecordingFilter, RecordingStore } from './helpers.js';

function stackOfThree(log: string[]): { top: BackstoreOps; store: RecordingStore } {
  const store = new RecordingStore(log);
  const top = applyFilters(store, [
    (next) => new RecordingFilter(next, 'A', log),
    { type: 'error', rules: [] },
    (next) => new RecordingFilter(next, 'B', log),
    { type: 'delay', read: 1 },
    (next) => new RecordingFilter(next, 'C', log),
  ]);
  return { top, store };
}

const IN_OUT = (op: string, store: string) => [`A>${op}`, `B>${op}`, `C>${op}`, `store:${store}`, `C<${op}`, `B<${op}`, `A<${op}`];

describe('filter layers', () => {
  it('every operation goes A, B, C, store on the way in and C, B, A on the way out', async () => {
    const log: string[] = [];
    const { top } = stackOfThree(log);
    const cases: Array<[string, string, () => Promise<unknown>]> = [
      ['read', 'read 4096+512', () => top.read(Buffer.alloc(512), 4096)],
      ['write', 'write 0+1024 fua', () => top.write(Buffer.alloc(1024), 0, { fua: true })],
      ['flush', 'flush', () => top.flush()],
      ['trim', 'trim 512+512', () => top.unmap!(512, 512)],
      ['zeroes', 'zeroes 0+4096 may-trim', () => top.writeZeroes!(0, 4096, { mayUnmap: true })],
      ['extents', 'extents 0+8192', () => top.extents!(0, 8192)],
    ];
    for (const [op, store, run] of cases) {
      log.length = 0;
      await run();
      expect(log).toEqual(IN_OUT(op, store));
    }
    log.length = 0;
    await top.close();
    expect(log).toEqual(IN_OUT('close', 'close'));
  });

  it('a failure injected in the middle unwinds through the outer layers only', async () => {
    const log: string[] = [];
    const { top, store } = stackOfThree(log);
    filterOf(top, 'error')!.configure([{ error: 'EIO', ops: ['write'] }]);
    await expect(top.write(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'EIO' });
    expect(log).toEqual(['A>write', 'A<write']);
    expect(store.calls).toEqual([]);
  });

  it('results and data pass back out unchanged', async () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 512 });
    const top = applyFilters(rd, [{ type: 'delay', write: 1 }, { type: 'error', rules: [] }]);
    const data = Buffer.alloc(4096);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await top.write(data, 8192);
    const back = Buffer.alloc(4096);
    await top.read(back, 8192);
    expect(back.equals(data)).toBe(true);
    expect(await top.extents!(0, 1 << 20)).toEqual(await rd.extents(0, 1 << 20));
  });

  it('the first filter in the list is the outermost; kind shows the stack', () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 4096 });
    const top = applyFilters(rd, [{ type: 'readonly' }, { type: 'delay' }, { type: 'error' }]);
    expect(top).toBeInstanceOf(ReadonlyFilter);
    expect(filtersOf(top).map((f) => f.type)).toEqual(['readonly', 'delay', 'error']);
    expect(top.kind).toBe('readonly+delay+error+ramdisk');
    expect(innermost(top)).toBe(rd);
    expect(innermost(rd)).toBe(rd);
    expect(filtersOf(rd)).toEqual([]);
    expect(applyFilters(rd, [])).toBe(rd);
    expect(top.name).toBe('rd');
    expect(top.blockSize).toBe(4096);
    expect(top.size).toBe(1 << 20);
  });

  it('filterOf finds live filters by type, nth for repeats', () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 512 });
    const top = applyFilters(rd, [{ type: 'error', rules: [] }, { type: 'delay' }, { type: 'error', error: 'ENOSPC' }]);
    const outer = filterOf(top, 'error');
    const inner = filterOf(top, 'error', 1);
    expect(outer).toBeInstanceOf(ErrorFilter);
    expect(inner).toBeInstanceOf(ErrorFilter);
    expect(outer).not.toBe(inner);
    expect(inner!.rules[0].error).toBe('ENOSPC');
    expect(filterOf(top, 'delay')).toBeInstanceOf(DelayFilter);
    expect(filterOf(top, 'readonly')).toBeUndefined();
    expect(filterOf(top, 'error', 2)).toBeUndefined();
    expect(filterOf(rd, 'error')).toBeUndefined();
  });

  it('filterConfigsOf rebuilds the stack as it is now, live changes included', async () => {
    const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: 512 });
    const top = applyFilters(rd, [{ type: 'error', enabled: false, seed: 7, rules: [] }, { type: 'delay', read: '5ms' }, { type: 'readonly' }]);
    filterOf(top, 'error')!.configure([{ error: 'ENOSPC', ops: ['write'], lba: { start: 8, count: 8 }, after: 3 }]);
    filterOf(top, 'delay')!.configure({ write: { min: '1ms', max: '2ms' } });
    const cfgs = filterConfigsOf(top);
    expect(cfgs).toEqual([
      { type: 'error', enabled: false, seed: 7, rules: [{ error: 'ENOSPC', ops: ['write'], rate: 1, after: 3, lba: { start: 8, count: 8 } }] },
      { type: 'delay', enabled: true, write: { min: 1, max: 2 } },
      { type: 'readonly' },
    ]);
    const again = applyFilters(rd, cfgs);
    expect(filterConfigsOf(again)).toEqual(cfgs);
  });

  it('optional methods exist exactly when the inner store has them', async () => {
    const top = applyFilters(new MinimalStore(), [{ type: 'error', rules: [] }, { type: 'delay' }, { type: 'readonly' }]);
    expect(top.unmap).toBeUndefined();
    expect(top.writeZeroes).toBeUndefined();
    expect(top.extents).toBeUndefined();
    expect(top.resize).toBeUndefined();
    const full = applyFilters(new RecordingStore(), [{ type: 'error', rules: [] }]);
    expect(typeof full.unmap).toBe('function');
    expect(typeof full.writeZeroes).toBe('function');
    expect(typeof full.extents).toBe('function');
    expect(typeof full.resize).toBe('function');
  });

  it('resize goes to the store and the new size shows through every layer', async () => {
    const store = new RecordingStore();
    const top = applyFilters(store, [{ type: 'readonly' }, { type: 'error', rules: [] }]);
    await top.resize!(2 << 20);
    expect(store.calls).toEqual([`resize ${2 << 20}`]);
    expect(top.size).toBe(2 << 20);
  });

  it('caps derive from the inner store and are narrowed by each layer, computed once', () => {
    const store = new RecordingStore();
    const top = applyFilters(store, [{ type: 'error', rules: [] }, { type: 'readonly' }, { type: 'delay' }]);
    expect(top.caps).toEqual({ ...store.caps, canWrite: false, canFua: false, canUnmap: false, canWriteZeroes: false });
    expect(top.caps).toBe(top.caps);
    expect(Object.isFrozen(top.caps)).toBe(true);
    expect(filterOf(top, 'delay')!.caps).toEqual(store.caps);
  });

  it('a filter cannot widen caps: what the inner store lacks stays off', () => {
    class WideningFilter extends BackstoreFilter {
      readonly type = 'widen';
      protected override narrowCaps(caps: BackstoreCaps): BackstoreCaps {
        return { ...caps, canWrite: true, canUnmap: true, canExtents: true, rotationRate: 7200 };
      }
    }
    const inner = new MinimalStore();
    const ro = applyFilters(inner, [{ type: 'readonly' }]);
    const f = new WideningFilter(ro);
    expect(f.caps).toMatchObject({ canWrite: false, canUnmap: false, canExtents: false, rotationRate: 7200 });
  });

  it('a filter of our own plugs into the same contract', async () => {
    class CountingFilter extends BackstoreFilter {
      readonly type = 'count';
      n = 0;
      protected override gate(): undefined {
        this.n++;
        return undefined;
      }
    }
    let counter: CountingFilter | undefined;
    const top = applyFilters(new RecordingStore(), [(next) => (counter = new CountingFilter(next)), { type: 'delay' }]);
    await top.read(Buffer.alloc(512), 0);
    await top.flush();
    await top.unmap!(0, 512);
    expect(counter!.n).toBe(3);
    expect(top.kind).toBe('count+delay+fake');
  });
});
