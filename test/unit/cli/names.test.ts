// iSCSI name checks for the CLI (RFC 3720 §3.2.6 / RFC 7143 §4.2.7): the
// whole-sentence message, the type by prefix, and the lower-case hint.

import { describe, expect, it } from 'vitest';

import { iscsiNameMessage, iscsiNameProblem, iscsiNameType, isValidIscsiName } from '../../../src/protocols/iscsi/names.js';

describe('iSCSI names for the CLI', () => {
  it.each([
    ['iqn.2026-01.org.example:t1', 'iqn'],
    ['eui.02004567a425678d', 'eui'],
    ['naa.52004567ba64678d', 'naa'],
    ['naa.6001405f0123456789abcdef01234567', 'naa'],
    ['IQN.2026-01.org.example', 'iqn'],
    ['target1', undefined],
  ] as const)('%s is of type %s', (name, type) => {
    expect(iscsiNameType(name)).toBe(type);
  });

  it('valid names have no message', () => {
    for (const n of ['iqn.2026-01.org.example:t1', 'eui.02004567a425678d', 'naa.6001405f0123456789abcdef01234567']) {
      expect(iscsiNameMessage(n)).toBeUndefined();
      expect(isValidIscsiName(n)).toBe(true);
    }
  });

  it('says what the name was for, why it is wrong, and the fix when it is only the case', () => {
    expect(iscsiNameMessage('EUI.02004567A425678D', 'initiator name')).toBe(
      'initiator name "EUI.02004567A425678D" is not a valid iSCSI name: iSCSI names are lower case (RFC 3722 stringprep maps them so) (did you mean "eui.02004567a425678d"?)',
    );
    expect(iscsiNameMessage('eui.0123', 'target name')).toBe('target name "eui.0123" is not a valid iSCSI name: expected eui. followed by exactly 16 hex digits');
    expect(iscsiNameMessage('naa.0123456789abcdef0')).toMatch(/16 or 32 hex digits/);
    expect(iscsiNameMessage('disk1')).toMatch(/starts with "iqn.", "eui." or "naa."/);
    expect(iscsiNameMessage('iqn.2026-01.org.example:a b')).toMatch(/only a-z, 0-9/);
    expect(iscsiNameMessage(`iqn.2026-01.org.example:${'a'.repeat(220)}`)).toMatch(/223 bytes/);
    expect(iscsiNameProblem('iqn.26-01.org.example')).toMatch(/yyyy-mm/);
  });
});
