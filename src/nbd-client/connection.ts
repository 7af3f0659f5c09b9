// One negotiated NBD connection in the transmission phase (proto.md
// "Transmission"): requests go out pipelined, each under a fresh cookie
// (handle); replies come back in any order and are matched through the
// in-flight map. Simple and structured replies are both understood.
//
// The connection knows nothing of retries or deadlines: when it dies it
// first tells its owner (onClose), then fails every request still in flight
// with ERR_NBD_DISCONNECTED, and the owner decides whether to replay them.

import type { Socket } from 'node:net';
import {
  NbdCmd,
  NbdReplyFlag,
  NbdReplyType,
  cmdName,
  isReplyTypeError,
  replyTypeName,
} from '../protocols/nbd/constants.js';
import {
  decodeBlockStatus,
  decodeErrorChunk,
  decodeOffsetHole,
  encodeRequest,
  type BlockDescriptor,
} from '../protocols/nbd/transmission.js';
import { LunkitError } from '../protocols/errors.js';
import { NbdClientError, serverError } from './errors.js';
import type { Negotiated } from './negotiate.js';
import { ReplyReader, ReplyStreamError } from './reply-reader.js';
import type { SocketInput } from './socket-input.js';

/** One request as the connection sends it. */
export interface WireRequest {
  type: number;
  flags: number;
  offset: number;
  length: number;
  /** WRITE data (length bytes). */
  payload?: Buffer | undefined;
  /** READ destination (length bytes). */
  readInto?: Buffer | undefined;
  /** Called once: an error, or success (with extents for BLOCK_STATUS). */
  done(err: NbdClientError | undefined, extents?: BlockDescriptor[]): void;
}

interface InFlight {
  req: WireRequest;
  /** READ destination; cleared when the request is abandoned so late data goes nowhere. */
  readInto: Buffer | undefined;
  /** Bytes of a structured READ covered so far (data + holes). */
  covered: number;
  error: NbdClientError | undefined;
  extents: BlockDescriptor[] | undefined;
  abandoned: boolean;
}

function protocolError(message: string, cause?: unknown): NbdClientError {
  return new NbdClientError('ERR_NBD_PROTOCOL', message, cause === undefined ? {} : { cause });
}

export class NbdConnection {
  private readonly inFlight = new Map<bigint, InFlight>();
  private readonly reader: ReplyReader;
  private nextCookie = 1n;
  private dead: NbdClientError | undefined;
  private readonly baseAllocationId: number | undefined;

  constructor(
    private readonly sock: Socket,
    input: SocketInput,
    readonly negotiated: Negotiated,
    leftover: Buffer,
    private readonly onClose: (err: NbdClientError) => void,
  ) {
    this.baseAllocationId = negotiated.metaContexts.get('base:allocation');
    this.reader = new ReplyReader(
      {
        // A simple reply to a READ carries the data: its length is the request's.
        simpleDataLength: (handle) => {
          const f = this.inFlight.get(handle);
          return f !== undefined && f.req.type === NbdCmd.READ ? f.req.length : 0;
        },
        destination: (handle) => this.inFlight.get(handle)?.readInto,
        onSimple: (handle, error) => this.onSimple(handle, error),
        onDataStart: (handle, offset, length) => this.onDataStart(handle, offset, length),
        onDataEnd: (handle, flags, length) => this.onDataEnd(handle, flags, length),
        onChunk: (handle, type, flags, payload) => this.onChunk(handle, type, flags, payload),
      },
      (e) => this.kill(this.streamError(e)),
    );
    sock.setNoDelay(true);
    sock.on('error', (err) => this.kill(new NbdClientError('ERR_NBD_DISCONNECTED', `connection error: ${err.message}`, { cause: err })));
    sock.on('close', () => this.kill(new NbdClientError('ERR_NBD_DISCONNECTED', 'the server closed the connection')));
    if (leftover.length > 0) this.reader.push(leftover);
    input.setConsumer((chunk) => this.reader.push(chunk));
  }

  get isDead(): boolean {
    return this.dead !== undefined;
  }

  /** Requests sent and not yet answered (abandoned ones included). */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Send one request; returns its cookie. A dead connection fails it at once. */
  send(req: WireRequest): bigint {
    const cookie = this.nextCookie++;
    if (this.dead) {
      req.done(this.dead);
      return cookie;
    }
    this.inFlight.set(cookie, { req, readInto: req.readInto, covered: 0, error: undefined, extents: undefined, abandoned: false });
    const header = encodeRequest({ flags: req.flags, type: req.type, handle: cookie, offset: BigInt(req.offset), length: req.length });
    if (req.payload !== undefined) {
      // Header and data leave in one write (STYLE.md "header and data written together").
      this.sock.cork();
      this.sock.write(header);
      this.sock.write(req.payload);
      this.sock.uncork();
    } else {
      this.sock.write(header);
    }
    return cookie;
  }

  /**
   * Forget the caller of a request (its deadline passed). Its reply is still
   * read when it comes, to keep the stream in sync, but READ data is dropped.
   */
  abandon(cookie: bigint): void {
    const f = this.inFlight.get(cookie);
    if (f) {
      f.abandoned = true;
      f.readInto = undefined;
    }
  }

  /** NBD_CMD_DISC, then close our side (proto.md: the server closes after DISC). */
  disconnect(timeoutMs: number): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => this.sock.destroy(), timeoutMs);
      this.sock.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      this.sock.write(encodeRequest({ flags: 0, type: NbdCmd.DISC, handle: this.nextCookie++, offset: 0n, length: 0 }));
      this.sock.end();
    });
  }

  /** Close at once; in-flight requests fail with ERR_NBD_DISCONNECTED. */
  destroy(reason?: NbdClientError): void {
    this.kill(reason ?? new NbdClientError('ERR_NBD_DISCONNECTED', 'the connection was closed by the client'));
  }

  private kill(err: NbdClientError): void {
    if (this.dead) return;
    this.dead = err;
    this.reader.stop();
    this.sock.destroy();
    this.onClose(err);
    const pending = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const f of pending) if (!f.abandoned) f.req.done(err);
  }

  /** What a handler threw while reading replies, as the error that kills the connection. */
  private streamError(e: unknown): NbdClientError {
    if (e instanceof NbdClientError) return e;
    if (e instanceof ReplyStreamError) return protocolError(`server broke the reply stream: ${e.message}`, e);
    if (e instanceof LunkitError) return protocolError(`server sent ${e.message}`, e);
    return protocolError(`reply handling failed: ${e instanceof Error ? e.message : String(e)}`, e);
  }

  private take(handle: bigint): InFlight {
    const f = this.inFlight.get(handle);
    if (f === undefined) throw protocolError(`reply for unknown cookie ${handle}`);
    return f;
  }

  private finish(handle: bigint, f: InFlight, err: NbdClientError | undefined, extents?: BlockDescriptor[]): void {
    this.inFlight.delete(handle);
    if (!f.abandoned) f.req.done(err, extents);
  }

  /** A simple reply; READ data has already been copied into readInto by the reader. */
  private onSimple(handle: bigint, error: number): void {
    const f = this.take(handle);
    if (error !== 0) {
      this.finish(handle, f, serverError(cmdName(f.req.type), error));
      return;
    }
    if (f.req.type === NbdCmd.BLOCK_STATUS) {
      // proto.md: BLOCK_STATUS needs structured replies; a simple success says nothing.
      this.finish(handle, f, protocolError('simple reply to NBD_CMD_BLOCK_STATUS'));
      return;
    }
    this.finish(handle, f, undefined);
  }

  private onChunk(handle: bigint, type: number, flags: number, payload: Buffer): void {
    const f = this.take(handle);
    const req = f.req;
    if (isReplyTypeError(type)) {
      const e = decodeErrorChunk(type, payload);
      // The first error wins; a zero errno in an error chunk is itself a protocol error.
      f.error ??= e.error === 0 ? protocolError(`${replyTypeName(type)} with errno 0`) : serverError(cmdName(req.type), e.error, e.message);
    } else {
      switch (type) {
        case NbdReplyType.NONE:
          if ((flags & NbdReplyFlag.DONE) === 0) throw protocolError('NBD_REPLY_TYPE_NONE without NBD_REPLY_FLAG_DONE');
          break;
        case NbdReplyType.OFFSET_HOLE: {
          if (req.type !== NbdCmd.READ) throw protocolError(`OFFSET_HOLE in reply to ${cmdName(req.type)}`);
          const { offset, holeSize } = decodeOffsetHole(payload);
          const at = this.inRange(req, offset, holeSize);
          // Bounded: a caller's buffer may have shrunk (a detached FUSE reply buffer has length 0).
          if (f.readInto !== undefined && at < f.readInto.length) f.readInto.fill(0, at, Math.min(at + holeSize, f.readInto.length));
          f.covered += holeSize;
          break;
        }
        case NbdReplyType.BLOCK_STATUS: {
          if (req.type !== NbdCmd.BLOCK_STATUS) throw protocolError(`BLOCK_STATUS chunk in reply to ${cmdName(req.type)}`);
          const bs = decodeBlockStatus(payload);
          // We ask for base:allocation only; other contexts (if any) are ignored.
          if (bs.contextId === this.baseAllocationId) f.extents = bs.extents;
          break;
        }
        default:
          throw protocolError(`unknown reply chunk type ${replyTypeName(type)}`);
      }
    }
    this.chunkDone(handle, f, flags);
  }

  /** An OFFSET_DATA chunk begins: check it against its READ; returns where its data goes in readInto. */
  private onDataStart(handle: bigint, offset: bigint, length: number): number {
    const f = this.take(handle);
    if (f.req.type !== NbdCmd.READ) throw protocolError(`OFFSET_DATA in reply to ${cmdName(f.req.type)}`);
    return this.inRange(f.req, offset, length);
  }

  /** Its data is in readInto (or dropped, for an abandoned request). */
  private onDataEnd(handle: bigint, flags: number, length: number): void {
    const f = this.take(handle);
    f.covered += length;
    this.chunkDone(handle, f, flags);
  }

  /** After any chunk: the request ends with the one flagged DONE. */
  private chunkDone(handle: bigint, f: InFlight, flags: number): void {
    const req = f.req;
    if ((flags & NbdReplyFlag.DONE) === 0) return;
    if (f.error) {
      this.finish(handle, f, f.error);
    } else if (req.type === NbdCmd.READ && f.covered !== req.length) {
      this.finish(handle, f, protocolError(`structured READ covered ${f.covered} of ${req.length} bytes`));
    } else if (req.type === NbdCmd.BLOCK_STATUS && (f.extents === undefined || f.extents.length === 0)) {
      this.finish(handle, f, protocolError('BLOCK_STATUS reply without base:allocation extents'));
    } else {
      this.finish(handle, f, undefined, f.extents);
    }
  }

  /** The chunk's position inside the READ's buffer; throws when it lies outside the request. */
  private inRange(req: WireRequest, offset: bigint, length: number): number {
    const at = Number(offset) - req.offset;
    if (at < 0 || at + length > req.length) {
      throw protocolError(`chunk [${offset}, +${length}) outside the READ [${req.offset}, +${req.length})`);
    }
    return at;
  }
}
