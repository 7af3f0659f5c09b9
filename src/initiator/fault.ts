// Fault injection in the initiator's PDU path (STYLE.md §17, after libiscsi's
// test-tool queue_pdu override). Tests set `connection.faults` to corrupt a
// digest, drop or hold a PDU, skip a CmdSN, reorder received Data-In, or cut
// the connection. Production code never sets it; when unset the hot path pays
// one property check per PDU.

import type { RawPdu } from '../protocols/iscsi/framer.js';
import type { EncodablePdu } from '../protocols/iscsi/pdu-encode.js';

/** A PDU about to be encoded and sent; `pdu` fields may be changed in place. */
export interface OutgoingPdu {
  pdu: EncodablePdu;
  data: Buffer | undefined;
}

/** What to do with an outgoing PDU instead of sending it normally. */
export type SendVerdict =
  | undefined
  /** Do not send it (the initiator believes it was sent). */
  | 'drop'
  /** Destroy the socket instead of sending it. */
  | 'disconnect';

export interface FaultHooks {
  /**
   * Before encoding: change fields (e.g. `pdu.cmdSN += 1` to skip a CmdSN) or
   * return a verdict.
   */
  send?(out: OutgoingPdu): SendVerdict;
  /**
   * After encoding: the iovecs about to be written (header, [header digest],
   * data, padding/[data digest]). Return replacement buffers to send instead
   * (e.g. a copy with a flipped digest byte). Never write into the given
   * buffers: padding buffers are shared and data buffers belong to the caller.
   */
  frame?(frame: Buffer[], out: OutgoingPdu): Buffer[] | undefined;
  /**
   * A framed PDU received from the target, before decoding. Return the list
   * of frames to process in its place: [] holds or drops it, [held, raw]
   * reorders. Undefined processes it as is.
   */
  receive?(raw: RawPdu): RawPdu[] | undefined;
}

/** Offsets inside a frame, for hooks that corrupt bytes. */
export const FRAME_HEADER_INDEX = 0;

/** A copy of `buf` with byte `offset` XORed by `mask` (for corrupting digests or fields). */
export function flipByte(buf: Buffer, offset: number, mask = 0xff): Buffer {
  const copy = Buffer.from(buf);
  copy[offset] ^= mask;
  return copy;
}
