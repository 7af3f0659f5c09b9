// Reply framing for the transmission phase (proto.md "Simple reply message",
// "Structured reply chunk message", and the EXTENDED_HEADERS extension's
// "Extended reply chunk message"). Pure: a request and its outcome in, the
// buffers to write out. READ data is never copied: it is the last buffer.

import {
  NbdCmd,
  NbdErrno,
  NbdReplyFlag,
  NbdReplyType,
  encodeBlockStatus,
  encodeBlockStatusExt,
  encodeErrorChunk,
  encodeReplyChunkHeader,
  encodeSimpleReply,
  type BlockDescriptor,
  type NbdRequest,
} from '../../protocols/nbd/index.js';
import type { TransmissionMode } from './negotiation.js';

/** What executing one request produced. */
export interface Outcome {
  /** NbdErrno; 0 on success. */
  error: number;
  message?: string;
  /** READ: exactly req.length bytes. */
  data?: Buffer;
  /**
   * READ: the pooled buffer `data` may live in; the connection releases it
   * once the reply's write callback fired (never part of the reply itself).
   */
  lease?: Buffer | undefined;
  /** BLOCK_STATUS: the meta context and its descriptors. */
  context?: number;
  extents?: BlockDescriptor[];
}

const SIMPLE = 16;
const STRUCTURED = 20;
const EXTENDED = 32;

/**
 * The buffers of one reply, in order. Simple replies carry READ data after the
 * 16-byte header. Structured and extended replies are always one chunk with
 * NBD_REPLY_FLAG_DONE: a READ is one OFFSET_DATA chunk (so NBD_CMD_FLAG_DF is
 * honoured by construction), an error one ERROR chunk, block status one
 * BLOCK_STATUS (BLOCK_STATUS_EXT when extended) chunk, anything else NONE.
 * Extended headers put the request's offset in every chunk header (the
 * extension requires it to match the request) and never use simple replies.
 */
export function encodeReply(req: NbdRequest, out: Outcome, mode: TransmissionMode): Buffer[] {
  if (!mode.structured && !mode.extended) {
    const h = encodeSimpleReply({ error: out.error, handle: req.handle });
    return out.error === NbdErrno.OK && out.data && out.data.length > 0 ? [h, out.data] : [h];
  }
  const chunk = (type: number, payloadLength: number): Buffer =>
    encodeReplyChunkHeader(
      { flags: NbdReplyFlag.DONE, type, handle: req.handle, offset: mode.extended ? req.offset : 0n, length: payloadLength },
      mode.extended,
    );
  if (out.error !== NbdErrno.OK) {
    const payload = encodeErrorChunk({ error: out.error, message: out.message ?? '' });
    return [chunk(NbdReplyType.ERROR, payload.length), payload];
  }
  if (req.type === NbdCmd.READ && out.data && out.data.length > 0) {
    // Header and the 8-byte data offset in one small buffer, then the data itself.
    const hlen = mode.extended ? EXTENDED : STRUCTURED;
    const head = Buffer.allocUnsafe(hlen + 8);
    chunk(NbdReplyType.OFFSET_DATA, 8 + out.data.length).copy(head, 0);
    head.writeBigUInt64BE(req.offset, hlen);
    return [head, out.data];
  }
  if (out.extents && out.context !== undefined) {
    const payload = mode.extended ? encodeBlockStatusExt(out.context, out.extents) : encodeBlockStatus(out.context, out.extents);
    return [chunk(mode.extended ? NbdReplyType.BLOCK_STATUS_EXT : NbdReplyType.BLOCK_STATUS, payload.length), payload];
  }
  return [chunk(NbdReplyType.NONE, 0)];
}

/** Bytes of the reply header alone (tests, and sizing). */
export function replyHeaderLength(mode: TransmissionMode): number {
  return mode.extended ? EXTENDED : mode.structured ? STRUCTURED : SIMPLE;
}
