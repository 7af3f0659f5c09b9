// The client's reader of the transmission phase (proto.md "Transmission",
// "Simple reply message", "Structured reply chunk message"): takes the
// socket's bytes as they arrive and copies READ data straight into the
// caller's buffer, piece by piece, without assembling the reply first.
//
// Why not the generic ReplyFramer (src/protocols/nbd/framers.ts): it hands
// over each message whole, so a 128 KiB READ reply that spans several socket
// reads was first copied into a fresh 128 KiB buffer, and every socket read
// was a fresh 64 KiB buffer too; on the FUSE path (docs/fuse.md
// "Performance") those allocations were a tenth of the holder's CPU in GC
// and copies. Here the socket reads into one reused buffer (net.Socket's
// `onread`, set up in connect.ts) and this reader keeps no reference to a
// chunk after push() returns: headers go into a small staging buffer, READ
// data to its destination, and only the small payloads of other chunks
// (errors, holes, block status) get buffers of their own.
//
// Extended headers are never negotiated by this client, so their magic is a
// protocol error here like any other unknown magic.

import {
  NBD_MAX_PAYLOAD,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  NbdReplyType,
  SIMPLE_REPLY_LENGTH,
  STRUCTURED_REPLY_LENGTH,
} from '../protocols/nbd/constants.js';
import { LunkitError } from '../protocols/errors.js';

/** Offset field that opens an OFFSET_DATA chunk's payload. */
const OFFSET_LENGTH = 8;
/** Cap on one chunk's payload: the largest READ plus room for chunk overhead. */
const MAX_CHUNK_PAYLOAD = NBD_MAX_PAYLOAD + 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** What the reader asks of, and tells, the connection. Any of these may throw to break the stream. */
export interface ReplyHandlers {
  /** A successful simple reply's header arrived: the number of READ data bytes that follow it (0: none). */
  simpleDataLength(handle: bigint): number;
  /**
   * Where this request's data goes now, asked again for every piece (the
   * caller may give up the request meanwhile: undefined drops the bytes).
   */
  destination(handle: bigint): Buffer | undefined;
  /** A simple reply is complete (its data, if any, is in place). */
  onSimple(handle: bigint, error: number): void;
  /** An OFFSET_DATA chunk of `length` data bytes at `offset` begins: its position in the destination. */
  onDataStart(handle: bigint, offset: bigint, length: number): number;
  /** That chunk's data is in place. */
  onDataEnd(handle: bigint, flags: number, length: number): void;
  /** Any other chunk, with its payload (a buffer of its own). */
  onChunk(handle: bigint, type: number, flags: number, payload: Buffer): void;
}

type Phase =
  | { kind: 'header' }
  | { kind: 'offset'; handle: bigint; flags: number; length: number }
  | { kind: 'data'; handle: bigint; simple: boolean; flags: number; length: number; remaining: number; pos: number }
  | { kind: 'payload'; handle: bigint; type: number; flags: number; buf: Buffer; filled: number };

export class ReplyReader {
  /** Header bytes (up to a structured header plus an OFFSET_DATA offset). */
  private readonly hdr = Buffer.alloc(STRUCTURED_REPLY_LENGTH + OFFSET_LENGTH);
  private have = 0;
  private phase: Phase = { kind: 'header' };
  private stopped = false;

  constructor(
    private readonly h: ReplyHandlers,
    private readonly onError: (err: unknown) => void,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  /** Feed bytes; `chunk` is not kept (its memory is reused by the socket). */
  push(chunk: Buffer): void {
    let off = 0;
    try {
      while (off < chunk.length && !this.stopped) off = this.step(chunk, off);
    } catch (err) {
      this.stopped = true;
      this.onError(err);
    }
  }

  /** Consume from chunk[off..]; returns the new offset. */
  private step(chunk: Buffer, off: number): number {
    const p = this.phase;
    switch (p.kind) {
      case 'header':
        return this.header(chunk, off);
      case 'offset': {
        off = this.fill(chunk, off, STRUCTURED_REPLY_LENGTH + OFFSET_LENGTH);
        if (this.have < STRUCTURED_REPLY_LENGTH + OFFSET_LENGTH) return off;
        this.have = 0;
        const length = p.length - OFFSET_LENGTH;
        const pos = this.h.onDataStart(p.handle, this.hdr.readBigUInt64BE(STRUCTURED_REPLY_LENGTH), length);
        this.phase = { kind: 'data', handle: p.handle, simple: false, flags: p.flags, length, remaining: length, pos };
        return off;
      }
      case 'data': {
        const n = Math.min(p.remaining, chunk.length - off);
        const dst = this.h.destination(p.handle);
        // A destination that went away (or shrank: a detached buffer has length 0) takes what fits.
        if (dst !== undefined && p.pos < dst.length) chunk.copy(dst, p.pos, off, off + Math.min(n, dst.length - p.pos));
        p.pos += n;
        p.remaining -= n;
        if (p.remaining === 0) {
          this.phase = { kind: 'header' };
          if (p.simple) this.h.onSimple(p.handle, 0);
          else this.h.onDataEnd(p.handle, p.flags, p.length);
        }
        return off + n;
      }
      case 'payload': {
        const n = Math.min(p.buf.length - p.filled, chunk.length - off);
        chunk.copy(p.buf, p.filled, off, off + n);
        p.filled += n;
        if (p.filled === p.buf.length) {
          this.phase = { kind: 'header' };
          this.h.onChunk(p.handle, p.type, p.flags, p.buf);
        }
        return off + n;
      }
    }
  }

  /** Copies into the staging buffer up to `until` bytes in all. */
  private fill(chunk: Buffer, off: number, until: number): number {
    const n = Math.min(until - this.have, chunk.length - off);
    chunk.copy(this.hdr, this.have, off, off + n);
    this.have += n;
    return off + n;
  }

  private header(chunk: Buffer, off: number): number {
    if (this.have < 4) {
      off = this.fill(chunk, off, 4);
      if (this.have < 4) return off;
    }
    const magic = this.hdr.readUInt32BE(0);
    let hlen: number;
    if (magic === NBD_SIMPLE_REPLY_MAGIC) hlen = SIMPLE_REPLY_LENGTH;
    else if (magic === NBD_STRUCTURED_REPLY_MAGIC) hlen = STRUCTURED_REPLY_LENGTH;
    else throw new ReplyStreamError(`reply: magic 0x${magic.toString(16)}`);
    off = this.fill(chunk, off, hlen);
    if (this.have < hlen) return off;
    this.have = 0;
    const handle = this.hdr.readBigUInt64BE(8);
    if (magic === NBD_SIMPLE_REPLY_MAGIC) {
      const error = this.hdr.readUInt32BE(4);
      // proto.md: a simple reply carrying an error has no data after it.
      const length = error === 0 ? this.h.simpleDataLength(handle) : 0;
      if (length > MAX_CHUNK_PAYLOAD) throw new ReplyStreamError(`reply payload of ${length} bytes exceeds ${MAX_CHUNK_PAYLOAD}`);
      if (length === 0) this.h.onSimple(handle, error);
      else this.phase = { kind: 'data', handle, simple: true, flags: 0, length, remaining: length, pos: 0 };
      return off;
    }
    const flags = this.hdr.readUInt16BE(4);
    const type = this.hdr.readUInt16BE(6);
    const length = this.hdr.readUInt32BE(16);
    if (length > MAX_CHUNK_PAYLOAD) throw new ReplyStreamError(`reply payload of ${length} bytes exceeds ${MAX_CHUNK_PAYLOAD}`);
    if (type === NbdReplyType.OFFSET_DATA) {
      // proto.md: offset, then data whose length MUST be nonzero.
      if (length <= OFFSET_LENGTH) throw new ReplyStreamError(`OFFSET_DATA chunk of ${length} bytes carries no data`);
      // Keep the header bytes: the offset goes after them in the staging buffer.
      this.have = STRUCTURED_REPLY_LENGTH;
      this.phase = { kind: 'offset', handle, flags, length };
      return off;
    }
    if (length === 0) this.h.onChunk(handle, type, flags, EMPTY);
    else this.phase = { kind: 'payload', handle, type, flags, buf: Buffer.allocUnsafe(length), filled: 0 };
    return off;
  }
}

/** The reply stream cannot be parsed (bad magic, oversized or malformed chunk): the server broke the protocol. */
export class ReplyStreamError extends LunkitError {
  declare readonly code: 'ERR_NBD_PROTOCOL';

  constructor(message: string) {
    super('ERR_NBD_PROTOCOL', message);
    this.name = 'ReplyStreamError';
  }
}
