// iscsi:// URLs as libiscsi and QEMU read them (lib/init.c iscsi_parse_url).
import { describe, expect, it } from 'vitest';
import { parseIscsiUrl, parsePortal, redact } from '../../../src/initiator/url.js';
import { isIscsiInitiatorError } from '../../../src/initiator/errors.js';

const none = { env: {} };

describe('parseIscsiUrl', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['iscsi://127.0.0.1/iqn.2003-01.org.example:disk/0', { host: '127.0.0.1', port: 3260, target: 'iqn.2003-01.org.example:disk', lun: 0, chap: undefined }],
    ['iscsi://host.example:3261/iqn.a:b/7', { host: 'host.example', port: 3261, target: 'iqn.a:b', lun: 7 }],
    ['iscsi://[::1]:3262/iqn.a:b/1', { host: '::1', port: 3262, target: 'iqn.a:b', lun: 1 }],
    ['iscsi://[fe80::1%25eth0]/iqn.a:b/1', { host: 'fe80::1%25eth0', port: 3260 }],
    ['iscsi://alice%s3cret@10.0.0.1/iqn.a:b/2', { host: '10.0.0.1', chap: { user: 'alice', password: 's3cret' }, lun: 2 }],
    // libiscsi: ':' separates user and password when there is no '%'.
    ['iscsi://alice:pw@10.0.0.1/iqn.a:b/2', { chap: { user: 'alice', password: 'pw' } }],
    // The target name is percent-decoded, the password taken literally after the first '%'.
    ['iscsi://u%p%41ss@h/iqn.2003-01.org.example%3Adisk/3', { chap: { user: 'u', password: 'p%41ss' }, target: 'iqn.2003-01.org.example:disk' }],
    ['iscsi://u%p@h/iqn.a:b/0?target_user=t&target_password=tp', { targetChap: { user: 't', password: 'tp' } }],
    ['iscsi://h/iqn.a:b/0?header_digest=crc32c', { headerDigest: 'crc32c' }],
    // Mutual CHAP needs one-way CHAP (libiscsi drops it otherwise).
    ['iscsi://h/iqn.a:b/0?target_user=t&target_password=tp', { chap: undefined, targetChap: undefined }],
  ];
  for (const [url, want] of cases) {
    it(url, () => {
      expect(parseIscsiUrl(url, none)).toMatchObject(want);
    });
  }

  it('portal URLs for discovery', () => {
    expect(parseIscsiUrl('iscsi://h:3300', { requireLun: false, env: {} })).toMatchObject({ host: 'h', port: 3300, target: undefined, lun: undefined });
    expect(parseIscsiUrl('iscsi://h/', { requireLun: false, env: {} })).toMatchObject({ host: 'h', target: undefined });
  });

  it('takes CHAP from the libiscsi environment variables when the URL has none', () => {
    const env = { LIBISCSI_CHAP_USERNAME: 'eu', LIBISCSI_CHAP_PASSWORD: 'ep', LIBISCSI_CHAP_TARGET_USERNAME: 'tu', LIBISCSI_CHAP_TARGET_PASSWORD: 'tp' };
    expect(parseIscsiUrl('iscsi://h/iqn.a:b/0', { env })).toMatchObject({ chap: { user: 'eu', password: 'ep' }, targetChap: { user: 'tu', password: 'tp' } });
    expect(parseIscsiUrl('iscsi://u%p@h/iqn.a:b/0', { env })).toMatchObject({ chap: { user: 'u', password: 'p' } });
  });

  const bad = [
    'http://h/iqn.a:b/0',
    'iscsi://h',
    'iscsi://h/iqn.a:b',
    'iscsi://h/iqn.a:b/x',
    'iscsi://h/iqn.a:b/16384',
    'iscsi://h:0/iqn.a:b/0',
    'iscsi://h:99999/iqn.a:b/0',
    'iscsi://::1/iqn.a:b/0',
    'iscsi://[::1/iqn.a:b/0',
    'iscsi:///iqn.a:b/0',
    'iscsi://h//0',
    'iscsi://h/iqn%zz/0',
    'iscsi://h/iqn.a:b/0?header_digest=md5',
  ];
  for (const url of bad) {
    it(`refuses ${url}`, () => {
      let err: unknown;
      try {
        parseIscsiUrl(url, none);
      } catch (e) {
        err = e;
      }
      expect(isIscsiInitiatorError(err, 'ERR_ISCSI_BAD_URL')).toBe(true);
    });
  }

  it('never puts a password into an error message', () => {
    expect(redact('iscsi://alice%topsecret@h/iqn.a:b/0?target_password=xyz')).toBe('iscsi://alice%***@h/iqn.a:b/0?target_password=***');
    try {
      parseIscsiUrl('iscsi://alice%topsecret@h/iqn.a:b/zz', none);
    } catch (e) {
      expect((e as Error).message).not.toContain('topsecret');
    }
  });

  it('parsePortal', () => {
    expect(parsePortal('10.1.2.3:3261')).toEqual({ host: '10.1.2.3', port: 3261 });
    expect(parsePortal('[2001:db8::5]')).toEqual({ host: '2001:db8::5', port: 3260 });
  });
});
