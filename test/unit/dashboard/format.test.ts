import { describe, expect, it } from 'vitest';

import { columns, fit, formatAge, formatBytes, formatCount, formatLatency, sparkline } from '../../../src/dashboard/format.js';

describe('dashboard formatters', () => {
  it('formats sizes, counts, latencies and ages', () => {
    expect(formatBytes(0)).toBe('0B');
    expect(formatBytes(1536)).toBe('1.5KiB');
    expect(formatBytes(1 << 30)).toBe('1.0GiB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200MiB');
    expect(formatCount(999)).toBe('999');
    expect(formatCount(12_345)).toBe('12.3k');
    expect(formatLatency(0)).toBe('-');
    expect(formatLatency(850)).toBe('850us');
    expect(formatLatency(1234)).toBe('1.23ms');
    expect(formatAge(45_000)).toBe('45s');
    expect(formatAge(3_725_000)).toBe('1h02m');
  });

  it('draws sparklines scaled to the maximum, newest right', () => {
    expect(sparkline([0, 4, 8], 3)).toBe(' ▄█');
    expect(sparkline([1, 2], 4)).toBe('  ▄█');
    expect(sparkline([0, 0], 2)).toBe('  ');
    expect(sparkline([1, 100], 2, true)).toBe('.#');
  });

  it('fits text to a width', () => {
    expect(fit('abcdef', 4)).toBe('abc…');
    expect(fit('abcdef', 4, { cut: 'start' })).toBe('…def');
    expect(fit('ab', 4, { right: true })).toBe('  ab');
    expect(columns(['a', 'b'], [{ width: 2 }, { width: 3, right: true }])).toBe('a    b');
  });
});
