import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../../src/daemon/config-schema.js';
import { iscsiLimits, DEFAULT_ISCSI_LIMITS } from '../../../src/fabrics/iscsi/limits.js';
import { nbdLimits, DEFAULT_NBD_LIMITS } from '../../../src/fabrics/nbd/limits.js';

describe('limits section', () => {
  it('is optional and keeps only what was set', () => {
    expect(ConfigSchema.parse({}).limits).toBeUndefined();
    const c = ConfigSchema.parse({ limits: { iscsi: { maxConnections: 10 } } });
    expect(c.limits).toEqual({ iscsi: { maxConnections: 10 } });
    expect(iscsiLimits(c.limits?.iscsi)).toEqual({ ...DEFAULT_ISCSI_LIMITS, maxConnections: 10 });
    expect(nbdLimits(undefined)).toEqual(DEFAULT_NBD_LIMITS);
  });

  it('names the field and the reason for a bad value', () => {
    const r = ConfigSchema.safeParse({ limits: { nbd: { maxConnections: 0 } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['limits', 'nbd', 'maxConnections']);
    const u = ConfigSchema.safeParse({ limits: { iscsi: { bogus: 1 } } });
    expect(u.success).toBe(false);
  });
});
