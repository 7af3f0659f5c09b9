// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the iSCSI header and
// data digest (RFC 7143 §13.1, Appendix B).
//
// Wire byte order: the digest is the standard CRC-32C value (init 0xFFFFFFFF,
// reflected, final XOR 0xFFFFFFFF) and goes on the wire LEAST significant byte
// first. RFC 7143 Appendix B.4 gives 32 zero bytes -> "aa 36 91 8a" on the wire,
// whose CRC-32C value is 0x8A9136AA; libiscsi (lib/socket.c
// iscsi_pdu_update_headerdigest, lib/pdu.c iscsi_process_pdu) writes and reads
// it the same way, byte 0 = crc & 0xff. Use writeDigest/readDigest below.
//
// Speed: for short inputs (the 48-byte header) a JS slicing-by-8 table beats
// the N-API call overhead; above SMALL_LIMIT the native @node-rs/crc32 wins.

import { crc32c as nativeCrc32c } from '@node-rs/crc32';

const POLY = 0x82f63b78;
const SMALL_LIMIT = 256;

// TABLE[k*256 + i]: CRC of byte i followed by k zero bytes (slicing-by-8).
const TABLE = new Int32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  TABLE[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let k = 1; k < 8; k++) {
    const prev = TABLE[(k - 1) * 256 + i];
    TABLE[k * 256 + i] = (prev >>> 8) ^ TABLE[prev & 0xff];
  }
}

/** Plain-JS CRC32C, slicing-by-8. `init` is a previous result to continue from. */
export function crc32cJs(buf: Uint8Array, init = 0): number {
  let crc = ~init;
  let i = 0;
  const n = buf.length;
  const end8 = n - (n & 7);
  const t = TABLE;
  for (; i < end8; i += 8) {
    const lo = crc ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    const hi = buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24);
    crc =
      t[7 * 256 + (lo & 0xff)] ^
      t[6 * 256 + ((lo >>> 8) & 0xff)] ^
      t[5 * 256 + ((lo >>> 16) & 0xff)] ^
      t[4 * 256 + (lo >>> 24)] ^
      t[3 * 256 + (hi & 0xff)] ^
      t[2 * 256 + ((hi >>> 8) & 0xff)] ^
      t[256 + ((hi >>> 16) & 0xff)] ^
      t[hi >>> 24];
  }
  for (; i < n; i++) crc = (crc >>> 8) ^ t[(crc ^ buf[i]) & 0xff];
  return ~crc >>> 0;
}

/**
 * CRC32C of `buf`, continuing from `init` (a previous result; 0 to start).
 * crc32c(b, crc32c(a)) === crc32c(a ++ b).
 */
export function crc32c(buf: Uint8Array, init = 0): number {
  if (buf.length < SMALL_LIMIT) return crc32cJs(buf, init);
  return nativeCrc32c(buf, init) >>> 0;
}

/** Write a digest in iSCSI wire order (least significant byte first). */
export function writeDigest(value: number, out: Buffer, offset = 0): void {
  out.writeUInt32LE(value >>> 0, offset);
}

/** Read a digest in iSCSI wire order (least significant byte first). */
export function readDigest(buf: Buffer, offset = 0): number {
  return buf.readUInt32LE(offset);
}

/** A 4-byte Buffer holding `crc32c(buf)` in wire order. */
export function digestBytes(buf: Uint8Array, init = 0): Buffer {
  const out = Buffer.allocUnsafe(4);
  writeDigest(crc32c(buf, init), out, 0);
  return out;
}
