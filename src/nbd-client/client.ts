// NbdClient: the public face of the library. One negotiated connection at a
// time, many requests in flight on it, reads and writes split at the
// server's maximum block size, a deadline on every request, and an optional
// reconnect with exponential back-off that replays the requests that had not
// completed when the connection was lost.

import { EventEmitter } from 'node:events';
import { BASE_ALLOCATION, NbdCmd, NbdCmdFlag, NbdState, NbdTransmissionFlag as TF } from '../protocols/nbd/constants.js';
import type { ExportListEntry } from '../protocols/nbd/handshake.js';
import type { BlockDescriptor } from '../protocols/nbd/transmission.js';
import { NbdClientError } from './errors.js';
import { openConnection, query } from './connect.js';
import type { NbdConnection, WireRequest } from './connection.js';
import { listExports, queryExport, type NbdExportInfo } from './negotiate.js';
import { parseNbdUrl, formatNbdUrl, type NbdAddress } from './url.js';

/** Reconnect policy: `retries` attempts, delays initialDelayMs * 2^n capped at maxDelayMs. */
export interface NbdReconnectOptions {
  retries: number;
  /** Delay before the first attempt (default 100 ms). */
  initialDelayMs?: number;
  /** Cap on one delay (default 5000 ms). */
  maxDelayMs?: number;
}

export interface NbdClientOptions {
  /** Export to attach to; overrides the URL's path. */
  exportName?: string;
  /** Deadline for connecting plus the handshake (default 10 s). */
  connectTimeoutMs?: number;
  /** Deadline for one request, from submission to reply, reconnects included (default 60 s). */
  requestTimeoutMs?: number;
  /** Ask for structured replies (default true). */
  structuredReplies?: boolean;
  /** Meta contexts to select (default ["base:allocation"]). */
  metaContexts?: readonly string[];
  /** Reconnect after a lost connection (default: off). */
  reconnect?: NbdReconnectOptions | false;
}

/** One extent of base:allocation block status, in absolute byte offsets. */
export interface NbdBlockStatusExtent {
  offset: number;
  length: number;
  /** NBD_STATE_* bits (NbdState.HOLE, NbdState.ZERO). */
  flags: number;
  /** Not allocated (NBD_STATE_HOLE). */
  hole: boolean;
  /** Reads as zeroes (NBD_STATE_ZERO). */
  zero: boolean;
}

export type NbdClientState = 'connected' | 'reconnecting' | 'failed' | 'closed';

/** Events: 'disconnect' (err), 'reconnecting' (attempt, delayMs), 'reconnected' (), 'close' (). */
export interface NbdClientEvents {
  disconnect: [err: NbdClientError];
  reconnecting: [attempt: number, delayMs: number];
  reconnected: [];
  close: [];
}

/** The largest length field a compact request carries, kept aligned to the minimum block size. */
function maxLengthField(minimum: number): number {
  // 2^32 - 1 is odd: keep whole minimum blocks (and 4 KiB alignment) in every piece.
  const align = Math.max(minimum, 4096);
  return 0x100000000 - align;
}

/** One request the caller is waiting for; survives reconnects. */
class Op implements WireRequest {
  payload: Buffer | undefined;
  readInto: Buffer | undefined;
  conn: NbdConnection | undefined;
  cookie = 0n;
  timer: NodeJS.Timeout | undefined;
  settled = false;

  constructor(
    readonly type: number,
    readonly flags: number,
    readonly offset: number,
    readonly length: number,
    private readonly client: NbdClient,
    readonly resolve: (extents?: BlockDescriptor[]) => void,
    readonly reject: (err: NbdClientError) => void,
  ) {}

  done(err: NbdClientError | undefined, extents?: BlockDescriptor[]): void {
    this.client._completed(this, err, extents);
  }
}

export class NbdClient extends EventEmitter<NbdClientEvents> {
  private conn: NbdConnection | undefined;
  private _state: NbdClientState = 'connected';
  private readonly ops = new Set<Op>();
  /** Ops waiting for a connection (during a reconnect). */
  private readonly waiting = new Set<Op>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Ends the back-off sleep early (on shutdown) so the reconnect loop returns. */
  private wakeReconnect: (() => void) | undefined;
  private readonly requestTimeoutMs: number;
  private idleWaiters: Array<() => void> = [];

  private constructor(
    /** Where the server is and which export this client is attached to. */
    readonly address: NbdAddress,
    private readonly opts: NbdClientOptions,
    conn: NbdConnection,
  ) {
    super();
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.attach(conn);
    // The server may have gone between the handshake and now.
    if (conn.isDead) this._lost(new NbdClientError('ERR_NBD_DISCONNECTED', 'the server closed the connection right after the handshake'));
  }

  /**
   * Connect to `target` (an nbd:// or nbd+unix:// URL, or a parsed address)
   * and negotiate (fixed newstyle, STRUCTURED_REPLY, SET_META_CONTEXT
   * base:allocation, GO; EXPORT_NAME only when the server lacks those).
   * Rejects with ERR_NBD_CONNECT, ERR_NBD_OPTION_REFUSED, ERR_NBD_TIMEOUT...
   */
  static async connect(target: string | NbdAddress, opts: NbdClientOptions = {}): Promise<NbdClient> {
    const addr = NbdClient.resolve(target, opts);
    const ref: { client?: NbdClient } = {};
    const conn = await openConnection(addr, NbdClient.negotiateOptions(addr, opts), (err) => ref.client?._lost(err));
    ref.client = new NbdClient(addr, opts, conn);
    return ref.client;
  }

  /** NBD_OPT_LIST: the server's exports with their descriptions (the URL's export name is ignored). */
  static async list(target: string | NbdAddress, opts: { connectTimeoutMs?: number } = {}): Promise<ExportListEntry[]> {
    const addr = NbdClient.resolve(target, {});
    return query(addr, opts.connectTimeoutMs ?? 10_000, (r, s) => listExports(r, s));
  }

  /** NBD_OPT_INFO: size, flags, block sizes and description of an export, without attaching to it. */
  static async info(target: string | NbdAddress, opts: { exportName?: string; connectTimeoutMs?: number } = {}): Promise<NbdExportInfo> {
    const addr = NbdClient.resolve(target, opts);
    return query(addr, opts.connectTimeoutMs ?? 10_000, (r, s) => queryExport(r, s, addr.exportName));
  }

  private static resolve(target: string | NbdAddress, opts: { exportName?: string }): NbdAddress {
    const addr = typeof target === 'string' ? parseNbdUrl(target) : target;
    return opts.exportName === undefined ? addr : { ...addr, exportName: opts.exportName };
  }

  private static negotiateOptions(addr: NbdAddress, opts: NbdClientOptions) {
    return {
      exportName: addr.exportName,
      structuredReplies: opts.structuredReplies,
      metaContexts: opts.metaContexts,
      timeoutMs: opts.connectTimeoutMs ?? 10_000,
    };
  }

  // --- What was negotiated -------------------------------------------------------

  /** The export as the server described it on the current connection. */
  get export(): NbdExportInfo {
    return this.current().negotiated.export;
  }

  get size(): number {
    return this.export.size;
  }

  /** NBD transmission flags (NbdTransmissionFlag bits). */
  get transmissionFlags(): number {
    return this.export.transmissionFlags;
  }

  get state(): NbdClientState {
    return this._state;
  }

  /** Structured replies are in force. */
  get structuredReplies(): boolean {
    return this.current().negotiated.structuredReplies;
  }

  /** How the export was selected: NBD_OPT_GO, or NBD_OPT_EXPORT_NAME for old servers. */
  get negotiatedVia(): 'go' | 'export-name' {
    return this.current().negotiated.via;
  }

  /** Meta context name -> id agreed with SET_META_CONTEXT. */
  get metaContexts(): ReadonlyMap<string, number> {
    return this.current().negotiated.metaContexts;
  }

  /** Requests waiting for a reply (or for a reconnect). */
  get inFlight(): number {
    return this.ops.size;
  }

  private has(flag: number): boolean {
    return (this.transmissionFlags & flag) !== 0;
  }

  get readOnly(): boolean {
    return this.has(TF.READ_ONLY);
  }
  get canFlush(): boolean {
    return this.has(TF.SEND_FLUSH);
  }
  get canFua(): boolean {
    return this.has(TF.SEND_FUA);
  }
  get canTrim(): boolean {
    return this.has(TF.SEND_TRIM) && !this.readOnly;
  }
  get canWriteZeroes(): boolean {
    return this.has(TF.SEND_WRITE_ZEROES) && !this.readOnly;
  }
  get canFastZero(): boolean {
    return this.has(TF.SEND_FAST_ZERO) && this.canWriteZeroes;
  }
  get canCache(): boolean {
    return this.has(TF.SEND_CACHE);
  }
  get canMultiConn(): boolean {
    return this.has(TF.CAN_MULTI_CONN);
  }
  /** base:allocation was negotiated, so blockStatus() works. */
  get canBlockStatus(): boolean {
    return this.metaContexts.has(BASE_ALLOCATION);
  }

  // --- Commands ---------------------------------------------------------------

  /** NBD_CMD_READ into a new buffer. */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, offset);
    return buf;
  }

  /** NBD_CMD_READ into `buf` (buf.length bytes), split at the maximum block size. */
  async readInto(buf: Buffer, offset: number): Promise<void> {
    this.checkRange(offset, buf.length);
    const max = this.export.blockSize.maximum;
    const parts: Promise<unknown>[] = [];
    for (let pos = 0; pos < buf.length; pos += max) {
      const len = Math.min(max, buf.length - pos);
      parts.push(this.submit(NbdCmd.READ, 0, offset + pos, len, undefined, buf.subarray(pos, pos + len)));
    }
    await Promise.all(parts);
  }

  /** NBD_CMD_WRITE (pipelined, split at the maximum block size); `fua` needs SEND_FUA. */
  async write(buf: Buffer, offset: number, opts: { fua?: boolean } = {}): Promise<void> {
    if (this.readOnly) throw this.unsupported('NBD_CMD_WRITE (the export is read-only)');
    this.checkRange(offset, buf.length);
    const flags = this.fuaFlag(opts.fua);
    const max = this.export.blockSize.maximum;
    const parts: Promise<unknown>[] = [];
    for (let pos = 0; pos < buf.length; pos += max) {
      const len = Math.min(max, buf.length - pos);
      parts.push(this.submit(NbdCmd.WRITE, flags, offset + pos, len, buf.subarray(pos, pos + len)));
    }
    await Promise.all(parts);
  }

  /** NBD_CMD_FLUSH; needs SEND_FLUSH. */
  async flush(): Promise<void> {
    if (!this.canFlush) throw this.unsupported('NBD_CMD_FLUSH');
    await this.submit(NbdCmd.FLUSH, 0, 0, 0);
  }

  /** NBD_CMD_TRIM (the server may discard; reads afterwards are unspecified); needs SEND_TRIM. */
  async trim(offset: number, length: number, opts: { fua?: boolean } = {}): Promise<void> {
    if (!this.canTrim) throw this.unsupported('NBD_CMD_TRIM');
    await this.ranged(NbdCmd.TRIM, this.fuaFlag(opts.fua), offset, length);
  }

  /**
   * NBD_CMD_WRITE_ZEROES; needs SEND_WRITE_ZEROES. `noHole` keeps the range
   * allocated; `fastZero` (needs SEND_FAST_ZERO) fails with ENOTSUP rather
   * than fall back to writing zeroes slowly.
   */
  async writeZeroes(offset: number, length: number, opts: { fua?: boolean; noHole?: boolean; fastZero?: boolean } = {}): Promise<void> {
    if (!this.canWriteZeroes) throw this.unsupported('NBD_CMD_WRITE_ZEROES');
    let flags = this.fuaFlag(opts.fua);
    if (opts.noHole) flags |= NbdCmdFlag.NO_HOLE;
    if (opts.fastZero) {
      if (!this.canFastZero) throw this.unsupported('NBD_CMD_FLAG_FAST_ZERO');
      flags |= NbdCmdFlag.FAST_ZERO;
    }
    await this.ranged(NbdCmd.WRITE_ZEROES, flags, offset, length);
  }

  /** NBD_CMD_CACHE (prefetch); needs SEND_CACHE. */
  async cache(offset: number, length: number): Promise<void> {
    if (!this.canCache) throw this.unsupported('NBD_CMD_CACHE');
    this.checkRange(offset, length);
    const max = this.export.blockSize.maximum;
    const parts: Promise<unknown>[] = [];
    for (let pos = 0; pos < length; pos += max) parts.push(this.submit(NbdCmd.CACHE, 0, offset + pos, Math.min(max, length - pos)));
    await Promise.all(parts);
  }

  /**
   * NBD_CMD_BLOCK_STATUS for base:allocation. The server may describe less
   * than asked (at least one extent); extents are clipped to the range asked.
   */
  async blockStatus(offset: number, length: number, opts: { reqOne?: boolean } = {}): Promise<NbdBlockStatusExtent[]> {
    if (!this.canBlockStatus) throw this.unsupported('NBD_CMD_BLOCK_STATUS (base:allocation not negotiated)');
    this.checkRange(offset, length);
    if (length === 0) return [];
    const len = Math.min(length, maxLengthField(this.export.blockSize.minimum));
    const descs = (await this.submit(NbdCmd.BLOCK_STATUS, opts.reqOne ? NbdCmdFlag.REQ_ONE : 0, offset, len)) ?? [];
    const out: NbdBlockStatusExtent[] = [];
    const end = offset + len;
    let at = offset;
    for (const d of descs) {
      if (at >= end) break;
      const l = Math.min(d.length, end - at);
      if (l <= 0) break;
      out.push({ offset: at, length: l, flags: d.flags, hole: (d.flags & NbdState.HOLE) !== 0, zero: (d.flags & NbdState.ZERO) !== 0 });
      at += l;
    }
    return out;
  }

  /**
   * Clean disconnect: wait (up to the request deadline) for requests in
   * flight, send NBD_CMD_DISC and close. Idempotent.
   */
  async disconnect(): Promise<void> {
    if (this._state === 'closed') return;
    // proto.md: the client SHOULD wait for outstanding replies before NBD_CMD_DISC.
    if (this.ops.size > 0) await new Promise<void>((res) => this.idleWaiters.push(res));
    const conn = this.conn;
    this.shutdown();
    if (conn) await conn.disconnect(2000);
  }

  /** Close at once: requests in flight fail with ERR_NBD_DISCONNECTED. */
  destroy(): void {
    if (this._state === 'closed') return;
    const conn = this.conn;
    this.shutdown();
    conn?.destroy();
  }

  // --- Internals -------------------------------------------------------------------

  private shutdown(): void {
    this._state = 'closed';
    this.conn = undefined;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.wakeReconnect?.();
    const err = new NbdClientError('ERR_NBD_DISCONNECTED', 'the client was closed');
    for (const op of [...this.waiting]) this.settle(op, err);
    this.waiting.clear();
    this.emit('close');
  }

  private current(): NbdConnection {
    if (this.conn) return this.conn;
    if (this.lastConn) return this.lastConn;
    throw new NbdClientError('ERR_NBD_DISCONNECTED', 'not connected');
  }

  /** The last connection, kept so the negotiated facts stay readable while reconnecting. */
  private lastConn: NbdConnection | undefined;

  private attach(conn: NbdConnection): void {
    this.conn = conn;
    this.lastConn = conn;
    this._state = 'connected';
  }

  private unsupported(what: string): NbdClientError {
    return new NbdClientError('ERR_NBD_UNSUPPORTED', `the server did not advertise ${what}`);
  }

  private fuaFlag(fua: boolean | undefined): number {
    if (!fua) return 0;
    if (!this.canFua) throw this.unsupported('NBD_CMD_FLAG_FUA');
    return NbdCmdFlag.FUA;
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new NbdClientError('ERR_NBD_INVALID_ARGUMENT', `range [${offset}, +${length}) is outside the export (${this.size} bytes)`);
    }
  }

  /** TRIM / WRITE_ZEROES over any length: split where the 32-bit length field ends. */
  private async ranged(type: number, flags: number, offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    const max = maxLengthField(this.export.blockSize.minimum);
    const parts: Promise<unknown>[] = [];
    for (let pos = 0; pos < length; pos += max) parts.push(this.submit(type, flags, offset + pos, Math.min(max, length - pos)));
    await Promise.all(parts);
  }

  private submit(type: number, flags: number, offset: number, length: number, payload?: Buffer, readInto?: Buffer): Promise<BlockDescriptor[] | undefined> {
    return new Promise((resolve, reject) => {
      const op = new Op(type, flags, offset, length, this, resolve, reject);
      op.payload = payload;
      op.readInto = readInto;
      if (this._state === 'closed') {
        reject(new NbdClientError('ERR_NBD_DISCONNECTED', 'the client is closed'));
        return;
      }
      this.ops.add(op);
      if (this.requestTimeoutMs > 0) {
        op.timer = setTimeout(() => this.timeout(op), this.requestTimeoutMs);
      }
      this.dispatch(op);
    });
  }

  private dispatch(op: Op): void {
    if (this.conn && !this.conn.isDead) {
      op.conn = this.conn;
      op.cookie = this.conn.send(op);
      return;
    }
    this.waiting.add(op);
    if (this._state === 'failed') this.startReconnect();
  }

  private timeout(op: Op): void {
    if (op.settled) return;
    this.waiting.delete(op);
    if (op.conn) op.conn.abandon(op.cookie);
    this.settle(op, new NbdClientError('ERR_NBD_TIMEOUT', `${op.type === NbdCmd.READ ? 'READ' : 'request'} at ${op.offset} got no reply within ${this.requestTimeoutMs} ms`));
  }

  private settle(op: Op, err: NbdClientError | undefined, extents?: BlockDescriptor[]): void {
    if (op.settled) return;
    op.settled = true;
    if (op.timer) clearTimeout(op.timer);
    this.ops.delete(op);
    if (err) op.reject(err);
    else op.resolve(extents);
    if (this.ops.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** @internal Called by an Op when its connection answered or died. */
  _completed(op: Op, err: NbdClientError | undefined, extents?: BlockDescriptor[]): void {
    if (op.settled) return;
    op.conn = undefined;
    if (err?.code === 'ERR_NBD_DISCONNECTED' && this.reconnectEnabled() && this._state !== 'closed') {
      // Replay on the next connection (the request may or may not have been applied: NBD writes are idempotent).
      this.waiting.add(op);
      return;
    }
    this.settle(op, err, extents);
  }

  /** @internal Called by the connection when it dies (before its requests fail). */
  _lost(err: NbdClientError): void {
    if (this._state === 'closed') return;
    this.conn = undefined;
    this.emit('disconnect', err);
    if (this.reconnectEnabled()) this.startReconnect(err);
    else this.shutdownAfterLoss(err);
  }

  private shutdownAfterLoss(err: NbdClientError): void {
    this._state = 'closed';
    for (const op of [...this.waiting]) this.settle(op, err);
    this.waiting.clear();
    this.emit('close');
  }

  private isClosed(): boolean {
    return this._state === 'closed';
  }

  private reconnectEnabled(): boolean {
    return this.opts.reconnect !== undefined && this.opts.reconnect !== false && this.opts.reconnect.retries > 0;
  }

  private startReconnect(cause?: NbdClientError): void {
    if (this._state === 'reconnecting' || this._state === 'closed') return;
    this._state = 'reconnecting';
    void this.reconnectLoop(cause);
  }

  private async reconnectLoop(cause?: NbdClientError): Promise<void> {
    const policy = this.opts.reconnect as NbdReconnectOptions;
    const initial = policy.initialDelayMs ?? 100;
    const cap = policy.maxDelayMs ?? 5000;
    let lastErr: unknown = cause;
    for (let attempt = 1; attempt <= policy.retries; attempt++) {
      const delay = Math.min(cap, initial * 2 ** (attempt - 1));
      this.emit('reconnecting', attempt, delay);
      await new Promise<void>((res) => {
        this.wakeReconnect = res;
        this.reconnectTimer = setTimeout(res, delay);
      });
      this.wakeReconnect = undefined;
      if (this.isClosed()) return;
      try {
        const ref: { fresh?: NbdConnection } = {};
        const conn = await openConnection(this.address, NbdClient.negotiateOptions(this.address, this.opts), (e) => {
          if (this.conn !== undefined && this.conn === ref.fresh) this._lost(e);
        });
        ref.fresh = conn;
        if (this.isClosed()) {
          conn.destroy();
          return;
        }
        if (conn.negotiated.export.size !== this.lastConn?.negotiated.export.size) {
          conn.destroy();
          throw new NbdClientError('ERR_NBD_PROTOCOL', `export size changed across the reconnect (${conn.negotiated.export.size} bytes now)`);
        }
        this.attach(conn);
        this.emit('reconnected');
        const replay = [...this.waiting];
        this.waiting.clear();
        for (const op of replay) if (!op.settled) this.dispatch(op);
        return;
      } catch (e) {
        lastErr = e;
      }
    }
    // Out of attempts: fail what waits; a later request starts a new round.
    this._state = 'failed';
    const err = new NbdClientError('ERR_NBD_DISCONNECTED', `lost the connection to ${formatNbdUrl(this.address)} and ${policy.retries} reconnect attempts failed`, { cause: lastErr });
    for (const op of [...this.waiting]) this.settle(op, err);
    this.waiting.clear();
  }
}
