// The 8-byte LUN field (SAM-5 §4.7, RFC 7143 §11.3.4). We support the two
// single-level forms used by every common initiator:
//   peripheral device addressing (bits 7-6 of byte 0 = 00b): LUN 0..255 in byte 1
//   flat space addressing        (bits 7-6 of byte 0 = 01b): 14-bit LUN in bytes 0-1
// Anything else (logical unit / extended addressing, or multi-level) decodes to
// -1 so the core answers LOGICAL UNIT NOT SUPPORTED instead of aliasing a LUN.

import { LunkitError } from '../errors.js';

/** Largest LUN encodable with flat space addressing. */
export const MAX_FLAT_LUN = 0x3fff;

/**
 * Decode the first level of an 8-byte LUN at `offset`. Returns -1 for forms we
 * do not support (so the caller can report an unsupported LUN).
 */
export function decodeLun(raw: Buffer, offset = 0): number {
  const b0 = raw[offset];
  const b1 = raw[offset + 1];
  // Second..fourth levels must be empty for a single-level LUN.
  for (let i = 2; i < 8; i++) if (raw[offset + i] !== 0) return -1;
  const method = b0 >> 6;
  if (method === 0) {
    // Peripheral: bus identifier (low 6 bits of byte 0) must be 0 for our targets.
    return (b0 & 0x3f) === 0 ? b1 : -1;
  }
  if (method === 1) return ((b0 & 0x3f) << 8) | b1;
  return -1;
}

/**
 * Encode `lun` as 8 bytes: peripheral form below 256 (what Linux and libiscsi
 * send), flat form up to 16383. Writes into `out` (at `offset`) if given.
 */
export function encodeLun(lun: number, out?: Buffer, offset = 0): Buffer {
  if (!Number.isInteger(lun) || lun < 0 || lun > MAX_FLAT_LUN) {
    throw new LunkitError('ERR_LUN_UNSUPPORTED', `LUN ${lun} cannot be encoded (0..${MAX_FLAT_LUN})`);
  }
  const buf = out ?? Buffer.alloc(8);
  if (lun < 256) {
    buf[offset] = 0;
    buf[offset + 1] = lun;
  } else {
    buf[offset] = 0x40 | (lun >> 8);
    buf[offset + 1] = lun & 0xff;
  }
  buf.fill(0, offset + 2, offset + 8);
  return buf;
}
