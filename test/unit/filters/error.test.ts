import { describe, expect, it } from 'vitest';
import { ErrorFilter, ERR_INVALID_FILTER, seededRandom, type FilterOpKind } from '../../../src/backstores/filters/index.js';
import { BackstoreIoError, errnoToSense } from '../../../src/core/errno.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { RecordingStore, deferred, outcomes } from './helpers.js';

const B = 512;

/** Run one operation of a kind over [offset, offset+length) and report "ok" or its code. */
async function run(f: ErrorFilter, kind: FilterOpKind, offset = 0, length = B): Promise<string> {
  const [r] = await outcomes([op(f, kind, offset, length)]);
  return r;
}

function op(f: ErrorFilter, kind: FilterOpKind, offset = 0, length = B): Promise<unknown> {
  switch (kind) {
    case 'read':
      return f.read(Buffer.alloc(length), offset);
    case 'write':
      return f.write(Buffer.alloc(length), offset);
    case 'flush':
      return f.flush();
    case 'trim':
      return f.unmap!(offset, length);
    case 'zeroes':
      return f.writeZeroes!(offset, length);
    case 'extents':
      return f.extents!(offset, length);
  }
}

describe('error filter', () => {
  it('with no rules passes everything and counts it', async () => {
    const store = new RecordingStore();
    const f = new ErrorFilter(store);
    for (const k of ['read', 'write', 'flush', 'trim', 'zeroes', 'extents'] as const) expect(await run(f, k)).toBe('ok');
    expect(store.calls).toHaveLength(6);
    expect(f.stats().passed).toEqual({ read: 1, write: 1, flush: 1, trim: 1, zeroes: 1, extents: 1 });
    expect(f.caps).toEqual(store.caps);
    expect(f.kind).toBe('error+fake');
  });

  it('an unconditional rule fails its kinds (default: all but extents) before they reach the store', async () => {
    const store = new RecordingStore();
    const f = new ErrorFilter(store, { rules: [{}] });
    for (const k of ['read', 'write', 'flush', 'trim', 'zeroes'] as const) expect(await run(f, k)).toBe('EIO');
    expect(await run(f, 'extents')).toBe('ok');
    expect(store.calls).toEqual(['extents 0+512']);
    expect(f.stats().injected).toEqual({ read: 1, write: 1, flush: 1, trim: 1, zeroes: 1, extents: 0 });
  });

  it('errors carry the errno as code and the sense reason that errno maps to', async () => {
    const cases: Array<[string, FilterOpKind, string]> = [
      ['EIO', 'read', 'MEDIUM_ERROR_READ'],
      ['EIO', 'write', 'MEDIUM_ERROR_WRITE'],
      ['EIO', 'flush', 'MEDIUM_ERROR_WRITE'],
      ['EIO', 'zeroes', 'MEDIUM_ERROR_WRITE'],
      ['ENOSPC', 'write', 'SPACE_ALLOCATION_FAILED'],
      ['ENOSPC', 'trim', 'SPACE_ALLOCATION_FAILED'],
      ['EROFS', 'write', 'WRITE_PROTECTED'],
      ['EROFS', 'zeroes', 'WRITE_PROTECTED'],
    ];
    for (const [error, kind, reason] of cases) {
      const f = new ErrorFilter(new RecordingStore(), { rules: [{ error: error as 'EIO', ops: [kind] }] });
      const err = await op(f, kind).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BackstoreIoError);
      expect(err).toMatchObject({ code: error, senseReason: reason });
      // The core's own map agrees for a plain error with that code.
      expect(errnoToSense({ code: error }, kind === 'zeroes' ? 'write' : kind === 'trim' ? 'unmap' : (kind as 'read'))).toBe(reason);
      expect((err as Error).message).toContain(`${error} injected on ${kind}`);
    }
  });

  it('sense names a reason of the table directly', async () => {
    const f = new ErrorFilter(new RecordingStore(), { rules: [{ sense: 'NOT_READY_CAUSE_NOT_REPORTABLE', ops: ['read'] }] });
    await expect(f.read(Buffer.alloc(B), 0)).rejects.toMatchObject({ code: 'EIO', senseReason: 'NOT_READY_CAUSE_NOT_REPORTABLE' });
    const g = new ErrorFilter(new RecordingStore(), { rules: [{ sense: 'SPACE_ALLOCATION_FAILED', ops: ['write'] }] });
    await expect(g.write(Buffer.alloc(B), 0)).rejects.toMatchObject({ code: 'ENOSPC', senseReason: 'SPACE_ALLOCATION_FAILED' });
  });

  describe('range', () => {
    it('fails only operations overlapping the byte range', async () => {
      const f = new ErrorFilter(new RecordingStore(), { rules: [{ ops: ['read', 'write', 'trim', 'zeroes', 'extents'], range: { offset: 8 * B, length: 4 * B } }] });
      expect(await run(f, 'read', 0, 8 * B)).toBe('ok'); // ends where the range starts
      expect(await run(f, 'read', 12 * B, B)).toBe('ok'); // starts where it ends
      expect(await run(f, 'read', 7 * B, 2 * B)).toBe('EIO'); // straddles the start
      expect(await run(f, 'write', 11 * B, 4 * B)).toBe('EIO'); // straddles the end
      expect(await run(f, 'trim', 0, 64 * B)).toBe('EIO'); // covers it
      expect(await run(f, 'zeroes', 9 * B, B)).toBe('EIO'); // inside
      expect(await run(f, 'extents', 13 * B, B)).toBe('ok');
    });

    it('takes sizes and LBAs (in the store block size)', async () => {
      const rd = new RamdiskBackstore({ name: 'rd', size: 16 << 20, blockSize: 4096 });
      const f = new ErrorFilter(rd, { rules: [{ ops: ['read'], range: { offset: '1M', length: '1M' } }, { ops: ['write'], lba: { start: 10, count: 2 } }] });
      expect(f.rules[0].range).toEqual({ offset: 1 << 20, length: 1 << 20 });
      expect(await run(f, 'read', (1 << 20) - 4096, 4096)).toBe('ok');
      expect(await run(f, 'read', 1 << 20, 4096)).toBe('EIO');
      expect(await run(f, 'write', 9 * 4096, 4096)).toBe('ok');
      expect(await run(f, 'write', 10 * 4096, 4096)).toBe('EIO');
      expect(await run(f, 'write', 11 * 4096, 4096)).toBe('EIO');
      expect(await run(f, 'write', 12 * 4096, 4096)).toBe('ok');
    });

    it('a ranged rule never fails a flush (a flush has no range)', async () => {
      const f = new ErrorFilter(new RecordingStore(), { rules: [{ range: { offset: 0, length: 1 << 20 } }] });
      expect(await run(f, 'flush')).toBe('ok');
      expect(await run(f, 'write')).toBe('EIO');
    });
  });

  describe('after N', () => {
    it('lets the first N of each kind pass and fails every one after', async () => {
      const f = new ErrorFilter(new RecordingStore(), { rules: [{ ops: ['read', 'write'], after: 3 }] });
      const reads: string[] = [];
      for (let i = 0; i < 6; i++) reads.push(await run(f, 'read'));
      expect(reads).toEqual(['ok', 'ok', 'ok', 'EIO', 'EIO', 'EIO']);
      // Writes have their own count.
      const writes: string[] = [];
      for (let i = 0; i < 5; i++) writes.push(await run(f, 'write'));
      expect(writes).toEqual(['ok', 'ok', 'ok', 'EIO', 'EIO']);
      expect(f.stats()).toMatchObject({ injected: { read: 3, write: 2 }, passed: { read: 3, write: 3 } });
    });

    it('counts only operations in the range; configure() starts the count again', async () => {
      const f = new ErrorFilter(new RecordingStore(), { rules: [{ ops: ['write'], after: 2, range: { offset: 0, length: 4 * B } }] });
      const got: string[] = [];
      for (const at of [0, 100 * B, B, 200 * B, 2 * B, 3 * B, 300 * B]) got.push(await run(f, 'write', at));
      expect(got).toEqual(['ok', 'ok', 'ok', 'ok', 'EIO', 'EIO', 'ok']);
      f.configure(f.rules);
      expect(await run(f, 'write', 0)).toBe('ok');
      expect(await run(f, 'write', 0)).toBe('ok');
      expect(await run(f, 'write', 0)).toBe('EIO');
    });

    it('does not count while disabled', async () => {
      const f = new ErrorFilter(new RecordingStore(), { enabled: false, rules: [{ ops: ['read'], after: 1 }] });
      for (let i = 0; i < 5; i++) expect(await run(f, 'read')).toBe('ok');
      f.enabled = true;
      expect(await run(f, 'read')).toBe('ok');
      expect(await run(f, 'read')).toBe('EIO');
    });
  });

  describe('rate', () => {
    async function pattern(seed: number, rate: number | string, n: number): Promise<string> {
      const f = new ErrorFilter(new RecordingStore(), { seed, rules: [{ ops: ['read'], rate }] });
      let s = '';
      for (let i = 0; i < n; i++) s += (await run(f, 'read')) === 'ok' ? '.' : 'x';
      return s;
    }

    it('a seed gives the same failures every run, another seed others', async () => {
      const a = await pattern(42, 0.3, 200);
      expect(await pattern(42, 0.3, 200)).toBe(a);
      expect(await pattern(43, 0.3, 200)).not.toBe(a);
    });

    it('fails about rate of the operations', async () => {
      const s = await pattern(1, '25%', 4000);
      const failed = [...s].filter((c) => c === 'x').length;
      // 4000 draws at p = 0.25: sd ~ 27; a fixed seed makes this exact anyway.
      expect(failed).toBeGreaterThan(850);
      expect(failed).toBeLessThan(1150);
    });

    it('rate 0 never fails, rate 1 always does', async () => {
      expect(await pattern(5, 0, 100)).toBe('.'.repeat(100));
      expect(await pattern(5, '1:1', 100)).toBe('x'.repeat(100));
    });

    it('uses an injected random source', async () => {
      const draws = [0.9, 0.1, 0.5, 0.49];
      let i = 0;
      const f = new ErrorFilter(new RecordingStore(), { random: () => draws[i++ % draws.length], rules: [{ ops: ['read'], rate: 0.5 }] });
      const got: string[] = [];
      for (let k = 0; k < 4; k++) got.push(await run(f, 'read'));
      expect(got).toEqual(['ok', 'EIO', 'ok', 'EIO']);
    });

    it('combines with range and after: only in-range operations past N draw', async () => {
      let draws = 0;
      const f = new ErrorFilter(new RecordingStore(), {
        random: () => (draws++, 0),
        rules: [{ ops: ['write'], rate: 0.5, after: 2, range: { offset: 0, length: B } }],
      });
      const got: string[] = [];
      for (const at of [B, 0, 0, 0, B, 0]) got.push(await run(f, 'write', at));
      expect(got).toEqual(['ok', 'ok', 'ok', 'EIO', 'ok', 'EIO']);
      expect(draws).toBe(2);
    });

    it('seededRandom is in [0, 1)', () => {
      const r = seededRandom(123);
      for (let i = 0; i < 10_000; i++) {
        const x = r();
        expect(x >= 0 && x < 1).toBe(true);
      }
    });
  });

  it('rules are tried in order: the first that fires decides', async () => {
    const f = new ErrorFilter(new RecordingStore(), {
      rules: [
        { error: 'ENOSPC', ops: ['write'], range: { offset: 0, length: B } },
        { error: 'EROFS', ops: ['write', 'read'], after: 1 },
      ],
    });
    expect(await run(f, 'write', 0)).toBe('ENOSPC'); // rule 1 never saw it
    expect(await run(f, 'write', B)).toBe('ok'); // rule 1's first write
    expect(await run(f, 'write', 0)).toBe('ENOSPC');
    expect(await run(f, 'write', B)).toBe('EROFS');
    expect(f.stats().rules).toEqual([2, 1]);
  });

  it('configure() validates and leaves the old rules on error', async () => {
    const f = new ErrorFilter(new RecordingStore(), { rules: [{ ops: ['read'] }] });
    const bad: unknown[] = [
      [{ error: 'EPIPE' }],
      [{ ops: ['read', 'mount'] }],
      [{ ops: [] }],
      [{ rate: 1.5 }],
      [{ rate: '12 percent' }],
      [{ after: -1 }],
      [{ range: { offset: 0, length: 0 } }],
      [{ range: { offset: 0, length: B }, lba: { start: 0, count: 1 } }],
      [{ sense: 'NOT_A_REASON' }],
      [{ bogus: 1 }],
      'EIO',
    ];
    for (const rules of bad) {
      expect(() => f.configure(rules as never)).toThrow(expect.objectContaining({ code: ERR_INVALID_FILTER }));
    }
    expect(await run(f, 'read')).toBe('EIO');
    expect(await run(f, 'write')).toBe('ok');
  });

  it('resetStats zeroes the counters', async () => {
    const f = new ErrorFilter(new RecordingStore(), { rules: [{ ops: ['read'] }] });
    await run(f, 'read');
    await run(f, 'write');
    f.resetStats();
    expect(f.stats()).toEqual({
      enabled: true,
      injected: { read: 0, write: 0, flush: 0, trim: 0, zeroes: 0, extents: 0 },
      passed: { read: 0, write: 0, flush: 0, trim: 0, zeroes: 0, extents: 0 },
      rules: [0],
    });
  });

  describe('at run time, with operations in flight', () => {
    it('a rule change applies to operations that arrive after it; those already past the filter complete', async () => {
      const store = new RecordingStore();
      const hold = deferred();
      store.gate = hold.promise;
      const f = new ErrorFilter(store);
      const before = Array.from({ length: 16 }, (_, i) => f.write(Buffer.alloc(B), i * B));
      f.configure([{ error: 'ENOSPC', ops: ['write'] }]);
      const after = Array.from({ length: 16 }, (_, i) => f.write(Buffer.alloc(B), i * B));
      f.enabled = false;
      const disabled = Array.from({ length: 4 }, (_, i) => f.write(Buffer.alloc(B), i * B));
      f.enabled = true;
      const reenabled = f.write(Buffer.alloc(B), 0);
      f.configure([]);
      const cleared = f.write(Buffer.alloc(B), 0);
      hold.resolve();
      expect(await outcomes(before)).toEqual(Array(16).fill('ok'));
      expect(await outcomes(after)).toEqual(Array(16).fill('ENOSPC'));
      expect(await outcomes(disabled)).toEqual(Array(4).fill('ok'));
      expect(await outcomes([reenabled, cleared])).toEqual(['ENOSPC', 'ok']);
      expect(store.calls).toHaveLength(16 + 4 + 1);
      expect(f.stats()).toMatchObject({ injected: { write: 17 }, passed: { write: 21 } });
    });

    it('toggling under load: failures happen exactly while enabled, counters add up', async () => {
      const rd = new RamdiskBackstore({ name: 'rd', size: 4 << 20, blockSize: 512 });
      const f = new ErrorFilter(rd, { enabled: false, seed: 9, rules: [{ error: 'EIO', ops: ['read', 'write'], rate: 0.5 }] });
      let failedWhileDisabled = 0;
      let failed = 0;
      let done = 0;
      let stop = false;
      const worker = async (id: number): Promise<void> => {
        const buf = Buffer.alloc(4096, id);
        for (let i = 0; !stop; i++) {
          const wasEnabled = f.enabled;
          const at = ((id * 977 + i * 131) % 1000) * 4096;
          try {
            if (i % 2) await f.read(buf, at);
            else await f.write(buf, at);
          } catch (e) {
            expect(e).toMatchObject({ code: 'EIO' });
            failed++;
            if (!wasEnabled) failedWhileDisabled++;
          }
          done++;
          // Yield to the event loop so the toggler runs between operations.
          await new Promise((r) => setImmediate(r));
        }
      };
      const workers = Array.from({ length: 8 }, (_, id) => worker(id));
      for (let round = 0; round < 10; round++) {
        await new Promise((r) => setTimeout(r, 5));
        f.enabled = !f.enabled;
        if (round === 5) f.configure([{ error: 'EIO', ops: ['write'], rate: '50%' }]);
      }
      stop = true;
      await Promise.all(workers);
      const s = f.stats();
      const injected = Object.values(s.injected).reduce((a, b) => a + b, 0);
      const passed = Object.values(s.passed).reduce((a, b) => a + b, 0);
      expect(failedWhileDisabled).toBe(0);
      expect(injected).toBe(failed);
      expect(injected + passed).toBe(done);
      expect(failed).toBeGreaterThan(0);
      expect(passed).toBeGreaterThan(0);
    });
  });
});
