import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  chapEqual,
  chapOffersMd5,
  chapResponse,
  formatChapHex,
  isReflectedChallenge,
  makeChallenge,
  parseChapValue,
  validateChapSecret,
} from '../../../src/protocols/iscsi/chap.js';
import { encodeTextKeys, parseTextKeys, TextAccumulator } from '../../../src/protocols/iscsi/text.js';
import { hex } from './vectors.js';

describe('CHAP (RFC 1994 §4.1, RFC 7143 §12.1.3)', () => {
  it('known vector: MD5(0x2a || "abcdefghijkl" || challenge) (computed with Python hashlib)', () => {
    const challenge = hex('0123456789abcdeffedcba9876543210');
    expect(chapResponse(0x2a, 'abcdefghijkl', challenge).toString('hex')).toBe('72e4c8177a1b61ba124b72e7c2239565');
    expect(chapResponse(0x2a, Buffer.from('abcdefghijkl'), challenge).toString('hex')).toBe('72e4c8177a1b61ba124b72e7c2239565');
  });

  it('agrees with node:crypto MD5 over id||secret||challenge for many ids and lengths', () => {
    for (let id = 0; id < 256; id += 17) {
      const secret = Buffer.alloc(12 + (id % 5), id);
      const challenge = Buffer.alloc(1 + (id % 40), 255 - id);
      const want = createHash('md5').update(Buffer.concat([Buffer.of(id), secret, challenge])).digest();
      expect(chapResponse(id, secret, challenge).equals(want)).toBe(true);
    }
  });

  it('rejects an identifier outside 0..255', () => {
    expect(() => chapResponse(256, 'abcdefghijkl', Buffer.alloc(16))).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_CHAP' }));
    expect(() => chapResponse(-1, 'abcdefghijkl', Buffer.alloc(16))).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_CHAP' }));
  });

  it('parses 0x hex and 0b base64 binary values (§6.1)', () => {
    expect(parseChapValue('0x0123456789ABCDEFfedcba9876543210').toString('hex')).toBe('0123456789abcdeffedcba9876543210');
    expect(parseChapValue('0X0abc').toString('hex')).toBe('0abc');
    expect(parseChapValue('0xabc').toString('hex')).toBe('0abc');
    expect(parseChapValue('0bASNFZ4mrze/+3LqYdlQyEA==').toString('hex')).toBe('0123456789abcdeffedcba9876543210');
    for (const bad of ['', '0x', '0b', '1234', '0xzz', '0b!!!!', 'abc']) {
      expect(() => parseChapValue(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_CHAP' }));
    }
  });

  it('formats as 0x lowercase hex (what libiscsi parses: "CHAP_C=0x")', () => {
    expect(formatChapHex(hex('00ff10'))).toBe('0x00ff10');
    const b = hex('deadbeef');
    expect(parseChapValue(formatChapHex(b)).equals(b)).toBe(true);
  });

  it('makeChallenge gives 16 random bytes and an id 0..255 by default', () => {
    const a = makeChallenge();
    const b = makeChallenge();
    expect(a.challenge).toHaveLength(16);
    expect(a.challenge.equals(b.challenge)).toBe(false);
    expect(a.id).toBeGreaterThanOrEqual(0);
    expect(a.id).toBeLessThanOrEqual(255);
    expect(makeChallenge(32).challenge).toHaveLength(32);
  });

  it('chapEqual compares content, false on length mismatch', () => {
    expect(chapEqual(hex('0102'), hex('0102'))).toBe(true);
    expect(chapEqual(hex('0102'), hex('0103'))).toBe(false);
    expect(chapEqual(hex('0102'), hex('010203'))).toBe(false);
  });

  it('secret length rules: >= 12 bytes unless opted in', () => {
    expect(() => validateChapSecret('short')).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_CHAP' }));
    expect(() => validateChapSecret('')).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_CHAP' }));
    expect(() => validateChapSecret('', { allowShort: true })).toThrow();
    expect(() => validateChapSecret('short', { allowShort: true })).not.toThrow();
    expect(() => validateChapSecret('abcdefghijkl')).not.toThrow();
  });

  it('CHAP_A offers and reflection', () => {
    expect(chapOffersMd5('5')).toBe(true);
    expect(chapOffersMd5('7,5')).toBe(true);
    expect(chapOffersMd5('7')).toBe(false);
    expect(isReflectedChallenge(hex('01'), hex('01'))).toBe(true);
    expect(isReflectedChallenge(hex('01'), undefined)).toBe(false);
  });
});

describe('text keys (RFC 7143 §6.1)', () => {
  it('parses NUL-terminated pairs, = inside values, empty values', () => {
    const data = Buffer.from('InitiatorName=iqn.2024-01.org.x:a\0TargetAlias=\0X-com.example=a=b\0');
    expect(parseTextKeys(data)).toEqual([
      ['InitiatorName', 'iqn.2024-01.org.x:a'],
      ['TargetAlias', ''],
      ['X-com.example', 'a=b'],
    ]);
  });

  it('tolerates a missing final NUL and NUL runs', () => {
    expect(parseTextKeys(Buffer.from('A=1\0\0\0B=2'))).toEqual([
      ['A', '1'],
      ['B', '2'],
    ]);
    expect(parseTextKeys(Buffer.alloc(0))).toEqual([]);
  });

  it('throws ERR_ISCSI_TEXT_MALFORMED for bad pairs', () => {
    for (const bad of ['NoEquals\0', '=value\0', 'bad key=1\0', `${'K'.repeat(64)}=1\0`, `K=${'v'.repeat(8193)}\0`]) {
      expect(() => parseTextKeys(Buffer.from(bad)), bad).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_TEXT_MALFORMED' }));
    }
  });

  it('encodes key=value\\0 each; round-trips', () => {
    const pairs: Array<[string, string]> = [
      ['HeaderDigest', 'None'],
      ['MaxRecvDataSegmentLength', '262144'],
    ];
    const b = encodeTextKeys(pairs);
    expect(b.toString('latin1')).toBe('HeaderDigest=None\0MaxRecvDataSegmentLength=262144\0');
    expect(parseTextKeys(b)).toEqual(pairs);
    expect(encodeTextKeys([])).toHaveLength(0);
    expect(() => encodeTextKeys([['bad key', 'x']])).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_TEXT_MALFORMED' }));
    expect(() => encodeTextKeys([['K', 'a\0b']])).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_TEXT_MALFORMED' }));
  });

  it('TextAccumulator joins C-bit continuations and caps the total', () => {
    const acc = new TextAccumulator(16);
    expect(acc.add(Buffer.from('Targ'), true)).toBeUndefined();
    expect(acc.pending).toBe(true);
    expect(acc.add(Buffer.from('etName=x\0'), false)?.toString()).toBe('TargetName=x\0');
    expect(acc.pending).toBe(false);
    acc.add(Buffer.alloc(10), true);
    expect(() => acc.add(Buffer.alloc(10), true)).toThrow(expect.objectContaining({ code: 'ERR_ISCSI_TEXT_MALFORMED' }));
  });
});
