// NbdMultiClient: several NBD connections to one export, used as one client
// (proto.md "NBD_FLAG_CAN_MULTI_CONN"; nbdfuse and nbdcopy open 4 by default).
//
// The first connection is negotiated alone. Only if its export advertises
// CAN_MULTI_CONN and more than one connection was asked for are the others
// opened, in parallel, to the same address and export with the same options;
// each must agree with the first on size, transmission flags, block sizes,
// structured replies and base:allocation, or all the extra ones are closed
// and the client goes on with one (logged). Each connection is a full
// NbdClient ("lane") with its own deadlines and reconnect policy.
//
// Requests go to the first connected lane with less than 1 MiB outstanding,
// else to the one with the fewest outstanding bytes (payload plus a small
// per-request cost; ties rotate), one piece of at most the server's maximum
// block size at a time: a large or deep load spreads over every lane, a
// light one of small requests stays on one socket.
//
// FLUSH: the server promises that a flush on any connection covers every
// write *completed* (replied to) on any connection before the flush was
// sent. So flush() first waits for every write, write-zeroes and trim in
// flight on any lane when it was called, then sends one NBD_CMD_FLUSH on one
// lane. FUA writes need nothing extra (the server makes each durable before
// replying).
//
// A lost lane: with `reconnect`, the lane reconnects and replays its own
// unfinished requests exactly as a lone NbdClient does, and new requests go to
// the connected lanes meanwhile. Without it, the lane's in-flight writes fail
// with ERR_NBD_DISCONNECTED as they do today; reads, flushes, block status and
// cache (which change nothing) are sent again on another lane; the lane is
// dropped and the client goes on with the rest, closing with the last one.
//
// With one lane (one asked for, or no CAN_MULTI_CONN) every call goes
// straight to the NbdClient: nothing is added on the I/O path.

import { EventEmitter } from 'node:events';
import type { Logger } from '../util/log.js';
import { BASE_ALLOCATION } from '../protocols/nbd/constants.js';
import { NbdClient, type NbdBlockStatusExtent, type NbdClientOptions, type NbdClientState } from './client.js';
import { NbdClientError, isNbdClientError } from './errors.js';
import type { NbdExportInfo } from './negotiate.js';
import { formatNbdUrl, type NbdAddress } from './url.js';

/** Most connections one client opens (nbdcopy's --connections has no cap; nbdfuse uses 4). */
export const NBD_MAX_CONNECTIONS = 64;

/** What one request costs in the least-outstanding-bytes choice besides its payload. */
const REQUEST_COST = 4096;

/**
 * A lane takes new requests until this much is outstanding on it before the
 * next lane is used: small requests at a low queue depth stay on one socket,
 * where they batch into fewer syscalls (measured: 4 KiB requests at queue
 * depth 64 against nbdkit memory ran at about half the speed when spread
 * over 4 connections, docs/nbd-client.md), while large or deep loads spread.
 */
const FILL_BYTES = 1024 * 1024;

export interface NbdMultiClientOptions extends NbdClientOptions {
  /** Connections to open when the export advertises CAN_MULTI_CONN (default 1; 1..64). */
  connections?: number;
  /** Where the choice of connection count is logged (info) and a refused extra (warn). */
  logger?: Logger;
}

/** Events: as NbdClient's, with the lane (0-based connection index) that had them; 'close' once all are gone. */
export interface NbdMultiClientEvents {
  disconnect: [err: NbdClientError, lane: number];
  reconnecting: [attempt: number, delayMs: number, lane: number];
  reconnected: [lane: number];
  close: [];
}

interface Lane {
  index: number;
  client: NbdClient;
  /** Payload bytes (plus REQUEST_COST each) of requests sent and not settled. */
  outstanding: number;
}

/** Why the extra connection `b` cannot be used beside `a`; undefined when they agree. */
function disagreement(a: NbdClient, b: NbdClient): string | undefined {
  if (a.size !== b.size) return `size ${b.size} != ${a.size}`;
  if (a.transmissionFlags !== b.transmissionFlags) return `transmission flags 0x${b.transmissionFlags.toString(16)} != 0x${a.transmissionFlags.toString(16)}`;
  if (a.structuredReplies !== b.structuredReplies) return 'structured replies negotiated differently';
  if (a.canBlockStatus !== b.canBlockStatus) return `${BASE_ALLOCATION} negotiated differently`;
  const x = a.export.blockSize;
  const y = b.export.blockSize;
  if (x.minimum !== y.minimum || x.preferred !== y.preferred || x.maximum !== y.maximum) return 'block size constraints differ';
  return undefined;
}

export class NbdMultiClient extends EventEmitter<NbdMultiClientEvents> {
  private lanes: Lane[];
  /** The first connection: what was negotiated is read from it (all lanes agreed). */
  private readonly primary: NbdClient;
  /** Writes, write-zeroes and trims sent on some lane and not settled (flush waits for them). */
  private readonly writes = new Set<Promise<void>>();
  /** Every call in progress (disconnect waits for them). */
  private readonly calls = new Set<Promise<unknown>>();
  private rotate = 0;
  private closed = false;

  private constructor(
    clients: NbdClient[],
    /** Connections asked for. */
    readonly requested: number,
    /** Why fewer than `requested` were opened; undefined when all were. */
    readonly limitedBy: string | undefined,
  ) {
    super();
    this.primary = clients[0];
    this.lanes = clients.map((client, index) => ({ index, client, outstanding: 0 }));
    for (const lane of this.lanes) this.watch(lane);
  }

  /**
   * Connect to `target` and negotiate; then, if the export advertises
   * CAN_MULTI_CONN, open `connections - 1` more. Rejects as
   * NbdClient.connect does (only the first connection can make it fail).
   */
  static async connect(target: string | NbdAddress, opts: NbdMultiClientOptions = {}): Promise<NbdMultiClient> {
    const want = opts.connections ?? 1;
    if (!Number.isInteger(want) || want < 1 || want > NBD_MAX_CONNECTIONS) {
      throw new NbdClientError('ERR_NBD_INVALID_ARGUMENT', `connections must be an integer 1..${NBD_MAX_CONNECTIONS}, not ${want}`);
    }
    const first = await NbdClient.connect(target, opts);
    const where = formatNbdUrl(first.address);
    const log = opts.logger;
    if (want === 1) return new NbdMultiClient([first], 1, undefined);
    if (!first.canMultiConn) {
      const why = 'the export does not advertise NBD_FLAG_CAN_MULTI_CONN';
      log?.info('nbd: one connection', { url: where, requested: want, reason: why });
      return new NbdMultiClient([first], want, why);
    }
    const results = await Promise.allSettled(Array.from({ length: want - 1 }, () => NbdClient.connect(first.address, opts)));
    const extras: NbdClient[] = [];
    const failures: string[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') extras.push(r.value);
      else failures.push(r.reason instanceof Error ? r.reason.message : String(r.reason));
    }
    let why: string | undefined;
    for (const c of extras) {
      const d = disagreement(first, c);
      if (d !== undefined) {
        why = `an extra connection disagrees with the first (${d})`;
        break;
      }
    }
    if (why !== undefined) {
      for (const c of extras) c.destroy();
      log?.warn('nbd: extra connections closed, going on with one', { url: where, requested: want, reason: why });
      return new NbdMultiClient([first], want, why);
    }
    if (failures.length > 0) {
      why = `${failures.length} of ${want - 1} extra connections failed: ${failures[0]}`;
      log?.warn('nbd: fewer connections than asked', { url: where, requested: want, opened: extras.length + 1, reason: why });
    } else {
      log?.info('nbd: multi-conn', { url: where, connections: want });
    }
    return new NbdMultiClient([first, ...extras], want, why);
  }

  // --- What was negotiated (the first connection's; all lanes agreed) --------------

  get address(): NbdAddress {
    return this.primary.address;
  }
  get export(): NbdExportInfo {
    return this.primary.export;
  }
  get size(): number {
    return this.primary.size;
  }
  get transmissionFlags(): number {
    return this.primary.transmissionFlags;
  }
  get structuredReplies(): boolean {
    return this.primary.structuredReplies;
  }
  get negotiatedVia(): 'go' | 'export-name' {
    return this.primary.negotiatedVia;
  }
  get metaContexts(): ReadonlyMap<string, number> {
    return this.primary.metaContexts;
  }
  get readOnly(): boolean {
    return this.primary.readOnly;
  }
  get canFlush(): boolean {
    return this.primary.canFlush;
  }
  get canFua(): boolean {
    return this.primary.canFua;
  }
  get canTrim(): boolean {
    return this.primary.canTrim;
  }
  get canWriteZeroes(): boolean {
    return this.primary.canWriteZeroes;
  }
  get canFastZero(): boolean {
    return this.primary.canFastZero;
  }
  get canCache(): boolean {
    return this.primary.canCache;
  }
  get canMultiConn(): boolean {
    return this.primary.canMultiConn;
  }
  get canBlockStatus(): boolean {
    return this.primary.canBlockStatus;
  }

  /** Connections in use (lanes not closed). */
  get connections(): number {
    return this.lanes.length;
  }

  /** Requests waiting for a reply on any lane. */
  get inFlight(): number {
    return this.lanes.reduce((n, l) => n + l.client.inFlight, 0);
  }

  /** 'connected' when any lane is; else 'reconnecting', 'failed', or 'closed' once every lane is gone. */
  get state(): NbdClientState {
    if (this.closed || this.lanes.length === 0) return 'closed';
    const states = this.lanes.map((l) => l.client.state);
    if (states.includes('connected')) return 'connected';
    if (states.includes('reconnecting')) return 'reconnecting';
    return 'failed';
  }

  // --- Commands ---------------------------------------------------------------------

  /** NBD_CMD_READ into a new buffer. */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, offset);
    return buf;
  }

  /** NBD_CMD_READ into `buf`, one piece (at most the maximum block size) per lane choice. */
  readInto(buf: Buffer, offset: number): Promise<void> {
    const solo = this.solo();
    if (solo) return solo.readInto(buf, offset);
    return this.call(async () => {
      this.checkRange(offset, buf.length);
      const max = this.export.blockSize.maximum;
      const parts: Promise<void>[] = [];
      for (let pos = 0; pos < buf.length; pos += max) {
        const len = Math.min(max, buf.length - pos);
        const piece = buf.subarray(pos, pos + len);
        parts.push(this.idempotent(len, (c) => c.readInto(piece, offset + pos)));
      }
      await Promise.all(parts);
    });
  }

  /** NBD_CMD_WRITE, pieces spread over the lanes; `fua` needs SEND_FUA. */
  write(buf: Buffer, offset: number, opts: { fua?: boolean } = {}): Promise<void> {
    const solo = this.solo();
    if (solo) return solo.write(buf, offset, opts);
    return this.call(async () => {
      this.checkRange(offset, buf.length);
      const max = this.export.blockSize.maximum;
      const parts: Promise<void>[] = [];
      for (let pos = 0; pos < buf.length; pos += max) {
        const len = Math.min(max, buf.length - pos);
        const piece = buf.subarray(pos, pos + len);
        parts.push(this.modifying(len, (c) => c.write(piece, offset + pos, opts)));
      }
      await Promise.all(parts);
    });
  }

  /**
   * NBD_CMD_FLUSH on one lane, after every write in flight on any lane when
   * flush() was called has completed (proto.md multi-conn: a flush covers the
   * writes completed on all connections before it was sent).
   */
  flush(): Promise<void> {
    const solo = this.solo();
    if (solo) return solo.flush();
    return this.call(async () => {
      if (!this.canFlush) return this.primary.flush(); // rejects with ERR_NBD_UNSUPPORTED
      await Promise.all([...this.writes]);
      await this.idempotent(0, (c) => c.flush());
    });
  }

  /** NBD_CMD_TRIM on one lane. */
  trim(offset: number, length: number, opts: { fua?: boolean } = {}): Promise<void> {
    const solo = this.solo();
    if (solo) return solo.trim(offset, length, opts);
    return this.call(() => this.modifying(0, (c) => c.trim(offset, length, opts)));
  }

  /** NBD_CMD_WRITE_ZEROES on one lane. */
  writeZeroes(offset: number, length: number, opts: { fua?: boolean; noHole?: boolean; fastZero?: boolean } = {}): Promise<void> {
    const solo = this.solo();
    if (solo) return solo.writeZeroes(offset, length, opts);
    return this.call(() => this.modifying(0, (c) => c.writeZeroes(offset, length, opts)));
  }

  /** NBD_CMD_CACHE on one lane. */
  cache(offset: number, length: number): Promise<void> {
    const solo = this.solo();
    if (solo) return solo.cache(offset, length);
    return this.call(() => this.idempotent(0, (c) => c.cache(offset, length)));
  }

  /** NBD_CMD_BLOCK_STATUS (base:allocation) on one lane. */
  blockStatus(offset: number, length: number, opts: { reqOne?: boolean } = {}): Promise<NbdBlockStatusExtent[]> {
    const solo = this.solo();
    if (solo) return solo.blockStatus(offset, length, opts);
    return this.call(() => this.idempotent(0, (c) => c.blockStatus(offset, length, opts)));
  }

  /** Wait for every call in progress, then disconnect every lane cleanly (NBD_CMD_DISC). */
  async disconnect(): Promise<void> {
    while (this.calls.size > 0) await Promise.allSettled([...this.calls]);
    const lanes = this.lanes;
    await Promise.all(lanes.map((l) => l.client.disconnect()));
    this.finish();
  }

  /** Close every lane at once: requests in flight fail with ERR_NBD_DISCONNECTED. */
  destroy(): void {
    for (const l of this.lanes) l.client.destroy();
    this.finish();
  }

  // --- Internals ----------------------------------------------------------------------

  /** The one lane when there is only one: calls go straight to it. Lanes are never added, so this is for good. */
  private solo(): NbdClient | undefined {
    return this.lanes.length === 1 ? this.lanes[0].client : undefined;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.lanes = [];
    this.emit('close');
  }

  private watch(lane: Lane): void {
    const c = lane.client;
    c.on('disconnect', (err) => this.emit('disconnect', err, lane.index));
    c.on('reconnecting', (attempt, delay) => this.emit('reconnecting', attempt, delay, lane.index));
    c.on('reconnected', () => this.emit('reconnected', lane.index));
    c.on('close', () => {
      // A lane closes for good only when lost without reconnect (or on our own disconnect/destroy).
      this.lanes = this.lanes.filter((l) => l !== lane);
      if (this.lanes.length === 0) this.finish();
    });
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      return Promise.reject(e as Error);
    }
    this.calls.add(p);
    const forget = (): void => {
      this.calls.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new NbdClientError('ERR_NBD_INVALID_ARGUMENT', `range [${offset}, +${length}) is outside the export (${this.size} bytes)`);
    }
  }

  /**
   * The first connected lane with less than FILL_BYTES outstanding, else the
   * one with the fewest outstanding bytes (ties rotate); reconnecting or
   * failed lanes only when no lane is connected.
   */
  private pick(): Lane {
    if (this.closed || this.lanes.length === 0) throw new NbdClientError('ERR_NBD_DISCONNECTED', 'the client is closed');
    let pool = this.lanes.filter((l) => l.client.state === 'connected');
    if (pool.length === 0) pool = this.lanes.filter((l) => l.client.state === 'reconnecting');
    // All failed: the request goes to one of them and starts a new reconnect round there.
    if (pool.length === 0) pool = this.lanes;
    for (const l of pool) if (l.outstanding < FILL_BYTES) return l;
    const start = this.rotate++ % pool.length;
    let best = pool[start];
    for (let i = 1; i < pool.length; i++) {
      const l = pool[(start + i) % pool.length];
      if (l.outstanding < best.outstanding) best = l;
    }
    return best;
  }

  /** Send on a lane, counting its cost while it is outstanding. */
  private async sendOn<T>(lane: Lane, bytes: number, send: (c: NbdClient) => Promise<T>): Promise<T> {
    const cost = bytes + REQUEST_COST;
    lane.outstanding += cost;
    try {
      return await send(lane.client);
    } finally {
      lane.outstanding -= cost;
    }
  }

  /** A request that changes nothing: sent again on another lane if its lane was lost for good. */
  private async idempotent<T>(bytes: number, send: (c: NbdClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const lane = this.pick();
      try {
        return await this.sendOn(lane, bytes, send);
      } catch (e) {
        const lost = isNbdClientError(e, 'ERR_NBD_DISCONNECTED') && lane.client.state === 'closed';
        if (!lost || this.closed || this.lanes.length === 0 || attempt >= NBD_MAX_CONNECTIONS) throw e;
      }
    }
  }

  /** A write, write-zeroes or trim: tracked until settled so that flush() can wait for it. Never re-sent on another lane. */
  private modifying(bytes: number, send: (c: NbdClient) => Promise<void>): Promise<void> {
    const p = this.sendOn(this.pick(), bytes, send);
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.writes.add(settled);
    void settled.then(() => this.writes.delete(settled));
    return p;
  }
}
