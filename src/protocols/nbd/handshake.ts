// Fixed newstyle handshake codecs (proto.md "Newstyle negotiation", "Fixed
// newstyle negotiation", "Option types", "Option reply types"). Pure functions
// over Buffers; decoders take exactly one message (framing is in framers.ts)
// and throw LunkitError ERR_NBD_BAD_MAGIC / ERR_NBD_MALFORMED.

import { LunkitError } from '../errors.js';
import {
  CLIENT_FLAGS_LENGTH,
  EXPORT_NAME_REPLY_LENGTH,
  EXPORT_NAME_REPLY_ZEROES,
  GREETING_LENGTH,
  NBD_MAGIC,
  NBD_OLDSTYLE_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NbdInfo,
  OPTION_HEADER_LENGTH,
  OPTION_REPLY_HEADER_LENGTH,
} from './constants.js';
import { NbdReader, encodeString } from './cursor.js';

const EMPTY = Buffer.alloc(0);

function malformed(msg: string): LunkitError {
  return new LunkitError('ERR_NBD_MALFORMED', msg);
}

function needLength(buf: Buffer, n: number, what: string): void {
  if (buf.length < n) throw malformed(`${what}: need ${n} bytes, have ${buf.length}`);
}

// --- Greeting and client flags -----------------------------------------------

/** S: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.alloc(GREETING_LENGTH);
  b.writeBigUInt64BE(NBD_MAGIC, 0);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

/** Decode the 18-byte newstyle greeting; oldstyle servers are refused. */
export function decodeGreeting(buf: Buffer): { handshakeFlags: number } {
  needLength(buf, GREETING_LENGTH, 'greeting');
  if (buf.readBigUInt64BE(0) !== NBD_MAGIC) throw new LunkitError('ERR_NBD_BAD_MAGIC', 'greeting: not NBDMAGIC');
  const second = buf.readBigUInt64BE(8);
  if (second === NBD_OLDSTYLE_MAGIC) {
    throw new LunkitError('ERR_NBD_BAD_MAGIC', 'greeting: oldstyle negotiation is not supported');
  }
  if (second !== NBD_OPTS_MAGIC) throw new LunkitError('ERR_NBD_BAD_MAGIC', 'greeting: not IHAVEOPT');
  return { handshakeFlags: buf.readUInt16BE(16) };
}

/** C: 32-bit client flags. */
export function encodeClientFlags(flags: number): Buffer {
  const b = Buffer.alloc(CLIENT_FLAGS_LENGTH);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}

export function decodeClientFlags(buf: Buffer): number {
  needLength(buf, CLIENT_FLAGS_LENGTH, 'client flags');
  return buf.readUInt32BE(0);
}

// --- Option requests ------------------------------------------------------------

export interface OptionHeader {
  option: number;
  length: number;
}

/** C: IHAVEOPT, option, length, data. */
export function encodeOptionRequest(option: number, data: Buffer = EMPTY): Buffer {
  const b = Buffer.alloc(OPTION_HEADER_LENGTH + data.length);
  b.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(data.length, 12);
  data.copy(b, OPTION_HEADER_LENGTH);
  return b;
}

export function decodeOptionHeader(buf: Buffer): OptionHeader {
  needLength(buf, OPTION_HEADER_LENGTH, 'option header');
  if (buf.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) throw new LunkitError('ERR_NBD_BAD_MAGIC', 'option: not IHAVEOPT');
  return { option: buf.readUInt32BE(8), length: buf.readUInt32BE(12) };
}

// --- Option replies -----------------------------------------------------------

export interface OptionReplyHeader {
  option: number;
  type: number;
  length: number;
}

/** S: REP magic, option, reply type, length, data. */
export function encodeOptionReply(option: number, type: number, data: Buffer = EMPTY): Buffer {
  const b = Buffer.alloc(OPTION_REPLY_HEADER_LENGTH + data.length);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, OPTION_REPLY_HEADER_LENGTH);
  return b;
}

export function decodeOptionReplyHeader(buf: Buffer): OptionReplyHeader {
  needLength(buf, OPTION_REPLY_HEADER_LENGTH, 'option reply header');
  if (buf.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw new LunkitError('ERR_NBD_BAD_MAGIC', 'option reply: bad magic');
  return { option: buf.readUInt32BE(8), type: buf.readUInt32BE(12), length: buf.readUInt32BE(16) };
}

/** An error reply's data is an optional human-readable message. */
export function encodeErrorMessage(message: string): Buffer {
  return encodeString(message, 'error message');
}

// --- NBD_OPT_EXPORT_NAME --------------------------------------------------------

/** The EXPORT_NAME option data is the bare name (no length prefix). */
export function encodeExportNameData(name: string): Buffer {
  return encodeString(name, 'export name');
}

export function decodeExportNameData(data: Buffer): string {
  return new NbdReader(data, 'export name').string(data.length);
}

/** S: size(8), transmission flags(2), then 124 zeroes unless NO_ZEROES was agreed. */
export function encodeExportNameReply(size: bigint, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(EXPORT_NAME_REPLY_LENGTH + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES));
  b.writeBigUInt64BE(size, 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

/** Decodes the first 10 bytes; the caller reads (and ignores) the zeroes if any. */
export function decodeExportNameReply(buf: Buffer): { size: bigint; transmissionFlags: number } {
  needLength(buf, EXPORT_NAME_REPLY_LENGTH, 'export name reply');
  return { size: buf.readBigUInt64BE(0), transmissionFlags: buf.readUInt16BE(8) };
}

// --- NBD_OPT_INFO / NBD_OPT_GO ----------------------------------------------------

export interface InfoRequest {
  exportName: string;
  /** NBD_INFO_* types the client asks for. */
  infos: number[];
}

/** C: name length(4), name, count(2), count x info type(2). */
export function encodeInfoRequest(req: InfoRequest): Buffer {
  const name = encodeString(req.exportName, 'export name');
  const b = Buffer.alloc(4 + name.length + 2 + 2 * req.infos.length);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let p = 4 + name.length;
  b.writeUInt16BE(req.infos.length, p);
  p += 2;
  for (const i of req.infos) {
    b.writeUInt16BE(i, p);
    p += 2;
  }
  return b;
}

export function decodeInfoRequest(data: Buffer): InfoRequest {
  const r = new NbdReader(data, 'INFO/GO request');
  const exportName = r.string32();
  const count = r.u16();
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(r.u16());
  r.end();
  return { exportName, infos };
}

export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** The payload of one NBD_REP_INFO reply. */
export type InfoReply =
  | { info: typeof NbdInfo.EXPORT; size: bigint; transmissionFlags: number }
  | { info: typeof NbdInfo.NAME; name: string }
  | { info: typeof NbdInfo.DESCRIPTION; description: string }
  | ({ info: typeof NbdInfo.BLOCK_SIZE } & BlockSizeConstraints)
  /** A type we do not know; clients MUST ignore it. */
  | { info: 'unknown'; type: number; data: Buffer };

export function encodeInfoReply(reply: InfoReply): Buffer {
  switch (reply.info) {
    case NbdInfo.EXPORT: {
      const b = Buffer.alloc(12);
      b.writeUInt16BE(NbdInfo.EXPORT, 0);
      b.writeBigUInt64BE(reply.size, 2);
      b.writeUInt16BE(reply.transmissionFlags, 10);
      return b;
    }
    case NbdInfo.NAME:
    case NbdInfo.DESCRIPTION: {
      const s = encodeString(reply.info === NbdInfo.NAME ? reply.name : reply.description, 'info string');
      const b = Buffer.alloc(2 + s.length);
      b.writeUInt16BE(reply.info, 0);
      s.copy(b, 2);
      return b;
    }
    case NbdInfo.BLOCK_SIZE: {
      const b = Buffer.alloc(14);
      b.writeUInt16BE(NbdInfo.BLOCK_SIZE, 0);
      b.writeUInt32BE(reply.minimum, 2);
      b.writeUInt32BE(reply.preferred, 6);
      b.writeUInt32BE(reply.maximum, 10);
      return b;
    }
    case 'unknown': {
      const b = Buffer.alloc(2 + reply.data.length);
      b.writeUInt16BE(reply.type, 0);
      reply.data.copy(b, 2);
      return b;
    }
  }
}

export function decodeInfoReply(data: Buffer): InfoReply {
  const r = new NbdReader(data, 'NBD_REP_INFO');
  const type = r.u16();
  let out: InfoReply;
  switch (type) {
    case NbdInfo.EXPORT:
      out = { info: NbdInfo.EXPORT, size: r.u64(), transmissionFlags: r.u16() };
      break;
    case NbdInfo.NAME:
      out = { info: NbdInfo.NAME, name: r.string(r.remaining) };
      break;
    case NbdInfo.DESCRIPTION:
      out = { info: NbdInfo.DESCRIPTION, description: r.string(r.remaining) };
      break;
    case NbdInfo.BLOCK_SIZE:
      out = { info: NbdInfo.BLOCK_SIZE, minimum: r.u32(), preferred: r.u32(), maximum: r.u32() };
      break;
    default:
      return { info: 'unknown', type, data: r.rest() };
  }
  r.end();
  return out;
}

// --- NBD_OPT_LIST: NBD_REP_SERVER -----------------------------------------------------

export interface ExportListEntry {
  name: string;
  /** Optional; the rest of the reply after the name. */
  description: string;
}

/** S: name length(4), name, description (rest of the reply). */
export function encodeServerReply(entry: ExportListEntry): Buffer {
  const name = encodeString(entry.name, 'export name');
  const desc = encodeString(entry.description, 'export description');
  const b = Buffer.alloc(4 + name.length + desc.length);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  desc.copy(b, 4 + name.length);
  return b;
}

export function decodeServerReply(data: Buffer): ExportListEntry {
  const r = new NbdReader(data, 'NBD_REP_SERVER');
  const name = r.string32();
  return { name, description: r.string(r.remaining) };
}

// --- NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT --------------------------

export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

/** C: name length(4), name, query count(4), count x (length(4), query). */
export function encodeMetaContextRequest(req: MetaContextRequest): Buffer {
  const name = encodeString(req.exportName, 'export name');
  const queries = req.queries.map((q) => encodeString(q, 'meta context query'));
  const total = 8 + name.length + queries.reduce((n, q) => n + 4 + q.length, 0);
  const b = Buffer.alloc(total);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let p = 4 + name.length;
  b.writeUInt32BE(queries.length, p);
  p += 4;
  for (const q of queries) {
    b.writeUInt32BE(q.length, p);
    q.copy(b, p + 4);
    p += 4 + q.length;
  }
  return b;
}

export function decodeMetaContextRequest(data: Buffer): MetaContextRequest {
  const r = new NbdReader(data, 'meta context request');
  const exportName = r.string32();
  const count = r.u32();
  // Each query takes at least 4 bytes: refuse absurd counts before looping.
  if (count > r.remaining / 4) throw malformed(`meta context request: ${count} queries cannot fit`);
  const queries: string[] = [];
  for (let i = 0; i < count; i++) queries.push(r.string32());
  r.end();
  return { exportName, queries };
}

/** S (NBD_REP_META_CONTEXT): context id(4), name (rest). */
export function encodeMetaContextReply(contextId: number, name: string): Buffer {
  const n = encodeString(name, 'meta context name');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(contextId >>> 0, 0);
  n.copy(b, 4);
  return b;
}

export function decodeMetaContextReply(data: Buffer): { contextId: number; name: string } {
  const r = new NbdReader(data, 'NBD_REP_META_CONTEXT');
  const contextId = r.u32();
  return { contextId, name: r.string(r.remaining) };
}
