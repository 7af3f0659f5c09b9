// Transmission phase codecs (proto.md "Request message", "Simple reply
// message", "Structured reply chunk message", "Extended header messages").
// Handles and offsets are bigint: both are full 64-bit fields on the wire.
// Payloads are returned as subarray views of the input, never copied.

import { LunkitError } from '../errors.js';
import {
  EXTENDED_REPLY_LENGTH,
  EXTENDED_REQUEST_LENGTH,
  NBD_EXTENDED_REPLY_MAGIC,
  NBD_EXTENDED_REQUEST_MAGIC,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  NbdReplyType,
  REQUEST_LENGTH,
  SIMPLE_REPLY_LENGTH,
  STRUCTURED_REPLY_LENGTH,
} from './constants.js';
import { NbdReader, encodeString } from './cursor.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function need(buf: Buffer, n: number, what: string): void {
  if (buf.length < n) throw new LunkitError('ERR_NBD_MALFORMED', `${what}: need ${n} bytes, have ${buf.length}`);
}

function safeNumber(v: bigint, what: string): number {
  if (v > MAX_SAFE) throw new LunkitError('ERR_NBD_TOO_LARGE', `${what} ${v} exceeds 2^53-1`);
  return Number(v);
}

// --- Requests -------------------------------------------------------------------

export interface NbdRequest {
  /** NBD_CMD_FLAG_* bits. */
  flags: number;
  /** NBD_CMD_*. */
  type: number;
  handle: bigint;
  offset: bigint;
  /** Length of the effect (or, with PAYLOAD_LEN, of the payload). 32 bits unless extended. */
  length: number;
}

/**
 * Encode a request header: 28 bytes (magic 0x25609513, 32-bit length) or,
 * with extended headers, 32 bytes (magic 0x21e41c71, 64-bit length).
 * A WRITE's data follows separately.
 */
export function encodeRequest(req: NbdRequest, extended = false): Buffer {
  const b = Buffer.alloc(extended ? EXTENDED_REQUEST_LENGTH : REQUEST_LENGTH);
  b.writeUInt32BE(extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC, 0);
  b.writeUInt16BE(req.flags, 4);
  b.writeUInt16BE(req.type, 6);
  b.writeBigUInt64BE(req.handle, 8);
  b.writeBigUInt64BE(req.offset, 16);
  if (extended) b.writeBigUInt64BE(BigInt(req.length), 24);
  else b.writeUInt32BE(req.length, 24);
  return b;
}

/** Decode a request header; the magic decides compact vs extended, `extended` says which is allowed. */
export function decodeRequest(buf: Buffer, extended = false): NbdRequest {
  need(buf, 4, 'request');
  const magic = buf.readUInt32BE(0);
  const want = extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
  if (magic !== want) {
    throw new LunkitError('ERR_NBD_BAD_MAGIC', `request: magic 0x${magic.toString(16)}, expected 0x${want.toString(16)}`);
  }
  need(buf, extended ? EXTENDED_REQUEST_LENGTH : REQUEST_LENGTH, 'request');
  return {
    flags: buf.readUInt16BE(4),
    type: buf.readUInt16BE(6),
    handle: buf.readBigUInt64BE(8),
    offset: buf.readBigUInt64BE(16),
    length: extended ? safeNumber(buf.readBigUInt64BE(24), 'request length') : buf.readUInt32BE(24),
  };
}

// --- Simple reply -------------------------------------------------------------------

export interface SimpleReply {
  /** NbdErrno value; 0 for success. */
  error: number;
  handle: bigint;
}

/** S: magic 0x67446698, error(4), handle(8); READ data follows when error is 0. */
export function encodeSimpleReply(reply: SimpleReply): Buffer {
  const b = Buffer.alloc(SIMPLE_REPLY_LENGTH);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(reply.error >>> 0, 4);
  b.writeBigUInt64BE(reply.handle, 8);
  return b;
}

export function decodeSimpleReply(buf: Buffer): SimpleReply {
  need(buf, SIMPLE_REPLY_LENGTH, 'simple reply');
  if (buf.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new LunkitError('ERR_NBD_BAD_MAGIC', 'simple reply: bad magic');
  return { error: buf.readUInt32BE(4), handle: buf.readBigUInt64BE(8) };
}

// --- Structured / extended reply chunk header -------------------------------------

export interface ReplyChunkHeader {
  /** NBD_REPLY_FLAG_* bits. */
  flags: number;
  /** NBD_REPLY_TYPE_*. */
  type: number;
  handle: bigint;
  /** Extended headers only (0 otherwise): the offset the chunk's data relates to. */
  offset: bigint;
  /** Payload length in bytes. */
  length: number;
}

/** 20 bytes (magic 0x668e33ef, 32-bit length) or, extended, 32 bytes (magic 0x6e8a278c, offset, 64-bit length). */
export function encodeReplyChunkHeader(h: ReplyChunkHeader, extended = false): Buffer {
  const b = Buffer.alloc(extended ? EXTENDED_REPLY_LENGTH : STRUCTURED_REPLY_LENGTH);
  b.writeUInt32BE(extended ? NBD_EXTENDED_REPLY_MAGIC : NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(h.flags, 4);
  b.writeUInt16BE(h.type, 6);
  b.writeBigUInt64BE(h.handle, 8);
  if (extended) {
    b.writeBigUInt64BE(h.offset, 16);
    b.writeBigUInt64BE(BigInt(h.length), 24);
  } else {
    b.writeUInt32BE(h.length, 16);
  }
  return b;
}

export function decodeReplyChunkHeader(buf: Buffer): ReplyChunkHeader {
  need(buf, 4, 'reply chunk');
  const magic = buf.readUInt32BE(0);
  if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
    need(buf, STRUCTURED_REPLY_LENGTH, 'structured reply');
    return {
      flags: buf.readUInt16BE(4),
      type: buf.readUInt16BE(6),
      handle: buf.readBigUInt64BE(8),
      offset: 0n,
      length: buf.readUInt32BE(16),
    };
  }
  if (magic === NBD_EXTENDED_REPLY_MAGIC) {
    need(buf, EXTENDED_REPLY_LENGTH, 'extended reply');
    return {
      flags: buf.readUInt16BE(4),
      type: buf.readUInt16BE(6),
      handle: buf.readBigUInt64BE(8),
      offset: buf.readBigUInt64BE(16),
      length: safeNumber(buf.readBigUInt64BE(24), 'reply length'),
    };
  }
  throw new LunkitError('ERR_NBD_BAD_MAGIC', `reply chunk: magic 0x${magic.toString(16)}`);
}

// --- Chunk payloads -------------------------------------------------------------------

/** NBD_REPLY_TYPE_OFFSET_DATA prefix: offset(8); the data follows (send it separately to avoid a copy). */
export function encodeOffsetDataPrefix(offset: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(offset, 0);
  return b;
}

export function decodeOffsetData(payload: Buffer): { offset: bigint; data: Buffer } {
  const r = new NbdReader(payload, 'OFFSET_DATA');
  const offset = r.u64();
  // proto.md: the data length MUST be nonzero.
  if (r.remaining === 0) throw new LunkitError('ERR_NBD_MALFORMED', 'OFFSET_DATA: empty data');
  return { offset, data: r.rest() };
}

/** NBD_REPLY_TYPE_OFFSET_HOLE: offset(8), hole size(4). */
export function encodeOffsetHole(offset: bigint, holeSize: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(offset, 0);
  b.writeUInt32BE(holeSize, 8);
  return b;
}

export function decodeOffsetHole(payload: Buffer): { offset: bigint; holeSize: number } {
  const r = new NbdReader(payload, 'OFFSET_HOLE');
  const out = { offset: r.u64(), holeSize: r.u32() };
  r.end();
  return out;
}

export interface BlockDescriptor {
  length: number;
  /** NBD_STATE_* bits for base:allocation. */
  flags: number;
}

/** NBD_REPLY_TYPE_BLOCK_STATUS: context id(4), then (length(4), flags(4)) per descriptor. */
export function encodeBlockStatus(contextId: number, extents: readonly BlockDescriptor[]): Buffer {
  const b = Buffer.alloc(4 + 8 * extents.length);
  b.writeUInt32BE(contextId >>> 0, 0);
  let p = 4;
  for (const e of extents) {
    b.writeUInt32BE(e.length, p);
    b.writeUInt32BE(e.flags >>> 0, p + 4);
    p += 8;
  }
  return b;
}

export function decodeBlockStatus(payload: Buffer): { contextId: number; extents: BlockDescriptor[] } {
  if (payload.length < 12 || (payload.length - 4) % 8 !== 0) {
    throw new LunkitError('ERR_NBD_MALFORMED', `BLOCK_STATUS: bad payload length ${payload.length}`);
  }
  const contextId = payload.readUInt32BE(0);
  const extents: BlockDescriptor[] = [];
  for (let p = 4; p < payload.length; p += 8) {
    extents.push({ length: payload.readUInt32BE(p), flags: payload.readUInt32BE(p + 4) });
  }
  return { contextId, extents };
}

/** NBD_REPLY_TYPE_BLOCK_STATUS_EXT: context id(4), count(4), then (length(8), flags(8)) per descriptor. */
export function encodeBlockStatusExt(contextId: number, extents: readonly BlockDescriptor[]): Buffer {
  const b = Buffer.alloc(8 + 16 * extents.length);
  b.writeUInt32BE(contextId >>> 0, 0);
  b.writeUInt32BE(extents.length, 4);
  let p = 8;
  for (const e of extents) {
    b.writeBigUInt64BE(BigInt(e.length), p);
    b.writeBigUInt64BE(BigInt(e.flags >>> 0), p + 8);
    p += 16;
  }
  return b;
}

export function decodeBlockStatusExt(payload: Buffer): { contextId: number; extents: BlockDescriptor[] } {
  const r = new NbdReader(payload, 'BLOCK_STATUS_EXT');
  const contextId = r.u32();
  const count = r.u32();
  if (count === 0 || r.remaining !== count * 16) {
    throw new LunkitError('ERR_NBD_MALFORMED', `BLOCK_STATUS_EXT: ${count} descriptors in ${r.remaining} bytes`);
  }
  const extents: BlockDescriptor[] = [];
  for (let i = 0; i < count; i++) {
    const length = safeNumber(r.u64(), 'extent length');
    // Only the low 32 flag bits are defined by any context we know.
    const flags = Number(r.u64() & 0xffffffffn);
    extents.push({ length, flags });
  }
  return { contextId, extents };
}

export interface ErrorChunk {
  /** NbdErrno value (nonzero). */
  error: number;
  message: string;
  /** Present for NBD_REPLY_TYPE_ERROR_OFFSET. */
  offset?: bigint;
}

/** NBD_REPLY_TYPE_ERROR(_OFFSET): error(4), message length(2), message, [offset(8)]. */
export function encodeErrorChunk(e: ErrorChunk): Buffer {
  const msg = encodeString(e.message, 'error message');
  if (msg.length > 0xffff) throw new LunkitError('ERR_NBD_TOO_LARGE', 'error message too long');
  const b = Buffer.alloc(6 + msg.length + (e.offset === undefined ? 0 : 8));
  b.writeUInt32BE(e.error >>> 0, 0);
  b.writeUInt16BE(msg.length, 4);
  msg.copy(b, 6);
  if (e.offset !== undefined) b.writeBigUInt64BE(e.offset, 6 + msg.length);
  return b;
}

/** Decode an error chunk's payload; `type` says whether an offset follows the message. */
export function decodeErrorChunk(type: number, payload: Buffer): ErrorChunk {
  const r = new NbdReader(payload, 'ERROR chunk');
  const error = r.u32();
  const message = r.string(r.u16());
  const out: ErrorChunk = { error, message };
  if (type === NbdReplyType.ERROR_OFFSET) out.offset = r.u64();
  // Unknown error types may carry more after the message: clients must still use error.
  if (type === NbdReplyType.ERROR || type === NbdReplyType.ERROR_OFFSET) r.end();
  return out;
}
