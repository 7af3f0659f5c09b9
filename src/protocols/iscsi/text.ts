// Text key=value pairs of Login and Text PDUs (RFC 7143 §6.1): each pair is
// "key=value" followed by a NUL byte, in UTF-8. Keys are at most 63 bytes
// (§6.1), values at most 255 bytes except where a key says otherwise (CHAP
// binaries, SendTargets answers): we cap a value at 8192 bytes, the largest
// one a Login PDU can carry by default.

import { LunkitError } from '../errors.js';

export const MAX_KEY_LENGTH = 63;
export const MAX_VALUE_LENGTH = 8192;

// §6.1: key names are letters, digits, '.', '-', '+', '@', '_'.
const KEY_RE = /^[A-Za-z0-9.\-+@_]+$/;

/**
 * Parse a data segment of NUL-terminated key=value pairs. A missing final NUL
 * is tolerated (some initiators send one pair without it). Empty strings between
 * NULs (padding-like runs of NUL) are skipped. Throws ERR_ISCSI_TEXT_MALFORMED for
 * a pair without '=', an empty, too long or badly formed key, or a too long value.
 * Callers that handle text split across PDUs (C bit) join the segments first.
 */
export function parseTextKeys(data: Buffer): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    if (end > start) {
      const eq = data.indexOf(0x3d /* '=' */, start);
      if (eq < 0 || eq >= end) {
        throw new LunkitError('ERR_ISCSI_TEXT_MALFORMED', `text pair without '=': ${preview(data, start, end)}`);
      }
      const key = data.toString('latin1', start, eq);
      if (key.length === 0 || key.length > MAX_KEY_LENGTH || !KEY_RE.test(key)) {
        throw new LunkitError('ERR_ISCSI_TEXT_MALFORMED', `bad text key: ${preview(data, start, eq)}`);
      }
      if (end - eq - 1 > MAX_VALUE_LENGTH) {
        throw new LunkitError('ERR_ISCSI_TEXT_MALFORMED', `value of ${key} is ${end - eq - 1} bytes`);
      }
      pairs.push([key, data.toString('utf8', eq + 1, end)]);
    }
    start = end + 1;
  }
  return pairs;
}

/** Encode pairs as "key=value\0" each (RFC 7143 §6.1). */
export function encodeTextKeys(pairs: Iterable<[string, string]>): Buffer {
  // One string, one UTF-8 encode: a Buffer per pair and a concat cost more
  // than the pairs themselves (a login answers a dozen keys).
  let text = '';
  for (const [key, value] of pairs) {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH || !KEY_RE.test(key)) {
      throw new LunkitError('ERR_ISCSI_TEXT_MALFORMED', `bad text key: ${JSON.stringify(key)}`);
    }
    if (value.includes('\0')) {
      throw new LunkitError('ERR_ISCSI_TEXT_MALFORMED', `value of ${key} contains NUL`);
    }
    text += `${key}=${value}\0`;
  }
  return Buffer.from(text, 'utf8');
}

/**
 * Text reassembly for the C (continue) bit (RFC 7143 §11.10.2, §11.12.2):
 * feed each PDU's data; the last (C=0) yields the whole text. Caps the total.
 */
export class TextAccumulator {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(private readonly maxTotal = 64 * 1024) {}

  /** Add one PDU's data. Returns the joined data when `cont` is false, else undefined. */
  add(data: Buffer, cont: boolean): Buffer | undefined {
    this.length += data.length;
    if (this.length > this.maxTotal) {
      this.reset();
      throw new LunkitError('ERR_ISCSI_TEXT_MALFORMED', `text exceeds ${this.maxTotal} bytes`);
    }
    if (cont) {
      this.parts.push(data);
      return undefined;
    }
    const whole = this.parts.length === 0 ? data : Buffer.concat([...this.parts, data]);
    this.reset();
    return whole;
  }

  reset(): void {
    this.parts = [];
    this.length = 0;
  }

  get pending(): boolean {
    return this.parts.length > 0;
  }
}

function preview(data: Buffer, start: number, end: number): string {
  return JSON.stringify(data.toString('latin1', start, Math.min(end, start + 64)));
}
