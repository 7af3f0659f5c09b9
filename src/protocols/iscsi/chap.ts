// CHAP for iSCSI login (RFC 7143 §12.1.3, RFC 1994).
//
// Keys: CHAP_A (algorithm: 5 = MD5), CHAP_I (identifier 0..255), CHAP_C
// (challenge), CHAP_N (name), CHAP_R (response). Binary values are "0x" hex or
// "0b" base64 (RFC 7143 §6.1 binary-value). Response = MD5(id || secret ||
// challenge) where id is one octet (RFC 1994 §4.1).

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { LunkitError } from '../errors.js';

/** CHAP_A value for MD5 (RFC 1994 / IANA PPP authentication algorithms). */
export const CHAP_ALGORITHM_MD5 = 5;
/** RFC 7143 §12.1.3: secrets shorter than 12 bytes are weak; 16 is recommended. */
export const CHAP_MIN_SECRET_LENGTH = 12;
export const CHAP_RECOMMENDED_SECRET_LENGTH = 16;
/** Our challenge length (RFC 7143 §12.1.3 suggests it matches the hash: 16 for MD5). */
export const CHAP_CHALLENGE_LENGTH = 16;
/** Longest challenge we accept from a peer (libiscsi and Linux send 16..1024). */
export const CHAP_MAX_CHALLENGE_LENGTH = 1024;

/**
 * Decode a CHAP binary value: "0x"/"0X" + hex digits (an odd count is
 * left-padded with 0) or "0b"/"0B" + base64 (RFC 7143 §6.1). Throws
 * ERR_ISCSI_CHAP for anything else or an empty value.
 */
export function parseChapValue(s: string): Buffer {
  if (s.length > 2 && (s[1] === 'x' || s[1] === 'X') && s[0] === '0') {
    let hex = s.slice(2);
    if (!/^[0-9a-fA-F]+$/.test(hex)) throw new LunkitError('ERR_ISCSI_CHAP', 'bad hex digits in CHAP value');
    if (hex.length % 2) hex = `0${hex}`;
    return Buffer.from(hex, 'hex');
  }
  if (s.length > 2 && (s[1] === 'b' || s[1] === 'B') && s[0] === '0') {
    const b64 = s.slice(2);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 === 1) {
      throw new LunkitError('ERR_ISCSI_CHAP', 'bad base64 in CHAP value');
    }
    const out = Buffer.from(b64, 'base64');
    if (out.length === 0) throw new LunkitError('ERR_ISCSI_CHAP', 'empty CHAP value');
    return out;
  }
  throw new LunkitError('ERR_ISCSI_CHAP', 'CHAP value must start with 0x or 0b');
}

/** "0x" + lowercase hex, the form every initiator understands. */
export function formatChapHex(b: Buffer): string {
  return `0x${b.toString('hex')}`;
}

/** MD5(id || secret || challenge) (RFC 1994 §4.1). */
export function chapResponse(id: number, secret: Buffer | string, challenge: Buffer): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 255) throw new LunkitError('ERR_ISCSI_CHAP', `CHAP_I ${id} is not 0..255`);
  const h = createHash('md5');
  h.update(Buffer.of(id));
  h.update(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret);
  h.update(challenge);
  return h.digest();
}

/** A fresh random identifier and challenge. */
export function makeChallenge(len: number = CHAP_CHALLENGE_LENGTH): { id: number; challenge: Buffer } {
  return { id: randomInt(0, 256), challenge: randomBytes(len) };
}

/** Constant-time comparison; false (not an exception) when lengths differ. */
export function chapEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/**
 * Check a configured secret (RFC 7143 §12.1.3). Throws ERR_ISCSI_CHAP for an
 * empty secret, or one under 12 bytes unless `allowShort` is set.
 */
export function validateChapSecret(secret: Buffer | string, opts: { allowShort?: boolean } = {}): void {
  const len = typeof secret === 'string' ? Buffer.byteLength(secret, 'utf8') : secret.length;
  if (len === 0) throw new LunkitError('ERR_ISCSI_CHAP', 'CHAP secret is empty');
  if (len < CHAP_MIN_SECRET_LENGTH && !opts.allowShort) {
    throw new LunkitError(
      'ERR_ISCSI_CHAP',
      `CHAP secret is ${len} bytes; RFC 7143 §12.1.3 requires at least ${CHAP_MIN_SECRET_LENGTH} (set allowShort to override)`,
    );
  }
}

/**
 * Parse a CHAP_A offer ("5", "7,5", ...) and return whether MD5 is offered.
 * RFC 7143 §12.1.3: the target picks the first algorithm it supports.
 */
export function chapOffersMd5(chapA: string): boolean {
  return chapA.split(',').some((v) => v.trim() === String(CHAP_ALGORITHM_MD5));
}

/**
 * RFC 7143 §12.1.3: a target must refuse a challenge identical to one it sent
 * (reflection). Returns true if `peerChallenge` equals `ourChallenge`.
 */
export function isReflectedChallenge(peerChallenge: Buffer, ourChallenge: Buffer | undefined): boolean {
  return ourChallenge !== undefined && peerChallenge.equals(ourChallenge);
}
