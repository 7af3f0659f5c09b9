import { describe, expect, it } from 'vitest';
import {
  ERR_INVALID_FILTER,
  FilterConfigSchema,
  FiltersSchema,
  MAX_FILTERS,
  applyFilters,
  parseRate,
} from '../../../src/backstores/filters/index.js';
import { RecordingStore } from './helpers.js';

describe('filter config', () => {
  it('error: one inline rule, defaults applied', () => {
    expect(
      FilterConfigSchema.parse({ type: 'error', error: 'EIO', ops: ['read', 'write'], rate: 0.01, range: { offset: 0, length: 1048576 }, after: 100 }),
    ).toEqual({
      type: 'error',
      enabled: true,
      seed: undefined,
      rules: [{ error: 'EIO', ops: ['read', 'write'], rate: 0.01, range: { offset: 0, length: 1048576 }, after: 100 }],
    });
    expect(FilterConfigSchema.parse({ type: 'error' })).toEqual({
      type: 'error',
      enabled: true,
      seed: undefined,
      rules: [{ ops: ['read', 'write', 'flush', 'trim', 'zeroes'], rate: 1, after: 0 }],
    });
  });

  it('error: a list of rules, sizes and rates in human forms', () => {
    const cfg = FilterConfigSchema.parse({
      type: 'error',
      enabled: false,
      seed: 11,
      rules: [
        { error: 'ENOSPC', ops: ['write', 'zeroes'], range: { offset: '1M', length: '64K' }, rate: '10%' },
        { error: 'EROFS', lba: { start: 0, count: 8 }, rate: '1:4' },
      ],
    });
    expect(cfg).toEqual({
      type: 'error',
      enabled: false,
      seed: 11,
      rules: [
        { error: 'ENOSPC', ops: ['write', 'zeroes'], range: { offset: 1 << 20, length: 65536 }, rate: 0.1, after: 0 },
        { error: 'EROFS', ops: ['read', 'write', 'flush', 'trim', 'zeroes'], lba: { start: 0, count: 8 }, rate: 0.25, after: 0 },
      ],
    });
  });

  it('error: rules and an inline rule together are refused', () => {
    const r = FilterConfigSchema.safeParse({ type: 'error', error: 'EIO', rules: [{}] });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].path).toEqual(['rules']);
  });

  it('delay: fixed, random and numeric delays per kind', () => {
    expect(FilterConfigSchema.parse({ type: 'delay', read: '5ms', write: { min: '1ms', max: '1s' }, flush: 2 })).toEqual({
      type: 'delay',
      enabled: true,
      read: { min: 5, max: 5 },
      write: { min: 1, max: 1000 },
      flush: { min: 2, max: 2 },
    });
    expect(FilterConfigSchema.safeParse({ type: 'delay', read: '5 fortnights' }).success).toBe(false);
    expect(FilterConfigSchema.safeParse({ type: 'delay', open: '5ms' }).success).toBe(false);
  });

  it('readonly takes no parameters', () => {
    expect(FilterConfigSchema.parse({ type: 'readonly' })).toEqual({ type: 'readonly' });
    expect(FilterConfigSchema.safeParse({ type: 'readonly', enabled: false }).success).toBe(false);
  });

  it('unknown types are refused; a list holds at most MAX_FILTERS', () => {
    expect(FilterConfigSchema.safeParse({ type: 'cache' }).success).toBe(false);
    expect(FiltersSchema.safeParse(Array(MAX_FILTERS).fill({ type: 'readonly' })).success).toBe(true);
    expect(FiltersSchema.safeParse(Array(MAX_FILTERS + 1).fill({ type: 'readonly' })).success).toBe(false);
  });

  it('parseRate reads nbdkit forms', () => {
    expect(parseRate(0.5)).toBe(0.5);
    expect(parseRate('0.5')).toBe(0.5);
    expect(parseRate('10%')).toBeCloseTo(0.1);
    expect(parseRate('1:10')).toBeCloseTo(0.1);
    expect(parseRate('100%')).toBe(1);
    for (const bad of [-0.1, 1.01, '101%', '2:1', '1:0', 'often', '']) {
      expect(() => parseRate(bad)).toThrow(expect.objectContaining({ code: ERR_INVALID_FILTER }));
    }
  });

  it('applyFilters validates every entry first and names the bad one', () => {
    const store = new RecordingStore();
    let built = 0;
    const bad = () =>
      applyFilters(store, [
        () => {
          built++;
          return store;
        },
        { type: 'readonly' },
        { type: 'delay', read: 'soon' },
      ] as never);
    expect(bad).toThrow(expect.objectContaining({ code: ERR_INVALID_FILTER }));
    expect(bad).toThrow(/filters\[2\][\s\S]*not a duration[\s\S]*read/);
    expect(built).toBe(0);
  });
});
