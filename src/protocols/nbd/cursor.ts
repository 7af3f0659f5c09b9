// A small bounds-checked reader for the variable parts of NBD messages
// (option data, INFO payloads, structured reply payloads). Every underrun or
// over-long string is ERR_NBD_MALFORMED, so decoders never read past a frame.

import { LunkitError } from '../errors.js';
import { NBD_MAX_STRING } from './constants.js';

export class NbdReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (this.buf.length - this.pos < n) {
      throw new LunkitError('ERR_NBD_MALFORMED', `${this.what}: truncated (need ${n} bytes at ${this.pos}, have ${this.remaining})`);
    }
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A view (no copy) of the next n bytes. */
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A UTF-8 string of n bytes (proto.md "Conventions": at most 4096 bytes, no NUL). */
  string(n: number): string {
    if (n > NBD_MAX_STRING) {
      throw new LunkitError('ERR_NBD_MALFORMED', `${this.what}: string of ${n} bytes exceeds ${NBD_MAX_STRING}`);
    }
    return this.bytes(n).toString('utf8');
  }

  /** A string prefixed by a 32-bit length. */
  string32(): string {
    return this.string(this.u32());
  }

  /** Everything left, as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }

  /** Require the message to be fully consumed. */
  end(): void {
    if (this.pos !== this.buf.length) {
      throw new LunkitError('ERR_NBD_MALFORMED', `${this.what}: ${this.remaining} trailing bytes`);
    }
  }
}

/** UTF-8 bytes of a string, refusing ones the protocol forbids. */
export function encodeString(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > NBD_MAX_STRING) {
    throw new LunkitError('ERR_NBD_TOO_LARGE', `${what}: string of ${b.length} bytes exceeds ${NBD_MAX_STRING}`);
  }
  return b;
}
