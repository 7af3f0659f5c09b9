// The daemon keeps its configuration parsed (defaults filled in) and parses
// that copy again on every change: a parsed filter config must parse to itself.
import { describe, expect, it } from 'vitest';
import { FilterConfigSchema, FiltersSchema } from '../../../src/backstores/filters/index.js';

describe('filter configs parse to themselves', () => {
  const inputs: unknown[] = [
    { type: 'delay', read: '5ms', write: { min: '1ms', max: '20ms' }, enabled: false, seed: 7 },
    { type: 'error', error: 'ENOSPC', ops: ['write'], lba: { start: 0, count: 2048 }, rate: '1%', after: 3 },
    { type: 'error', rules: [{ error: 'EIO', range: { offset: 0, length: '1M' } }, { sense: 'MEDIUM_ERROR_READ', ops: ['read'] }] },
    { type: 'readonly' },
  ];
  for (const input of inputs) {
    it(JSON.stringify(input), () => {
      const once = FilterConfigSchema.parse(input);
      const twice = FilterConfigSchema.parse(JSON.parse(JSON.stringify(once)));
      expect(twice).toEqual(once);
    });
  }
  it('a whole stack too', () => {
    const once = FiltersSchema.parse(inputs);
    expect(FiltersSchema.parse(JSON.parse(JSON.stringify(once)))).toEqual(once);
  });
});
