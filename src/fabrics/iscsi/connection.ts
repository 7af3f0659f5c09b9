// One TCP connection of the iSCSI target (RFC 7143 §4.4, §6, §7).
//
// Life: login phase (login.ts) -> full feature phase -> logout or drop.
// Incoming bytes go through the PDU framer; each PDU is decoded and routed.
// A handler's failure ends at most this connection (never the process).
// Outgoing PDUs are written as iovecs (header [+digest], data, padding
// [+digest]) under socket.cork() so header and data leave together; several
// PDUs of one tick share one uncork. Headers are carved from a slab
// (header-slab.ts), data buffers come from the connection's pool.
//
// Backpressure (issue 17): reading stops while the socket holds more queued
// output than limits.sendHighWaterBytes (resumes on 'drain'), and while the
// session holds more early write data (immediate or unsolicited data of
// commands without a buffer yet) than its budget (write-budget.ts; resumes
// when bytes are released). A peer that sends requests and never reads the
// answers thus stalls itself, not the daemon. A session stalled on its own
// early data with nothing to release it (it waits behind a CmdSN gap that
// only more reading could fill) is dropped after BUDGET_STALL_MS.

import type { Socket } from 'node:net';
import { PduFramer, type RawPdu } from '../../protocols/iscsi/framer.js';
import { encodeFrame } from '../../protocols/iscsi/writer.js';
import { decodePdu, encodeBhs, encodedAhsLength, type EncodablePdu } from '../../protocols/iscsi/pdu.js';
import { BHS_LENGTH, RejectReason, RESERVED_TAG, DEFAULT_RECV_DATA_SEGMENT_LENGTH, rejectReasonName } from '../../protocols/iscsi/constants.js';
import { Opcode, type Pdu } from '../../protocols/iscsi/pdu-types.js';
import { isLunkitError } from '../../protocols/errors.js';
import type { IscsiSession } from './session.js';
import { DEFAULT_SESSION_PARAMS, type SessionParams } from './session-params.js';
import type { AcceptingServer } from './accepting-server.js';
import type { CmdSnFields, ConnectionPort } from './hosts.js';
import { LoginPhase, type LoginConnection } from './login.js';
import { FullFeature } from './full-feature.js';
import { sendReject } from './reject.js';
import { DiscoveryIdleWatch, NopPinger, type Liveness } from './nop.js';
import { StatusRetention } from './retention.js';
import { BufferPool } from '../../util/buffer-pool.js';
import { HeaderSlab } from './header-slab.js';
import type { StatsConnection } from './stats.js';
import type { SessionWriteBudget } from './write-budget.js';

/** Why reading is stopped: output backlog, or write data budget. */
export type ReadPause = 'send' | 'budget';

/** How long a connection may stay stopped for write budget before it is dropped. */
export const BUDGET_STALL_MS = 60_000;

export type ConnectionStage = 'login' | 'full-feature' | 'logout' | 'closed';

let nextConnId = 1;

export class IscsiConnection implements ConnectionPort, LoginConnection, StatsConnection {
  readonly id = nextConnId++;
  readonly remote: string;
  readonly local: string;
  readonly localAddress: string;
  readonly localPort: number;
  stage: ConnectionStage = 'login';
  cid = 0;
  /** PDUs received / sent (stats.ts; bytes come from the socket itself). */
  pdusIn = 0;
  pdusOut = 0;
  /** Next StatSN to assign (RFC 7143 §4.2.2.2: per connection). */
  private statSN = 0;
  session: IscsiSession | undefined;
  /** Parameters in force on this connection (connection- and session-scope). */
  params: SessionParams = DEFAULT_SESSION_PARAMS;
  headerDigest = false;
  dataDigest = false;
  /** What the initiator accepts per PDU (its MaxRecvDataSegmentLength). */
  peerMaxRecvDataSegmentLength = DEFAULT_RECV_DATA_SEGMENT_LENGTH;
  private readonly framer: PduFramer;
  private readonly login: LoginPhase;
  private fullFeaturePhase: FullFeature | undefined;
  private corked = false;
  private loginTimer: NodeJS.Timeout | undefined;
  private pinger: Liveness | undefined;
  private readonly closeHooks: Array<() => void> = [];
  /** ERL >= 1 only: status PDUs kept until acknowledged (retention.ts). */
  retention: StatusRetention | undefined;
  /** Data-In and Data-Out buffers of this connection's commands (src/util/buffer-pool.ts). */
  readonly buffers = new BufferPool();
  /** Where outgoing PDU headers are carved from (no allocation per PDU). */
  private readonly headers = new HeaderSlab();
  /** Reasons reading is stopped now (empty: reading). */
  private readonly paused = new Set<ReadPause>();
  /** Times reading was stopped, by reason (stats). */
  readonly readPauses: Record<ReadPause, number> = { send: 0, budget: 0 };
  /** The session's write budget (normal sessions in full feature phase). */
  private writeBudget: SessionWriteBudget | undefined;
  /** Registered with the server budget while paused for it. */
  private readonly budgetRelease = (): void => this.checkBudget();
  /** Drops the connection if it stays stopped for budget too long. */
  private budgetStall: NodeJS.Timeout | undefined;
  /** Destroys a connection whose peer does not close after end(); cleared at close so it does not keep the connection reachable. */
  private endTimer: NodeJS.Timeout | undefined;
  /** Last window() handed out for a PDU. */
  private announced: CmdSnFields | undefined;
  /** Dropped for going over retainedBytesPerConnection (acts once). */
  private retentionOver = false;

  constructor(
    readonly socket: Socket,
    readonly server: AcceptingServer,
    /** Key of the listener that accepted this connection (which portal). */
    readonly portalKey: string,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.localAddress = socket.localAddress ?? '';
    this.localPort = socket.localPort ?? 0;
    this.local = `${this.localAddress}:${this.localPort}`;
    socket.setNoDelay(true);
    this.framer = new PduFramer({
      // During login both sides accept 8192 (RFC 7143 §13.12).
      maxDataSegmentLength: DEFAULT_RECV_DATA_SEGMENT_LENGTH,
      headerDigest: false,
      dataDigest: false,
      onPdu: (frame) => this.onFrame(frame),
      onError: (err, bhs) => this.onFramerError(err, bhs),
      // A data segment split across socket chunks is assembled where it is
      // going (a Data-Out straight in its command's buffer), not in a new buffer.
      dataTarget: (bhs, length) => (this.stage === 'full-feature' ? this.fullFeaturePhase?.segmentTarget(bhs, length) : undefined),
    });
    this.login = new LoginPhase(this, server);
    socket.on('data', (chunk: Buffer) => {
      if (this.stage === 'closed') return;
      try {
        this.framer.push(chunk);
      } catch (err) {
        this.fail('framer threw', err);
        return;
      }
      if (this.writeBudget?.over === true) this.checkBudget();
    });
    socket.on('drain', () => this.resume('send'));
    socket.on('error', (err) => this.server.log.debug?.('iSCSI socket error', { conn: this.id, remote: this.remote, err: err.message }));
    socket.on('close', () => this.onSocketClosed());
    const loginTimeout = server.loginTimeoutFor(portalKey);
    if (loginTimeout > 0) {
      this.loginTimer = setTimeout(() => {
        if (this.stage === 'login') this.destroy('login timeout');
      }, loginTimeout * 1000);
      this.loginTimer.unref();
    }
  }

  // -------------------------------------------------------------------------
  // Receive

  private onFrame(frame: RawPdu): void {
    if (this.stage === 'closed') return;
    this.pdusIn++;
    let pdu: Pdu;
    try {
      pdu = decodePdu(frame.bhs, frame.ahs, frame.data);
    } catch (err) {
      if (this.stage !== 'full-feature') {
        // Garbage before login: nothing to answer, the stream is not iSCSI.
        this.destroy('undecodable PDU before full feature phase');
        return;
      }
      if (isLunkitError(err, 'ERR_PDU_BAD_OPCODE')) {
        this.reject(frame.bhs, RejectReason.COMMAND_NOT_SUPPORTED);
        return;
      }
      // Lengths or AHS disagree with the header: reject and carry on; the
      // framer consumed exactly the declared bytes so the stream is in sync.
      this.reject(frame.bhs, RejectReason.PROTOCOL_ERROR);
      return;
    }
    try {
      if (this.stage === 'login') {
        if (pdu.opcode !== Opcode.LOGIN_REQUEST) {
          // RFC 7143 §6.1: only Login Requests before full feature phase.
          this.destroy(`${pdu.opcode} PDU during login`);
          return;
        }
        if (!frame.dataDigestOk) {
          this.server.stats.digestError(this, 'data');
          this.destroy('data digest error during login');
          return;
        }
        this.login.handle(pdu);
        return;
      }
      const fullFeature = this.fullFeaturePhase;
      if (this.stage !== 'full-feature' || !fullFeature) return;
      if (!frame.dataDigestOk) {
        // RFC 7143 §7.8: the data is discarded and the PDU rejected; a SCSI
        // Command or Data-Out also ends its task (ERL 0: no recovery R2T).
        this.server.stats.digestError(this, 'data');
        this.reject(frame.bhs, RejectReason.DATA_DIGEST_ERROR);
        fullFeature.dataDigestError(pdu);
        return;
      }
      this.pinger?.activity(pdu.opcode);
      fullFeature.handle(pdu, frame.bhs);
    } catch (err) {
      this.fail('PDU handler threw', err);
    }
  }

  private onFramerError(err: Error, bhs: Buffer | undefined): void {
    if (this.stage === 'closed') return;
    if (isLunkitError(err, 'ERR_PDU_HEADER_DIGEST')) this.server.stats.digestError(this, 'header');
    if (isLunkitError(err, 'ERR_PDU_TOO_LARGE') && this.stage === 'full-feature') {
      // RFC 7143 §7.10: a data segment over MaxRecvDataSegmentLength is a
      // protocol error; we cannot resynchronise, so reject, flush and close.
      this.reject(bhs ?? Buffer.alloc(BHS_LENGTH), RejectReason.PROTOCOL_ERROR);
      this.end(`framing error: ${err.message}`);
      return;
    }
    this.destroy(`framing error: ${err.message}`);
  }

  // -------------------------------------------------------------------------
  // Stages

  /** Called by login.ts when the final Login Response has been queued. */
  enterFullFeature(session: IscsiSession, p: SessionParams): void {
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = undefined;
    this.session = session;
    this.stage = 'full-feature';
    this.params = p;
    this.headerDigest = p.headerDigest;
    this.dataDigest = p.dataDigest;
    this.peerMaxRecvDataSegmentLength = p.peerMaxRecvDataSegmentLength;
    // The next PDU already uses the negotiated digests and length (RFC 7143
    // §13.1): the framer is switched synchronously, before it parses on.
    this.framer.setDigests(p.headerDigest, p.dataDigest);
    this.framer.setMaxDataSegmentLength(p.maxRecvDataSegmentLength);
    const fullFeature = new FullFeature(this, session, this.server);
    this.fullFeaturePhase = fullFeature;
    this.writeBudget = fullFeature.writeBudget;
    if (p.errorRecoveryLevel >= 1 && session.type === 'normal') {
      this.retention = new StatusRetention(
        (itt, statSN) => fullFeature.statusAcked(itt, statSN),
        () => this.server.limits().retainedBytesPerConnection,
        (bytes) => this.overRetention(bytes),
      );
    }
    if (session.type === 'discovery') {
      // Never pinged (nop.ts): dropped when idle instead.
      const idle = this.server.limits().discoveryIdleTimeout;
      if (idle > 0) this.pinger = new DiscoveryIdleWatch(this, idle);
    } else {
      const nop = this.server.nopTimingFor(session);
      if (nop.interval > 0) this.pinger = new NopPinger(this, nop.interval, nop.timeout);
    }
  }

  /** A NOP-Out answered our ping with this TTT. */
  nopAnswered(ttt: number): void {
    this.pinger?.answered(ttt);
  }

  get fullFeature(): FullFeature | undefined {
    return this.fullFeaturePhase;
  }

  /** The socket is gone (ConnectionPort). */
  get closed(): boolean {
    return this.stage === 'closed';
  }

  // -------------------------------------------------------------------------
  // Backpressure

  /** Queued output is over the high-water mark. */
  get sendBacklogged(): boolean {
    return this.socket.writableLength > this.server.limits().sendHighWaterBytes;
  }

  /** Reading is stopped now (stats). */
  get readPaused(): boolean {
    return this.paused.size > 0;
  }

  /** Retained bytes at ERL >= 1 (stats). */
  get retainedBytes(): number {
    return this.retention?.retainedBytes ?? 0;
  }

  private pause(why: ReadPause): void {
    if (this.paused.has(why) || this.stage === 'closed') return;
    if (this.paused.size === 0) this.socket.pause();
    this.paused.add(why);
    this.readPauses[why]++;
    this.server.stats.readPaused(why);
  }

  private resume(why: ReadPause): void {
    if (!this.paused.delete(why)) return;
    if (this.paused.size === 0 && this.stage !== 'closed') this.socket.resume();
  }

  /** Over the write budget: stop reading until bytes are released somewhere, then look again. */
  private checkBudget(): void {
    const budget = this.writeBudget;
    if (budget === undefined || this.stage === 'closed') return;
    if (budget.over) {
      this.pause('budget');
      budget.server.onRelease(this.budgetRelease);
      if (this.budgetStall === undefined) {
        this.budgetStall = setTimeout(() => {
          this.server.log.warn?.('iSCSI connection dropped: stopped reading for write budget too long', { conn: this.id, remote: this.remote, ms: BUDGET_STALL_MS });
          this.destroy('write budget stalled');
        }, BUDGET_STALL_MS);
        this.budgetStall.unref();
      }
    } else {
      this.resume('budget');
      clearTimeout(this.budgetStall);
      this.budgetStall = undefined;
    }
  }

  /** ERL >= 1: the initiator leaves too much unacknowledged; drop this connection (not the session's others). */
  private overRetention(bytes: number): void {
    if (this.retentionOver) return;
    this.retentionOver = true;
    this.server.stats.retentionDrop();
    this.server.log.warn?.('iSCSI connection dropped: unacknowledged status over retainedBytesPerConnection', {
      conn: this.id,
      remote: this.remote,
      bytes,
      limit: this.server.limits().retainedBytesPerConnection,
    });
    // Not from inside the send that went over: the task sending is mid-way.
    setImmediate(() => this.destroy('retained bytes over limit'));
  }

  // -------------------------------------------------------------------------
  // StatSN

  /** Current StatSN without advancing (R2T, unsolicited NOP-In). */
  get currentStatSN(): number {
    return this.statSN;
  }

  /** Take a StatSN for a status-carrying PDU. */
  takeStatSN(): number {
    const s = this.statSN;
    this.statSN = (this.statSN + 1) >>> 0;
    return s;
  }

  setInitialStatSN(n: number): void {
    this.statSN = n >>> 0;
  }

  // -------------------------------------------------------------------------
  // Send

  /**
   * Encode and write one PDU. Data is written as its own iovec, never copied.
   * `onWritten` runs once the socket has taken the PDU's last byte (the
   * write callback), or at once when nothing is written.
   */
  send<P extends Pdu>(pdu: EncodablePdu<P>, onWritten?: () => void): void {
    if (this.stage === 'closed' || this.socket.destroyed) {
      onWritten?.();
      return;
    }
    const data = (pdu as { data?: Buffer }).data;
    this.pdusOut++;
    const bhs = encodeBhs(pdu, this.headers.take(BHS_LENGTH + encodedAhsLength(pdu as EncodablePdu)));
    const iov = encodeFrame(bhs, data !== undefined && data.length > 0 ? data : undefined, {
      headerDigest: this.headerDigest,
      dataDigest: this.dataDigest,
    });
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        if (!this.socket.destroyed) this.socket.uncork();
      });
    }
    const last = iov.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(iov[i]);
    if (onWritten === undefined) this.socket.write(iov[last]);
    else this.socket.write(iov[last], onWritten);
    if (this.retention !== undefined) this.retention.sent(pdu);
    // 'drain' resumes (the stream emits it once a write has returned false and the queue is empty).
    if (this.socket.writableLength > this.server.limits().sendHighWaterBytes) this.pause('send');
  }

  /** Send a Reject carrying the offending header (RFC 7143 §11.17). */
  reject(bhs: Buffer, reason: number): void {
    this.server.log.debug?.('iSCSI reject', { conn: this.id, reason: rejectReasonName(reason) });
    this.server.stats.reject(this, reason);
    sendReject(this, bhs, reason);
  }

  /** Current ExpCmdSN/MaxCmdSN to put in a response. */
  window(): CmdSnFields {
    const s = this.session;
    if (!s) return this.login.window();
    const f = { expCmdSN: s.window.expCmdSN, maxCmdSN: s.window.refresh() };
    this.announced = f;
    return f;
  }

  /** The ExpCmdSN/MaxCmdSN last put in a PDU of this connection (what the initiator knows). */
  get announcedWindow(): CmdSnFields | undefined {
    return this.announced;
  }

  // -------------------------------------------------------------------------
  // End

  onClose(fn: () => void): void {
    if (this.stage === 'closed') fn();
    else this.closeHooks.push(fn);
  }

  /** Flush what was queued, then close (after a Logout Response or a failed login). */
  end(reason: string): void {
    if (this.stage === 'closed') return;
    this.server.log.debug?.('iSCSI connection ending', { conn: this.id, remote: this.remote, reason });
    this.stage = 'logout';
    this.pinger?.stop();
    // Give the socket time to flush; if the peer never reads, destroy.
    this.socket.end();
    this.endTimer = setTimeout(() => this.destroy(reason), 2000);
    this.endTimer.unref();
  }

  /** Drop the connection now. */
  destroy(reason: string): void {
    if (this.stage === 'closed') return;
    this.server.log.debug?.('iSCSI connection dropped', { conn: this.id, remote: this.remote, reason });
    this.socket.destroy();
    this.onSocketClosed();
  }

  private fail(what: string, err: unknown): void {
    this.server.log.warn?.(`iSCSI connection error: ${what}`, {
      conn: this.id,
      remote: this.remote,
      err: err instanceof Error ? err.message : String(err),
    });
    this.destroy(what);
  }

  private onSocketClosed(): void {
    if (this.stage === 'closed') return;
    // Gone in full feature phase without a Logout: a connection failure
    // (§6.2.2); at ERL 2 the session keeps its tasks for recovery.
    const failed = this.stage === 'full-feature';
    this.stage = 'closed';
    if (this.loginTimer) clearTimeout(this.loginTimer);
    clearTimeout(this.endTimer);
    this.pinger?.stop();
    this.server.stats.connectionClosed(this);
    const s = this.session;
    const fullFeature = this.fullFeaturePhase;
    if (fullFeature) {
      if (failed && s && s.connectionFailed(this.cid, fullFeature)) fullFeature.detach();
      else fullFeature.connectionClosed();
    }
    this.retention?.clear();
    this.writeBudget?.server.cancelOnRelease(this.budgetRelease);
    clearTimeout(this.budgetStall);
    this.paused.clear();
    this.buffers.close();
    for (const fn of this.closeHooks.splice(0)) {
      try {
        fn();
      } catch {
        // keep closing
      }
    }
    // ERL 0/1 (RFC 7143 §7.12.1): losing the last connection ends the
    // session; at ERL 2 it waits for recovery first (recovery.ts).
    if (s) {
      s.connections.delete(this);
      s.endIfIdle('connection closed');
    }
  }
}

export { RESERVED_TAG };
