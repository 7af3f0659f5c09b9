// nbd.tls.caFile without require is refused at config validation: plain
// clients would skip TLS and the client-certificate check with it.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/daemon/config.js';

const tls = (extra: Record<string, unknown>) => ({ nbd: { tls: { certFile: '/c.pem', keyFile: '/k.pem', ...extra } } });

describe('nbd.tls validation', () => {
  it('caFile without require is an error naming nbd.tls.require', () => {
    for (const cfg of [tls({ caFile: '/ca.pem' }), tls({ caFile: '/ca.pem', require: false })]) {
      let err: unknown;
      try {
        parseConfig(cfg);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).toMatch(/nbd\.tls\.require/);
    }
  });

  it('caFile with require, and TLS without a CA either way, are accepted', () => {
    expect(parseConfig(tls({ caFile: '/ca.pem', require: true })).nbd?.tls).toMatchObject({ caFile: '/ca.pem', require: true });
    expect(parseConfig(tls({})).nbd?.tls?.require).toBe(false);
    expect(parseConfig(tls({ require: true })).nbd?.tls?.require).toBe(true);
  });
});
