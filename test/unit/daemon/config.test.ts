import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/daemon/config.js';

const IQN = 'iqn.2026-11.io.lunkit:t1';

function base(): Record<string, unknown> {
  return {
    backstores: { disk0: { type: 'ramdisk', size: '64M' } },
    iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:3260'], luns: { '0': 'disk0' } } } } } },
  };
}

function problems(cfg: unknown): string[] {
  try {
    parseConfig(cfg);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('config was accepted');
}

describe('parseConfig', () => {
  it('accepts a minimal config and fills defaults', () => {
    const cfg = parseConfig(base());
    expect(cfg.backstores.disk0).toMatchObject({ type: 'ramdisk', size: 64 * 1024 * 1024, blockSize: 512 });
    const tpg = cfg.iscsi.targets[IQN].tpgs['1'];
    expect(tpg.portals).toEqual([{ host: '127.0.0.1', port: 3260 }]);
    expect(tpg.attributes.defaultCmdsnDepth).toBe(64);
  });

  it('names the JSON path and reason of a bad size', () => {
    const cfg = base();
    (cfg.backstores as Record<string, Record<string, unknown>>).disk0.size = '10X';
    expect(problems(cfg)).toEqual([expect.stringMatching(/^backstores\.disk0\.size: .*unknown unit/)]);
  });

  it('names a bad IQN', () => {
    const cfg = base();
    (cfg.iscsi as Record<string, unknown>).targets = { target1: { tpgs: {} } };
    expect(problems(cfg)[0]).toMatch(/iscsi\.targets.*starts with "iqn\."/);
  });

  it('reports a LUN that names a missing backstore, with its path', () => {
    const cfg = base();
    (cfg.backstores as Record<string, unknown>) = {};
    expect(problems(cfg)).toEqual([`iscsi.targets["${IQN}"].tpgs["1"].luns["0"]: no backstore named "disk0"`]);
  });

  it('reports an unknown key instead of ignoring it', () => {
    const cfg = base();
    (cfg as Record<string, unknown>).backstore = {};
    expect(problems(cfg)[0]).toMatch(/backstore/);
  });

  it('reports a short CHAP secret and a mapped LUN without a TPG LUN', () => {
    const cfg = base();
    const tpg = ((cfg.iscsi as Record<string, Record<string, Record<string, Record<string, Record<string, unknown>>>>>).targets[IQN].tpgs['1']);
    tpg.acls = { 'iqn.1994-05.com.redhat:client': { mappedLuns: { '0': 3 }, chap: { userid: 'u', password: 'short' } } };
    const p = problems(cfg);
    expect(p.join('\n')).toMatch(/password: CHAP secrets are at least 12/);
  });

  it('reports cross-reference problems together', () => {
    const cfg = base();
    const tpg = ((cfg.iscsi as Record<string, Record<string, Record<string, Record<string, Record<string, unknown>>>>>).targets[IQN].tpgs['1']);
    tpg.acls = { 'iqn.1994-05.com.redhat:client': { mappedLuns: { '0': 3 } } };
    tpg.luns = { '0': 'disk0', '1': 'nope' };
    expect(problems(cfg)).toHaveLength(2);
  });
});
