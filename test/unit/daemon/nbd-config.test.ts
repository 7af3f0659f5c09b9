import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';

describe('nbd section of the configuration', () => {
  it('defaults the listener to 127.0.0.1:10809 and readOnly to false', () => {
    const cfg = parseConfig({ backstores: { r: { type: 'ramdisk', size: '1M' } }, nbd: { exports: { e: { backstore: 'r' } } } });
    expect(cfg.nbd?.listen).toEqual([{ host: '127.0.0.1', port: 10809 }]);
    expect(cfg.nbd?.exports.e).toEqual({ backstore: 'r', readOnly: false });
  });
  it('parses host:port and [v6]:port listeners', () => {
    const cfg = parseConfig({ nbd: { listen: ['0.0.0.0:0', '[::1]:10810', 'localhost'] } });
    expect(cfg.nbd?.listen).toEqual([
      { host: '0.0.0.0', port: 0 },
      { host: '::1', port: 10810 },
      { host: 'localhost', port: 10809 },
    ]);
  });
  it('parses unix:/path listeners and refuses relative socket paths', () => {
    const cfg = parseConfig({ nbd: { listen: ['unix:/run/lunkit/nbd.sock', '127.0.0.1:0'] } });
    expect(cfg.nbd?.listen).toEqual([{ path: '/run/lunkit/nbd.sock' }, { host: '127.0.0.1', port: 0 }]);
    expect(() => parseConfig({ nbd: { listen: ['unix:nbd.sock'] } })).toThrow(/absolute socket path/);
  });
  it('names an export whose backstore does not exist', () => {
    expect(() => parseConfig({ nbd: { exports: { e: { backstore: 'missing' } } } })).toThrow(/nbd\.exports\.e\.backstore: no backstore named "missing"/);
  });
  it('has no nbd section unless configured', () => {
    expect(parseConfig({}).nbd).toBeUndefined();
  });
});
