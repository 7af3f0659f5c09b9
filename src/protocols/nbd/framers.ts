// Incremental framers for NBD byte streams (STYLE.md §11): split a socket's
// chunks into messages, then hand each to the pure decoders.
//
// - OptionFramer: server side of option haggling (client flags, then options).
// - RequestFramer: server side of transmission (request headers + WRITE data).
// - ReplyFramer: client side of transmission (simple replies with or without
//   READ data, structured and extended reply chunks).
//
// A message lying inside one chunk is delivered as a subarray view of it; one
// that straddles chunks is copied once into a Buffer of exactly its size.
// Declared lengths are capped before anything is allocated. A stream error
// (ERR_NBD_BAD_MAGIC, ERR_NBD_TOO_LARGE, ERR_NBD_MALFORMED) stops the framer
// and is reported once through onError; the caller closes the connection.
// Views share memory with pushed chunks: do not reuse a pushed chunk's memory
// while delivered messages are alive (net.Socket chunks are fresh Buffers).

import { LunkitError } from '../errors.js';
import {
  CLIENT_FLAGS_LENGTH,
  EXTENDED_REPLY_LENGTH,
  EXTENDED_REQUEST_LENGTH,
  NBD_EXTENDED_REPLY_MAGIC,
  NBD_MAX_OPTION_LENGTH,
  NBD_MAX_PAYLOAD,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  NbdCmd,
  NbdCmdFlag,
  OPTION_HEADER_LENGTH,
  REQUEST_LENGTH,
  SIMPLE_REPLY_LENGTH,
  STRUCTURED_REPLY_LENGTH,
} from './constants.js';
import { decodeClientFlags, decodeOptionHeader } from './handshake.js';
import { decodeReplyChunkHeader, decodeRequest, decodeSimpleReply } from './transmission.js';
import type { NbdRequest, ReplyChunkHeader } from './transmission.js';
import { ByteQueue } from '../byte-queue.js';

const EMPTY: Buffer = Buffer.alloc(0);

export interface FramerErrorSink {
  onError(err: LunkitError): void;
}

/** Shared push/stop/detach machinery; subclasses implement step(). */
abstract class NbdFramer {
  protected readonly q = new ByteQueue();
  private stopped = false;
  private pushing = false;
  private paused = false;

  constructor(private readonly errorSink: (err: LunkitError) => void) {}

  /**
   * Feed bytes from the socket; delivers every complete message synchronously
   * (unless paused: then the bytes wait in the queue for resume()).
   */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    if (chunk.length > 0) this.q.push(chunk);
    this.deliver();
  }

  /**
   * Stop delivering, effective at once, even from inside a delivery callback:
   * one socket chunk can hold thousands of request headers, so pausing the
   * socket alone would not stop them (backpressure, docs/security.md).
   */
  pause(): void {
    this.paused = true;
  }

  /** Deliver what is buffered again, then go on with later pushes. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.stopped) this.deliver();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private deliver(): void {
    // A callback may push() or resume(): keep delivery ordered by not re-entering.
    if (this.pushing || this.paused) return;
    this.pushing = true;
    try {
      while (!this.stopped && !this.paused && this.step()) {
        /* keep going */
      }
    } catch (err) {
      if (!(err instanceof LunkitError) || this.stopped) throw err;
      this.fail(err);
    } finally {
      this.pushing = false;
    }
  }

  /** Stop delivering and drop buffered input. */
  stop(): void {
    this.stopped = true;
    this.q.clear();
  }

  /**
   * Stop and return the bytes received but not framed (e.g. when option
   * haggling ends and a RequestFramer, or TLS, takes over the socket).
   * Safe to call from inside a delivery callback.
   */
  detach(): Buffer {
    const rest = this.q.take(this.q.buffered);
    const copy = Buffer.from(rest);
    this.stop();
    return copy;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Bytes received but not yet part of a delivered message. */
  get bufferedBytes(): number {
    return this.q.buffered;
  }

  protected fail(err: LunkitError): void {
    this.stop();
    this.errorSink(err);
  }

  /** Try to make progress; false when more input is needed. */
  protected abstract step(): boolean;
}

// --- OptionFramer -----------------------------------------------------------------

export interface OptionFrame {
  option: number;
  /** The option data (length as declared), a view when possible. */
  data: Buffer;
}

export interface OptionFramerOptions extends FramerErrorSink {
  /** Read the 4-byte client flags first (default true). */
  expectClientFlags?: boolean;
  /** Cap on one option's data (default NBD_MAX_OPTION_LENGTH, 64 KiB). */
  maxOptionLength?: number;
  onClientFlags?(flags: number): void;
  onOption(frame: OptionFrame): void;
}

export class OptionFramer extends NbdFramer {
  private needFlags: boolean;
  private readonly maxOptionLength: number;
  private readonly opts: OptionFramerOptions;

  constructor(opts: OptionFramerOptions) {
    super((e) => opts.onError(e));
    this.opts = opts;
    this.needFlags = opts.expectClientFlags ?? true;
    this.maxOptionLength = opts.maxOptionLength ?? NBD_MAX_OPTION_LENGTH;
  }

  protected step(): boolean {
    if (this.needFlags) {
      if (this.q.buffered < CLIENT_FLAGS_LENGTH) return false;
      this.needFlags = false;
      // Consume first: an optional call `f?.(arg)` skips evaluating `arg`.
      const flags = decodeClientFlags(this.q.take(CLIENT_FLAGS_LENGTH));
      this.opts.onClientFlags?.(flags);
      return true;
    }
    if (this.q.buffered < OPTION_HEADER_LENGTH) return false;
    // Check magic and cap the length before waiting for (or allocating) data.
    const length = this.q.u32At(12);
    const header = this.peekHeader();
    const { option } = decodeOptionHeader(header);
    if (length > this.maxOptionLength) {
      throw new LunkitError('ERR_NBD_TOO_LARGE', `option ${option} data of ${length} bytes exceeds ${this.maxOptionLength}`);
    }
    if (this.q.buffered < OPTION_HEADER_LENGTH + length) return false;
    const whole = this.q.take(OPTION_HEADER_LENGTH + length);
    this.opts.onOption({ option, data: whole.subarray(OPTION_HEADER_LENGTH) });
    return true;
  }

  private peekHeader(): Buffer {
    const h = Buffer.allocUnsafe(OPTION_HEADER_LENGTH);
    for (let i = 0; i < OPTION_HEADER_LENGTH; i++) h[i] = this.q.byteAt(i);
    return h;
  }
}

// --- RequestFramer ------------------------------------------------------------------

export interface RequestFramerOptions extends FramerErrorSink {
  /** Extended headers (32-byte requests) are in force (default false). */
  extendedHeaders?: boolean;
  /** Cap on a request payload (default NBD_MAX_PAYLOAD, 32 MiB). */
  maxPayloadLength?: number;
  /**
   * Payloads above maxPayloadLength but at most this long are read and
   * dropped without buffering, and the request is delivered with
   * payloadDropped = true so the server can answer EINVAL/EOVERFLOW and stay
   * in sync (STYLE.md §6). Default 0: any oversized payload is a stream error.
   */
  maxDiscardLength?: number;
  /**
   * Where a payload that straddles socket chunks is copied (ByteQueue.take's
   * `into`): exactly `length` bytes, e.g. a pooled buffer; undefined for a new
   * one. Not asked for a payload that lies in one chunk (it is a view).
   */
  payloadTarget?(length: number): Buffer | undefined;
  /** `payload` is empty unless the request carries data (compact: WRITE; extended: PAYLOAD_LEN set). */
  onRequest(req: NbdRequest, payload: Buffer, payloadDropped: boolean): void;
}

export class RequestFramer extends NbdFramer {
  private extended: boolean;
  private readonly maxPayload: number;
  private readonly maxDiscard: number;
  private readonly opts: RequestFramerOptions;
  private pending: { req: NbdRequest; length: number; discarding: boolean; dropped: number } | undefined;

  constructor(opts: RequestFramerOptions) {
    super((e) => opts.onError(e));
    this.opts = opts;
    this.extended = opts.extendedHeaders ?? false;
    this.maxPayload = opts.maxPayloadLength ?? NBD_MAX_PAYLOAD;
    this.maxDiscard = opts.maxDiscardLength ?? 0;
  }

  /** Switch header size; applies from the next request header on. */
  setExtendedHeaders(on: boolean): void {
    this.extended = on;
  }

  protected step(): boolean {
    if (this.pending === undefined) {
      const hlen = this.extended ? EXTENDED_REQUEST_LENGTH : REQUEST_LENGTH;
      if (this.q.buffered < hlen) return false;
      const req = decodeRequest(this.q.take(hlen), this.extended);
      // Which requests carry data (proto.md, extension-ext-header branch,
      // "Request message"): compact headers, only WRITE (its length is the
      // payload length; PAYLOAD_LEN MUST NOT be used). Extended headers, exactly
      // the requests with NBD_CMD_FLAG_PAYLOAD_LEN, whatever the command: a
      // WRITE without the flag has no payload on the wire (its length is an
      // effect length; the server answers EINVAL), and any other command with
      // the flag has `length` bytes to consume even if it then fails.
      const hasPayload = this.extended ? (req.flags & NbdCmdFlag.PAYLOAD_LEN) !== 0 : req.type === NbdCmd.WRITE;
      if (!hasPayload) {
        this.opts.onRequest(req, EMPTY, false);
        return true;
      }
      let discarding = false;
      if (req.length > this.maxPayload) {
        if (req.length > this.maxDiscard) {
          throw new LunkitError('ERR_NBD_TOO_LARGE', `request payload of ${req.length} bytes exceeds ${this.maxPayload}`);
        }
        discarding = true;
      }
      this.pending = { req, length: req.length, discarding, dropped: 0 };
    }
    const p = this.pending;
    if (p.discarding) {
      p.dropped += this.q.discard(p.length - p.dropped);
      if (p.dropped < p.length) return false;
      this.pending = undefined;
      this.opts.onRequest(p.req, EMPTY, true);
      return true;
    }
    if (this.q.buffered < p.length) return false;
    this.pending = undefined;
    const target = this.opts.payloadTarget;
    this.opts.onRequest(p.req, this.q.take(p.length, target && (() => target.call(this.opts, p.length))), false);
    return true;
  }
}

// --- ReplyFramer ------------------------------------------------------------------------

export type ReplyFrame =
  | {
      kind: 'simple';
      /** NbdErrno; 0 on success. */
      error: number;
      handle: bigint;
      /** READ data when error is 0 and expectedReadLength gave a length; else empty. */
      data: Buffer;
    }
  | { kind: 'chunk'; header: ReplyChunkHeader; payload: Buffer };

export interface ReplyFramerOptions extends FramerErrorSink {
  /**
   * For a successful simple reply: how many data bytes follow it, i.e. the
   * length of the READ with this handle, or undefined when none follow. Called
   * exactly once per simple reply, when its 16-byte header is complete.
   */
  expectedReadLength(handle: bigint): number | undefined;
  /** Cap on a reply's payload (default NBD_MAX_PAYLOAD + 64 KiB for chunk overhead). */
  maxPayloadLength?: number;
  onReply(frame: ReplyFrame): void;
}

export class ReplyFramer extends NbdFramer {
  private readonly maxPayload: number;
  private readonly opts: ReplyFramerOptions;
  private pending: { length: number; deliver: (payload: Buffer) => ReplyFrame } | undefined;

  constructor(opts: ReplyFramerOptions) {
    super((e) => opts.onError(e));
    this.opts = opts;
    this.maxPayload = opts.maxPayloadLength ?? NBD_MAX_PAYLOAD + 64 * 1024;
  }

  protected step(): boolean {
    if (this.pending === undefined) {
      if (this.q.buffered < 4) return false;
      const magic = this.q.u32At(0);
      let hlen: number;
      if (magic === NBD_SIMPLE_REPLY_MAGIC) hlen = SIMPLE_REPLY_LENGTH;
      else if (magic === NBD_STRUCTURED_REPLY_MAGIC) hlen = STRUCTURED_REPLY_LENGTH;
      else if (magic === NBD_EXTENDED_REPLY_MAGIC) hlen = EXTENDED_REPLY_LENGTH;
      else throw new LunkitError('ERR_NBD_BAD_MAGIC', `reply: magic 0x${magic.toString(16)}`);
      if (this.q.buffered < hlen) return false;
      const hb = this.q.take(hlen);
      if (magic === NBD_SIMPLE_REPLY_MAGIC) {
        const { error, handle } = decodeSimpleReply(hb);
        // proto.md: a simple reply carrying an error has no data after it.
        const length = error === 0 ? (this.opts.expectedReadLength(handle) ?? 0) : 0;
        this.cap(length);
        this.pending = { length, deliver: (data) => ({ kind: 'simple', error, handle, data }) };
      } else {
        const header = decodeReplyChunkHeader(hb);
        this.cap(header.length);
        this.pending = { length: header.length, deliver: (payload) => ({ kind: 'chunk', header, payload }) };
      }
    }
    const p = this.pending;
    if (this.q.buffered < p.length) return false;
    this.pending = undefined;
    this.opts.onReply(p.deliver(this.q.take(p.length)));
    return true;
  }

  private cap(length: number): void {
    if (length > this.maxPayload) {
      throw new LunkitError('ERR_NBD_TOO_LARGE', `reply payload of ${length} bytes exceeds ${this.maxPayload}`);
    }
  }
}
