import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../../../src/util/size.js';
import { iscsiNameProblem } from '../../../src/protocols/iscsi/names.js';

describe('parseSize', () => {
  it.each([
    ['4096', 4096],
    ['512M', 512 * 1024 * 1024],
    ['10G', 10 * 1024 ** 3],
    ['1g', 1024 ** 3],
    ['1.5K', 1536],
    ['2TiB', 2 * 1024 ** 4],
    [' 64 k ', 65536],
  ])('%s -> %d', (s, n) => expect(parseSize(s)).toBe(n));

  it.each(['', 'ten', '10X', '-1', '1.1K', '1e3'])('rejects %j with a reason', (s) => {
    expect(() => parseSize(s)).toThrow(/size|unit|whole/);
  });

  it('formats with the largest exact unit', () => {
    expect(formatSize(1024 ** 3)).toBe('1G');
    expect(formatSize(1536)).toBe('1536');
    expect(formatSize(3 * 1024 * 1024)).toBe('3M');
  });
});

describe('iSCSI names (RFC 3720 §3.2.6)', () => {
  it.each([
    'iqn.2003-01.org.linux-iscsi.host:sn.1234',
    'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test',
    'iqn.2026-11.io.lunkit',
    'eui.02004567a425678d',
    'naa.52004567ba64678d',
  ])('accepts %s', (n) => expect(iscsiNameProblem(n)).toBeUndefined());

  it.each([
    ['', /empty/],
    ['IQN.2003-01.org.x', /lower case/],
    ['iqn.2003-13.org.x', /month/],
    ['iqn.03-01.org.x', /expected iqn/],
    ['iqn.2003-01.org.x:bad name', /":"/],
    ['eui.123', /16 hex/],
    ['target1', /starts with/],
    ['iqn.2003-01.org.' + 'a'.repeat(220), /223/],
  ])('rejects %j', (n, why) => expect(iscsiNameProblem(n)).toMatch(why));
});
