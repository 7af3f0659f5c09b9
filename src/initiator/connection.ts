// One TCP connection of an initiator session: socket, PDU framing (the
// shared framer and writer, with CRC32C digests), per-connection StatSN, and
// the fault-injection seam. It knows nothing about tasks: the login code reads
// PDUs with nextPdu(), the session installs onPdu for the full feature phase.
//
// StatSN is per connection (RFC 7143 §4.2.2.2) and lives here; CmdSN is per
// session and lives in the session. An MC/S session owns several of these,
// each with its own CID; the session sets `state` and counts `inFlight`.

import { connect as netConnect, type Socket } from 'node:net';

import { LunkitError } from '../protocols/errors.js';
import { DEFAULT_RECV_DATA_SEGMENT_LENGTH } from '../protocols/iscsi/constants.js';
import { PduFramer, type RawPdu } from '../protocols/iscsi/framer.js';
import { decodePdu } from '../protocols/iscsi/pdu.js';
import { encodeBhs, type EncodablePdu } from '../protocols/iscsi/pdu-encode.js';
import type { Pdu } from '../protocols/iscsi/pdu-types.js';
import { seqGte, seqAdd } from '../protocols/iscsi/seq.js';
import { encodeFrame } from '../protocols/iscsi/writer.js';
import type { ConnectionState } from './connection-pool.js';
import { IscsiInitiatorError } from './errors.js';
import type { FaultHooks, OutgoingPdu } from './fault.js';
import { SeqTracker, type SnAccept } from './snack.js';
import { formatPortal } from './url.js';

export interface ConnectOptions {
  host: string;
  port: number;
  /** Connection ID (RFC 7143 §11.12.7). */
  cid?: number;
  /** TCP connect deadline (default 10 s). */
  connectTimeoutMs?: number;
  faults?: FaultHooks;
}

export class IscsiConnection {
  readonly cid: number;
  readonly host: string;
  readonly port: number;
  /** Fault injection (tests only). */
  faults: FaultHooks | undefined;
  /** Where the session stands with this connection (connection-pool.ts). */
  state: ConnectionState = 'active';
  /** SCSI tasks allegiant to this connection and not finished (kept by the session). */
  inFlight = 0;
  /** commandLoad() summed over those tasks (the picker balances on it). */
  load = 0;
  /**
   * ERL >= 1: StatSN gaps are kept open (ExpStatSN stays at the first
   * missing one until a Status SNACK fills it, §6.1.4.2); at ERL 0 ExpStatSN
   * simply follows the highest StatSN seen.
   */
  strictStatSN = false;
  /** ERL >= 1: a PDU whose data digest failed (header intact); unset, the connection drops. */
  onDataDigestError: ((pdu: Pdu) => void) | undefined;
  /** Largest data segment the target accepts from us (its MaxRecvDataSegmentLength). */
  maxSendDataSegmentLength = DEFAULT_RECV_DATA_SEGMENT_LENGTH;
  /** Time (ms, Date.now()) a PDU was last received: keepalive measures silence from here. */
  lastReceive = Date.now();
  /** Full feature phase handler; during login PDUs are queued for nextPdu(). */
  onPdu: ((pdu: Pdu) => void) | undefined;
  /** Called once when the connection is gone, with the reason. */
  onClose: ((err: IscsiInitiatorError) => void) | undefined;

  private readonly socket: Socket;
  private readonly framer: PduFramer;
  private readonly statSNs = new SeqTracker(0);
  private headerDigest = false;
  private dataDigest = false;
  private closedWith: IscsiInitiatorError | undefined;
  private readonly queued: Pdu[] = [];
  private waiter: { resolve(p: Pdu): void; reject(e: Error): void; timer: NodeJS.Timeout } | undefined;
  /** PDUs of this tick are being collected under cork (send()); uncork() flushes them. */
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  private constructor(socket: Socket, opts: ConnectOptions) {
    this.socket = socket;
    this.host = opts.host;
    this.port = opts.port;
    this.cid = opts.cid ?? 0;
    this.faults = opts.faults;
    this.framer = new PduFramer({
      // Login PDUs are at most 8192 bytes unless both sides declared more
      // (§13.12); the session raises this after the login.
      maxDataSegmentLength: DEFAULT_RECV_DATA_SEGMENT_LENGTH,
      headerDigest: false,
      dataDigest: false,
      onPdu: (raw) => this.receiveRaw(raw),
      onError: (err) => this.destroy(new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `bad PDU from target: ${err.message}`, { cause: err })),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.framer.push(chunk));
    socket.on('error', (err) => this.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `connection to ${this.portal} failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `connection to ${this.portal} closed by the target`)));
  }

  /** Open a TCP connection to a portal. Throws ERR_ISCSI_CONNECT or ERR_ISCSI_TIMEOUT. */
  static connect(opts: ConnectOptions): Promise<IscsiConnection> {
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: opts.host, port: opts.port });
      const portal = formatPortal(opts.host, opts.port);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new IscsiInitiatorError('ERR_ISCSI_TIMEOUT', `connect to ${portal} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(new IscsiInitiatorError('ERR_ISCSI_CONNECT', `cannot connect to ${portal}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new IscsiConnection(socket, opts));
      });
    });
  }

  get portal(): string {
    return formatPortal(this.host, this.port);
  }

  /** Next StatSN we expect from the target on this connection (what ExpStatSN carries). */
  get expStatSN(): number {
    return this.statSNs.expected;
  }

  /** Set by the login (the Login Response's StatSN + 1). */
  set expStatSN(n: number) {
    this.statSNs.resetTo(n);
  }

  /** StatSN bookkeeping of this connection (ERL 1 asks it for the runs to SNACK). */
  get statSNTracker(): SeqTracker {
    return this.statSNs;
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  get headerDigestOn(): boolean {
    return this.headerDigest;
  }

  get dataDigestOn(): boolean {
    return this.dataDigest;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** The reason the connection closed, once it has. */
  get closeReason(): IscsiInitiatorError | undefined {
    return this.closedWith;
  }

  /** Switch digests on or off; applies to the next PDU each way (§13.1: after the last Login Response). */
  setDigests(header: boolean, data: boolean): void {
    this.headerDigest = header;
    this.dataDigest = data;
    this.framer.setDigests(header, data);
  }

  /** Our MaxRecvDataSegmentLength: the framer refuses larger data segments. */
  setMaxRecvDataSegmentLength(n: number): void {
    this.framer.setMaxDataSegmentLength(n);
  }

  /**
   * Encode and write one PDU (header and data written together, data not
   * copied). Returns false if the connection is closed (nothing sent).
   */
  send(pdu: EncodablePdu, data?: Buffer): boolean {
    if (this.closedWith !== undefined) return false;
    const out: OutgoingPdu = { pdu: data === undefined ? pdu : ({ ...pdu, data } as EncodablePdu), data };
    const faults = this.faults;
    if (faults?.send !== undefined) {
      const verdict = faults.send(out);
      if (verdict === 'drop') return true;
      if (verdict === 'disconnect') {
        this.socket.destroy();
        this.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', 'connection cut by fault injection'));
        return false;
      }
    }
    const header = encodeBhs(out.pdu);
    let frame = encodeFrame(header, out.data, { headerDigest: this.headerDigest, dataDigest: this.dataDigest });
    if (faults?.frame !== undefined) frame = faults.frame(frame, out) ?? frame;
    // Every PDU of this tick (the commands a batch of completions started,
    // a Data-Out sequence) leaves in one writev: one syscall per batch
    // instead of one per PDU, and the target reads them in one go.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    for (const b of frame) this.socket.write(b);
    return true;
  }

  /** Bytes waiting in the socket's write queue (for flow control decisions). */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  /** Resolves when the socket's write queue has drained below its high-water mark. */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Login phase: the next PDU from the target. Rejects on timeout or close. */
  nextPdu(timeoutMs: number): Promise<Pdu> {
    const q = this.queued.shift();
    if (q !== undefined) return Promise.resolve(q);
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new IscsiInitiatorError('ERR_ISCSI_TIMEOUT', `no answer from ${this.portal} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /**
   * Track the StatSN of a PDU that takes one (§4.2.2.2: ExpStatSN = last
   * StatSN + 1). At ERL >= 1 a jump leaves the skipped numbers missing and
   * is reported as `gap` (the session sends a Status SNACK).
   */
  noteStatSN(statSN: number): SnAccept {
    if (!this.strictStatSN) {
      const next = seqAdd(statSN, 1);
      if (seqGte(next, this.statSNs.next)) this.statSNs.resetTo(next);
      return { fresh: true, gap: undefined };
    }
    return this.statSNs.accept(statSN);
  }

  private receiveRaw(raw: RawPdu): void {
    this.lastReceive = Date.now();
    const hook = this.faults?.receive;
    const frames = hook === undefined ? undefined : hook(raw);
    if (frames === undefined) {
      this.deliver(raw);
    } else {
      for (const f of frames) if (this.closedWith === undefined) this.deliver(f);
    }
  }

  private deliver(raw: RawPdu): void {
    if (!raw.dataDigestOk && this.onDataDigestError !== undefined) {
      // ERL >= 1 (§7.8): the header is sound, the data is not; the session
      // discards the PDU and asks for it again.
      let hdr: Pdu;
      try {
        hdr = decodePdu(raw.bhs, raw.ahs, raw.data);
      } catch (err) {
        this.destroy(new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `undecodable PDU from target: ${(err as Error).message}`, { cause: err }));
        return;
      }
      this.onDataDigestError(hdr);
      return;
    }
    if (!raw.dataDigestOk) {
      // ERL 0 cannot ask for the data again (SNACK is ERL 1): the session fails.
      this.destroy(new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'data digest error in a PDU from the target', {
        cause: new LunkitError('ERR_PDU_DATA_DIGEST', 'data digest mismatch'),
      }));
      return;
    }
    let pdu: Pdu;
    try {
      pdu = decodePdu(raw.bhs, raw.ahs, raw.data);
    } catch (err) {
      this.destroy(new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `undecodable PDU from target: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (this.onPdu !== undefined) {
      this.onPdu(pdu);
      return;
    }
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.resolve(pdu);
    } else {
      this.queued.push(pdu);
    }
  }

  /** Close the connection now (idempotent); pending work learns `err`. */
  destroy(err?: IscsiInitiatorError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err ?? new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `connection to ${this.portal} closed`);
    this.framer.stop();
    this.socket.destroy();
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      clearTimeout(w.timer);
      w.reject(this.closedWith);
    }
    this.onClose?.(this.closedWith);
  }

  /**
   * Test seam: destroy the socket as a network failure would (no logout);
   * the close then runs through the session's recovery like a real one.
   */
  cutSocket(): void {
    this.socket.destroy();
  }

  /** Close gracefully after the write queue drains (after a Logout Response). */
  async end(): Promise<void> {
    if (this.closedWith !== undefined) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    const err = new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'connection logged out');
    this.closedWith = err;
    this.framer.stop();
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 2000);
    await closed;
    clearTimeout(t);
    this.onClose?.(err);
  }
}
