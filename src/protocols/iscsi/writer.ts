// Builds the iovecs of one outgoing PDU (RFC 7143 §11.2): header [+ header
// digest], data segment, padding [+ data digest]. The data Buffer is never
// copied: write the array with socket.cork()/write()/uncork() or writev.

import { DIGEST_LENGTH } from './constants.js';
import { crc32c, writeDigest } from './crc32c.js';
import { padLength } from './pdu.js';

export interface FrameDigests {
  headerDigest: boolean;
  dataDigest: boolean;
}

// Shared, never written: zero padding of 1..3 bytes.
const PADDING = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];
const PAD_ZEROES = Buffer.alloc(3);

/**
 * The buffers to write for a PDU whose header (BHS + AHS, from encodeBhs) is
 * `header` and whose data segment is `data`. The header digest covers BHS and
 * AHS; the data digest covers data and padding and is sent only when there is
 * a data segment (§13.1). Digests are written least significant byte first
 * (see crc32c.ts).
 */
export function encodeFrame(header: Buffer, data: Buffer | undefined, opts: FrameDigests): Buffer[] {
  const out: Buffer[] = [header];
  if (opts.headerDigest) {
    const d = Buffer.allocUnsafe(DIGEST_LENGTH);
    writeDigest(crc32c(header), d, 0);
    out.push(d);
  }
  if (data === undefined || data.length === 0) return out;
  out.push(data);
  const pad = padLength(data.length);
  if (opts.dataDigest) {
    let crc = crc32c(data);
    if (pad > 0) crc = crc32c(PAD_ZEROES.subarray(0, pad), crc);
    const tail = Buffer.alloc(pad + DIGEST_LENGTH);
    writeDigest(crc, tail, pad);
    out.push(tail);
  } else if (pad > 0) {
    out.push(PADDING[pad]);
  }
  return out;
}

/** Total byte length of a frame's buffers. */
export function frameLength(frame: readonly Buffer[]): number {
  let n = 0;
  for (const b of frame) n += b.length;
  return n;
}
