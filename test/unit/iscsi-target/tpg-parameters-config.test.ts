// TPG `parameters` are checked against the login-key table when the
// configuration is loaded: a bad value or an unknown key is a ConfigError
// naming its JSON path and the reason, never a NaN that switches a limit off.

import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../../src/daemon/config.js';
import { keySettingProblem } from '../../../src/protocols/iscsi/keys.js';

const IQN = 'iqn.2026-11.io.lunkit:t1';

function withParameters(parameters: Record<string, string>): unknown {
  return {
    backstores: { disk0: { type: 'ramdisk', size: '64M' } },
    iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:3260'], luns: { '0': 'disk0' }, parameters } } } } },
  };
}

function problems(cfg: unknown): string[] {
  try {
    parseConfig(cfg);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

const at = (key: string): string => `iscsi.targets["${IQN}"].tpgs["1"].parameters.${key}: `;

describe('TPG parameters at config time', () => {
  it('accepts values of each key type, as LIO writes them', () => {
    expect(
      problems(
        withParameters({
          MaxRecvDataSegmentLength: '65536',
          MaxBurstLength: '0x40000',
          ImmediateData: 'No',
          HeaderDigest: 'CRC32C,None',
          AuthMethod: 'CHAP,None',
          DefaultTime2Wait: '2',
          ErrorRecoveryLevel: '0',
        }),
      ),
    ).toEqual([]);
  });

  it('names the path and reason of each bad value, all at once', () => {
    const p = problems(
      withParameters({
        MaxRecvDataSegmentLength: 'abc',
        MaxBurstLength: '100',
        ImmediateData: 'yes',
        DataDigest: 'CRC32C,MD5',
        ErrorRecoveryLevel: '3',
      }),
    );
    expect(p).toEqual([
      `${at('MaxRecvDataSegmentLength')}"abc" is not a number`,
      `${at('MaxBurstLength')}100 is outside 512..16777215`,
      `${at('ImmediateData')}"yes" is not Yes or No`,
      `${at('DataDigest')}"MD5" is not among None, CRC32C`,
      `${at('ErrorRecoveryLevel')}3 is outside 0..2`,
    ]);
  });

  it('refuses unknown keys and per-login declarations', () => {
    const p = problems(withParameters({ MaxRecvDataSegmentLenght: '8192', InitiatorName: 'iqn.x', TargetPortalGroupTag: '1' }));
    expect(p).toEqual([
      expect.stringMatching(/^iscsi\.targets\[.*\]\.tpgs\["1"\]\.parameters\.MaxRecvDataSegmentLenght: "MaxRecvDataSegmentLenght" is not an iSCSI login key/),
      `${at('InitiatorName')}InitiatorName is declared per login, not configured`,
      `${at('TargetPortalGroupTag')}TargetPortalGroupTag is declared per login, not configured`,
    ]);
  });

  it('keySettingProblem: every non-declarative key of the table takes its RFC default', async () => {
    const { KEY_TABLE } = await import('../../../src/protocols/iscsi/keys.js');
    for (const d of KEY_TABLE) {
      if (d.kind === 'declarative' && d.name !== 'MaxRecvDataSegmentLength') continue;
      expect(keySettingProblem(d.name, d.default ?? ''), d.name).toBeUndefined();
    }
  });
});
