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
import { ReplyFramer, type ReplyFrame } from '../protocols/nbd/framers.js';
import {
  decodeBlockStatus,
  decodeErrorChunk,
  decodeOffsetData,
  decodeOffsetHole,
  encodeRequest,
  type BlockDescriptor,
} from '../protocols/nbd/transmission.js';
import { LunkitError } from '../protocols/errors.js';
import { NbdClientError, serverError } from './errors.js';
import type { Negotiated } from './negotiate.js';

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
  private readonly framer: ReplyFramer;
  private nextCookie = 1n;
  private dead: NbdClientError | undefined;
  private readonly baseAllocationId: number | undefined;

  constructor(
    private readonly sock: Socket,
    readonly negotiated: Negotiated,
    leftover: Buffer,
    private readonly onClose: (err: NbdClientError) => void,
  ) {
    this.baseAllocationId = negotiated.metaContexts.get('base:allocation');
    this.framer = new ReplyFramer({
      // A simple reply to a READ carries the data: its length is the request's.
      expectedReadLength: (handle) => {
        const f = this.inFlight.get(handle);
        return f !== undefined && f.req.type === NbdCmd.READ ? f.req.length : undefined;
      },
      onReply: (frame) => this.onReply(frame),
      onError: (err) => this.kill(protocolError(`server broke the reply stream: ${err.message}`, err)),
    });
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.framer.push(chunk));
    sock.on('error', (err) => this.kill(new NbdClientError('ERR_NBD_DISCONNECTED', `connection error: ${err.message}`, { cause: err })));
    sock.on('close', () => this.kill(new NbdClientError('ERR_NBD_DISCONNECTED', 'the server closed the connection')));
    if (leftover.length > 0) this.framer.push(leftover);
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
    this.framer.stop();
    this.sock.destroy();
    this.onClose(err);
    const pending = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const f of pending) if (!f.abandoned) f.req.done(err);
  }

  private onReply(frame: ReplyFrame): void {
    try {
      if (frame.kind === 'simple') this.onSimple(frame.handle, frame.error, frame.data);
      else this.onChunk(frame.header.handle, frame.header.type, frame.header.flags, frame.payload);
    } catch (e) {
      const err =
        e instanceof NbdClientError ? e : e instanceof LunkitError ? protocolError(`server sent ${e.message}`, e) : undefined;
      if (err === undefined) throw e;
      this.kill(err);
    }
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

  private onSimple(handle: bigint, error: number, data: Buffer): void {
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
    if (f.readInto !== undefined) data.copy(f.readInto, 0, 0, f.req.length);
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
        case NbdReplyType.OFFSET_DATA: {
          if (req.type !== NbdCmd.READ) throw protocolError(`OFFSET_DATA in reply to ${cmdName(req.type)}`);
          const { offset, data } = decodeOffsetData(payload);
          const at = this.inRange(req, offset, data.length);
          if (f.readInto !== undefined) data.copy(f.readInto, at);
          f.covered += data.length;
          break;
        }
        case NbdReplyType.OFFSET_HOLE: {
          if (req.type !== NbdCmd.READ) throw protocolError(`OFFSET_HOLE in reply to ${cmdName(req.type)}`);
          const { offset, holeSize } = decodeOffsetHole(payload);
          const at = this.inRange(req, offset, holeSize);
          if (f.readInto !== undefined) f.readInto.fill(0, at, at + holeSize);
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
