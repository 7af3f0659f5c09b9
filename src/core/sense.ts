// Sense data encoders (SPC-4 §4.5): fixed format (response code 0x70, §4.5.3)
// and descriptor format (0x72, §4.5.2) with the information descriptor
// (§4.5.2.2) and the sense-key specific descriptor (§4.5.2.5).

import type { FieldPointer } from './command.js';
import { SenseReasons, type SenseReason } from './sense-reasons.js';

export interface SenseOptions {
  /** Descriptor format (control mode page D_SENSE=1). */
  descriptor?: boolean;
  /** INFORMATION field value (LBA of an error, residue...). */
  info?: bigint | number | undefined;
  /** Field pointer for ILLEGAL REQUEST sense-key specific data (§4.5.2.4.2). */
  field?: FieldPointer | undefined;
  /** Current (0x70/0x72) or deferred (0x71/0x73) error. */
  deferred?: boolean;
}

/** Fixed-format sense data length: 18 bytes (additional sense length 10). */
export const FIXED_SENSE_LENGTH = 18;

/** SKSV + C/D + BPV + bit pointer, then the 16-bit field pointer (3 bytes). */
function senseKeySpecific(field: FieldPointer): [number, number, number] {
  let b0 = 0x80; // SKSV
  if (field.inCdb) b0 |= 0x40; // C/D
  if (field.bit !== undefined) b0 |= 0x08 | (field.bit & 0x07); // BPV + bit pointer
  return [b0, (field.byte >> 8) & 0xff, field.byte & 0xff];
}

function writeInfo64(buf: Buffer, off: number, info: bigint | number): void {
  buf.writeBigUInt64BE(BigInt.asUintN(64, BigInt(info)), off);
}

/** Encode a reason as wire sense data. */
export function buildSense(reason: SenseReason, opts: SenseOptions = {}): Buffer {
  const d = SenseReasons[reason];
  if (opts.descriptor) return buildDescriptorSense(d.key, d.asc, d.ascq, opts);
  return buildFixedSense(d.key, d.asc, d.ascq, opts);
}

export function buildFixedSense(key: number, asc: number, ascq: number, opts: SenseOptions = {}): Buffer {
  const buf = Buffer.alloc(FIXED_SENSE_LENGTH);
  let b0 = opts.deferred ? 0x71 : 0x70;
  const info = opts.info;
  // The INFORMATION field is 4 bytes in fixed format; VALID only when it fits.
  if (info !== undefined) {
    const big = BigInt(info);
    if (big >= 0n && big <= 0xffffffffn) {
      b0 |= 0x80;
      buf.writeUInt32BE(Number(big), 3);
    }
  }
  buf[0] = b0;
  buf[2] = key & 0x0f;
  buf[7] = FIXED_SENSE_LENGTH - 8;
  buf[12] = asc;
  buf[13] = ascq;
  if (opts.field) {
    const [s0, s1, s2] = senseKeySpecific(opts.field);
    buf[15] = s0;
    buf[16] = s1;
    buf[17] = s2;
  }
  return buf;
}

export function buildDescriptorSense(key: number, asc: number, ascq: number, opts: SenseOptions = {}): Buffer {
  let len = 8;
  if (opts.info !== undefined) len += 12;
  if (opts.field) len += 8;
  const buf = Buffer.alloc(len);
  buf[0] = opts.deferred ? 0x73 : 0x72;
  buf[1] = key & 0x0f;
  buf[2] = asc;
  buf[3] = ascq;
  buf[7] = len - 8;
  let off = 8;
  if (opts.info !== undefined) {
    // Information descriptor (§4.5.2.2): type 0, length 0x0a, VALID.
    buf[off] = 0x00;
    buf[off + 1] = 0x0a;
    buf[off + 2] = 0x80;
    writeInfo64(buf, off + 4, opts.info);
    off += 12;
  }
  if (opts.field) {
    // Sense key specific descriptor (§4.5.2.5): type 2, length 6.
    buf[off] = 0x02;
    buf[off + 1] = 0x06;
    const [s0, s1, s2] = senseKeySpecific(opts.field);
    buf[off + 4] = s0;
    buf[off + 5] = s1;
    buf[off + 6] = s2;
    off += 8;
  }
  return buf;
}

/** Decoded key/asc/ascq of fixed or descriptor sense (for tests and REQUEST SENSE conversions). */
export interface ParsedSense {
  descriptor: boolean;
  key: number;
  asc: number;
  ascq: number;
  info?: bigint;
  field?: FieldPointer;
}

export function parseSense(buf: Buffer): ParsedSense | undefined {
  if (buf.length < 8) return undefined;
  const code = buf[0] & 0x7f;
  if (code === 0x70 || code === 0x71) {
    if (buf.length < 14) return undefined;
    const p: ParsedSense = { descriptor: false, key: buf[2] & 0x0f, asc: buf[12], ascq: buf[13] };
    if (buf[0] & 0x80) p.info = BigInt(buf.readUInt32BE(3));
    if (buf.length >= 18 && buf[15] & 0x80) p.field = decodeSks(buf[15], buf[16], buf[17]);
    return p;
  }
  if (code === 0x72 || code === 0x73) {
    const p: ParsedSense = { descriptor: true, key: buf[1] & 0x0f, asc: buf[2], ascq: buf[3] };
    const end = Math.min(buf.length, 8 + buf[7]);
    let off = 8;
    while (off + 2 <= end) {
      const type = buf[off];
      const dlen = buf[off + 1];
      if (type === 0x00 && dlen === 0x0a && off + 12 <= end) p.info = buf.readBigUInt64BE(off + 4);
      if (type === 0x02 && dlen === 0x06 && off + 8 <= end && buf[off + 4] & 0x80) {
        p.field = decodeSks(buf[off + 4], buf[off + 5], buf[off + 6]);
      }
      off += 2 + dlen;
    }
    return p;
  }
  return undefined;
}

function decodeSks(b0: number, b1: number, b2: number): FieldPointer {
  const f: FieldPointer = { inCdb: (b0 & 0x40) !== 0, byte: (b1 << 8) | b2 };
  if (b0 & 0x08) f.bit = b0 & 0x07;
  return f;
}
