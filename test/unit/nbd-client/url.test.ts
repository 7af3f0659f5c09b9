import { describe, expect, it } from 'vitest';
import { formatNbdUrl, parseNbdUrl } from '../../../src/nbd-client/url.js';
import { NbdClientError, nbdErrnoToNodeCode } from '../../../src/nbd-client/errors.js';

describe('parseNbdUrl', () => {
  it.each([
    ['nbd://example.com', { transport: 'tcp', host: 'example.com', port: 10809, exportName: '' }],
    ['nbd://example.com/', { transport: 'tcp', host: 'example.com', port: 10809, exportName: '' }],
    ['nbd://10.0.0.1:1234/disk', { transport: 'tcp', host: '10.0.0.1', port: 1234, exportName: 'disk' }],
    ['nbd://[::1]:99/a%20b/c', { transport: 'tcp', host: '::1', port: 99, exportName: 'a b/c' }],
    ['nbd+unix:///exp?socket=/run/nbd.sock', { transport: 'unix', path: '/run/nbd.sock', exportName: 'exp' }],
    ['nbd+unix://?socket=/tmp/s', { transport: 'unix', path: '/tmp/s', exportName: '' }],
  ])('%s', (url, want) => {
    expect(parseNbdUrl(url)).toEqual(want);
  });

  it.each([
    'http://x/',
    'nbd://',
    'nbd://h:0/',
    'nbd://h:70000/',
    'nbd://h/?socket=/x',
    'nbd+unix:///x',
    'nbd+unix://host/x?socket=/s',
    'nbd+unix:///x?socket=/s&tls=1',
    'nbds://h/x',
    'nbd://user@h/x',
    'nbd://h/%zz',
    'not a url',
  ])('refuses %s with ERR_NBD_BAD_URL', (url) => {
    expect(() => parseNbdUrl(url)).toThrow(expect.objectContaining({ code: 'ERR_NBD_BAD_URL' }));
  });

  it('formats back to an equivalent URL', () => {
    for (const u of ['nbd://10.0.0.1:1234/disk', 'nbd+unix:///exp?socket=/run/nbd.sock', 'nbd://[::1]:99/a%20b/c']) {
      expect(parseNbdUrl(formatNbdUrl(parseNbdUrl(u)))).toEqual(parseNbdUrl(u));
    }
  });
});

describe('errors', () => {
  it('maps every NBD errno to a Node code (unknown ones to EIO)', () => {
    expect([1, 5, 12, 22, 28, 75, 95, 108, 999].map(nbdErrnoToNodeCode)).toEqual([
      'EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'ENOTSUP', 'ESHUTDOWN', 'EIO',
    ]);
  });

  it('gives each code a Node code for backstores', () => {
    expect(new NbdClientError('ERR_NBD_DISCONNECTED', 'x').nodeCode).toBe('EIO');
    expect(new NbdClientError('ERR_NBD_TIMEOUT', 'x').nodeCode).toBe('EIO');
    expect(new NbdClientError('ERR_NBD_UNSUPPORTED', 'x').nodeCode).toBe('EOPNOTSUPP');
    expect(new NbdClientError('ERR_NBD_SERVER_ERROR', 'x', { errno: 28 }).nodeCode).toBe('ENOSPC');
    const e = new NbdClientError('ERR_NBD_OPTION_REFUSED', 'x', { option: 7, replyType: 0x80000006 });
    expect(e).toMatchObject({ name: 'NbdClientError', code: 'ERR_NBD_OPTION_REFUSED', option: 7, replyType: 0x80000006 });
  });
});
