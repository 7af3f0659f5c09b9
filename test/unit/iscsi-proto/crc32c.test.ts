import { describe, expect, it } from 'vitest';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { crc32c, crc32cJs, digestBytes, readDigest } from '../../../src/protocols/iscsi/crc32c.js';
import { encodeFrame } from '../../../src/protocols/iscsi/writer.js';
import { hex } from './vectors.js';

// RFC 7143 Appendix B.4 (same as RFC 3720 B.4): input and the digest bytes
// as they appear on the wire.
const RFC_VECTORS: Array<[string, Buffer, string]> = [
  ['32 bytes of zeroes', Buffer.alloc(32, 0), 'aa36918a'],
  ['32 bytes of ones', Buffer.alloc(32, 0xff), '43aba862'],
  ['32 incrementing bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), '4e79dd46'],
  ['32 decrementing bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), '5cdb3f11'],
  [
    'an iSCSI READ(10) SCSI Command PDU',
    hex('01c00000 00000000 00000000 00000000 14000000 00000400 00000014 00000018 28000000 00000000 02000000 00000000'),
    '563a96d9',
  ],
];

describe('crc32c', () => {
  it('check value crc32c("123456789") = 0xE3069283', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32cJs(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  for (const [name, input, wire] of RFC_VECTORS) {
    it(`RFC 7143 B.4: ${name} -> wire bytes ${wire} (least significant byte first)`, () => {
      expect(digestBytes(input).toString('hex')).toBe(wire);
      expect(readDigest(hex(wire))).toBe(crc32c(input));
    });
  }

  it('the header digest of a 48-byte BHS goes on the wire as libiscsi reads it (byte 0 = crc & 0xff)', () => {
    const bhs = RFC_VECTORS[4][1];
    const [, digest] = encodeFrame(bhs, undefined, { headerDigest: true, dataDigest: false });
    const c = nativeCrc32c(bhs) >>> 0;
    expect([...digest]).toEqual([c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24]);
  });

  it('JS table and native agree for every length 0..600 and for chaining', () => {
    const buf = Buffer.alloc(600);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
    for (let n = 0; n <= buf.length; n++) {
      const slice = buf.subarray(0, n);
      expect(crc32cJs(slice), `len ${n}`).toBe(nativeCrc32c(slice) >>> 0);
      expect(crc32c(slice), `len ${n}`).toBe(nativeCrc32c(slice) >>> 0);
    }
    const whole = crc32c(buf);
    for (const cut of [0, 1, 7, 8, 100, 255, 256, 257, 599, 600]) {
      expect(crc32c(buf.subarray(cut), crc32c(buf.subarray(0, cut)))).toBe(whole);
      expect(crc32cJs(buf.subarray(cut), crc32cJs(buf.subarray(0, cut)))).toBe(whole);
    }
  });

  it('works on unaligned views', () => {
    const big = Buffer.alloc(100, 0x5a);
    expect(crc32cJs(big.subarray(3, 51))).toBe(nativeCrc32c(big.subarray(3, 51)) >>> 0);
  });
});

describe('encodeFrame (writer)', () => {
  const header = Buffer.alloc(48, 1);

  it('header only, no digests: just the header, not copied', () => {
    const f = encodeFrame(header, undefined, { headerDigest: false, dataDigest: false });
    expect(f).toHaveLength(1);
    expect(f[0]).toBe(header);
  });

  it('data is passed by reference and padded with zeroes to 4 bytes', () => {
    const data = Buffer.from('abcde');
    const f = encodeFrame(header, data, { headerDigest: false, dataDigest: false });
    expect(f[1]).toBe(data);
    expect(Buffer.concat(f).toString('hex')).toBe(`${header.toString('hex')}6162636465000000`);
  });

  it('both digests: header digest after BHS, data digest covers data + padding', () => {
    const data = Buffer.from('abcde');
    const f = encodeFrame(header, data, { headerDigest: true, dataDigest: true });
    const wire = Buffer.concat(f);
    const hd = nativeCrc32c(header) >>> 0;
    const dd = nativeCrc32c(Buffer.from('abcde\0\0\0')) >>> 0;
    const le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
    expect([...wire]).toEqual([...header, ...le(hd), ...data, 0, 0, 0, ...le(dd)]);
  });

  it('no data digest when there is no data segment (§13.1)', () => {
    const f = encodeFrame(header, Buffer.alloc(0), { headerDigest: true, dataDigest: true });
    expect(Buffer.concat(f).length).toBe(52);
  });
});
