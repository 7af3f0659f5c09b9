// An initiator session (RFC 7143 §4): ISID + TSIH, the session-wide CmdSN
// window, the tasks in flight keyed by ITT, and its connection(s). This
// foundation runs one connection at ERL 0: when the connection dies, every
// outstanding request fails with ERR_ISCSI_DISCONNECTED and the session is
// closed. The window, the task table and the per-task connection allegiance
// are session-wide so MC/S and ERL 1-2 can be added without reshaping them.

import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';

import { AsyncEvent, LogoutReason, LogoutResponse, RESERVED_TAG, TmfFunction, TmfResponse } from '../protocols/iscsi/constants.js';
import type { NegotiatedParams } from '../protocols/iscsi/keys.js';
import { Opcode, type AsyncMessagePdu, type NopInPdu, type Pdu, type RejectPdu } from '../protocols/iscsi/pdu-types.js';
import { seqAdd, seqGt, seqLt, seqLte } from '../protocols/iscsi/seq.js';
import { encodeTextKeys, parseTextKeys, TextAccumulator } from '../protocols/iscsi/text.js';
import { IscsiConnection } from './connection.js';
import { IscsiInitiatorError } from './errors.js';
import type { FaultHooks } from './fault.js';
import { login, randomIsid, type LoginKeyOptions, type LoginResult } from './login.js';
import { ScsiTask, type ScsiRequest, type ScsiResult, type WriteLimits } from './task.js';
import type { ChapSecret } from './url.js';

export interface SessionOptions extends LoginKeyOptions {
  host: string;
  port: number;
  /** Target IQN; omit for a discovery session. */
  targetName?: string;
  sessionType?: 'Normal' | 'Discovery';
  initiatorName?: string;
  initiatorAlias?: string;
  chap?: ChapSecret;
  targetChap?: ChapSecret;
  connectTimeoutMs?: number;
  loginTimeoutMs?: number;
  /** Send a NOP-Out ping after this much silence from the target (0 = never; default 30 s). */
  keepaliveIntervalMs?: number;
  /** A ping unanswered for this long drops the connection (default 15 s). */
  keepaliveTimeoutMs?: number;
  /** Fault injection for tests (see fault.ts). */
  faults?: FaultHooks;
}

/** Our default IQN: iqn.2024-01.org.lunkit:initiator:<hostname>. */
export function defaultInitiatorName(): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-') || 'host';
  return `iqn.2024-01.org.lunkit:initiator:${host}`;
}

/** Async event as handed to listeners of 'async'. */
export interface AsyncEventInfo {
  event: number;
  vcode: number;
  lun: number;
  parameter1: number;
  parameter2: number;
  parameter3: number;
  /** SCSI event: the sense data of the Async Message (§11.9.4). */
  data: Buffer;
}

/** Something waiting for a response PDU by ITT. */
interface Pending {
  conn: IscsiConnection;
  onPdu(pdu: Pdu): void;
  fail(err: Error): void;
}

type Starter = (cmdSN: number) => void;

export interface SessionEvents {
  close: [err: IscsiInitiatorError];
  async: [info: AsyncEventInfo];
}

export class IscsiSession extends EventEmitter<SessionEvents> {
  readonly isid: number;
  readonly targetName: string | undefined;
  readonly sessionType: 'Normal' | 'Discovery';
  tsih = 0;
  params!: NegotiatedParams;
  targetAlias: string | undefined;
  targetPortalGroupTag: number | undefined;

  /** Next CmdSN to assign; ExpCmdSN and MaxCmdSN as the target last told us (§4.2.2.1). */
  private cmdSN = 1;
  private expCmdSN = 1;
  private maxCmdSN = 1;
  private readonly waiting: Starter[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly tasks = new Map<number, ScsiTask>();
  private nextItt = 1;
  private readonly connections: IscsiConnection[] = [];
  private closedWith: IscsiInitiatorError | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private pinging = false;
  private loggingOut = false;
  private limits!: WriteLimits;

  private constructor(private readonly opts: SessionOptions) {
    super();
    this.isid = randomIsid();
    this.targetName = opts.targetName;
    this.sessionType = opts.sessionType ?? (opts.targetName === undefined ? 'Discovery' : 'Normal');
  }

  /** Connect, log in and enter the full feature phase. */
  static async open(opts: SessionOptions): Promise<IscsiSession> {
    const s = new IscsiSession(opts);
    await s.addConnection();
    return s;
  }

  /** Log in one connection (the leading one now; further ones with the TSIH under MC/S). */
  private async addConnection(): Promise<void> {
    const o = this.opts;
    const conn = await IscsiConnection.connect({ host: o.host, port: o.port, cid: this.connections.length, connectTimeoutMs: o.connectTimeoutMs, faults: o.faults });
    let res: LoginResult;
    try {
      res = await login(conn, {
        ...o,
        initiatorName: o.initiatorName ?? defaultInitiatorName(),
        sessionType: this.sessionType,
        isid: this.isid,
        tsih: this.tsih,
        cmdSN: this.cmdSN,
        timeoutMs: o.loginTimeoutMs,
      });
    } catch (err) {
      conn.destroy();
      throw err;
    }
    this.tsih = res.tsih;
    this.params = res.params;
    this.targetAlias = res.targetAlias;
    this.targetPortalGroupTag = res.targetPortalGroupTag;
    this.limits = {
      immediateData: res.params.immediateData,
      initialR2T: res.params.initialR2T,
      firstBurstLength: res.params.firstBurstLength,
      maxBurstLength: res.params.maxBurstLength,
    };
    // §4.2.2.1: the first full-feature CmdSN is the one the login carried.
    this.expCmdSN = res.expCmdSN;
    this.maxCmdSN = res.maxCmdSN;
    conn.setDigests(res.params.headerDigest, res.params.dataDigest);
    conn.setMaxRecvDataSegmentLength(res.params.maxRecvDataSegmentLength);
    conn.maxSendDataSegmentLength = res.params.peerMaxRecvDataSegmentLength;
    conn.onPdu = (pdu) => this.dispatch(conn, pdu);
    conn.onClose = (err) => this.connectionClosed(conn, err);
    this.connections.push(conn);
    this.startKeepalive();
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Commands sent and not yet answered, plus those waiting for the window. */
  get inFlight(): number {
    return this.tasks.size;
  }

  /** CmdSN window state, for diagnostics and tests. */
  get window(): { cmdSN: number; expCmdSN: number; maxCmdSN: number; queued: number } {
    return { cmdSN: this.cmdSN, expCmdSN: this.expCmdSN, maxCmdSN: this.maxCmdSN, queued: this.waiting.length };
  }

  /** The connection new work goes to (one for now; MC/S picks among several). */
  private pickConnection(): IscsiConnection {
    const c = this.connections.find((x) => !x.closed);
    if (c === undefined) throw this.closeError();
    return c;
  }

  /** The test seam: the leading connection (fault hooks, socket cuts). */
  get connection(): IscsiConnection {
    return this.connections[0];
  }

  private closeError(): IscsiInitiatorError {
    return this.closedWith ?? new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'session is closed');
  }

  private allocItt(): number {
    for (;;) {
      const itt = this.nextItt;
      this.nextItt = this.nextItt >= 0xfffffffe ? 1 : this.nextItt + 1;
      if (itt !== RESERVED_TAG && !this.pending.has(itt)) return itt;
    }
  }

  // ---------------------------------------------------------------------------
  // CmdSN window (§4.2.2.1)

  /** Run `start` with a CmdSN once the window admits one more non-immediate command. */
  private withCmdSN(start: Starter): void {
    this.waiting.push(start);
    this.pump();
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.closedWith === undefined && seqLte(this.cmdSN, this.maxCmdSN)) {
      const start = this.waiting.shift() as Starter;
      const sn = this.cmdSN;
      this.cmdSN = seqAdd(this.cmdSN, 1);
      start(sn);
    }
  }

  /** Take ExpCmdSN/MaxCmdSN from any response (§4.2.2.1: ignore if MaxCmdSN < ExpCmdSN - 1). */
  private updateWindow(exp: number, max: number): void {
    if (seqLt(max, seqAdd(exp, -1 >>> 0))) return;
    if (seqGt(exp, this.expCmdSN)) this.expCmdSN = exp;
    if (seqGt(max, this.maxCmdSN)) this.maxCmdSN = max;
    if (this.waiting.length > 0) this.pump();
  }

  // ---------------------------------------------------------------------------
  // SCSI commands

  /**
   * Send a SCSI command and resolve with its status, sense and data. Queues
   * while the CmdSN window is closed. Rejects only for transport failures
   * (ERR_ISCSI_DISCONNECTED, ERR_ISCSI_REJECTED, ERR_ISCSI_ABORTED, ...).
   */
  execute(req: ScsiRequest): Promise<ScsiResult> {
    if (this.closedWith !== undefined || this.loggingOut) return Promise.reject(this.closeError());
    if (req.dataIn !== undefined && req.dataOut !== undefined && (typeof req.dataIn !== 'number' || req.dataIn > 0) && req.dataOut.length > 0) {
      return Promise.reject(new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'bidirectional commands are not supported'));
    }
    if (req.signal?.aborted) return Promise.reject(new IscsiInitiatorError('ERR_ISCSI_ABORTED', 'aborted before it was sent'));
    return new Promise<ScsiResult>((resolve, reject) => {
      const itt = this.allocItt();
      const cleanup = (): void => {
        this.tasks.delete(itt);
        this.pending.delete(itt);
        req.signal?.removeEventListener('abort', onAbort);
      };
      const task = new ScsiTask(
        itt,
        req,
        (r) => {
          cleanup();
          resolve(r);
        },
        (e) => {
          cleanup();
          reject(e);
        },
      );
      let conn: IscsiConnection;
      try {
        conn = this.pickConnection();
      } catch (err) {
        reject(err as Error);
        return;
      }
      const onAbort = (): void => this.abortTask(task);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.tasks.set(itt, task);
      this.pending.set(itt, { conn, onPdu: (pdu) => this.taskPdu(task, pdu), fail: (e) => task.fail(e) });
      this.withCmdSN((cmdSN) => {
        if (task.finished) {
          // Aborted while queued: nothing went out with this CmdSN, so the
          // next command takes it (a hole would stall the target's ExpCmdSN).
          this.cmdSN = cmdSN;
          return;
        }
        task.start(conn, cmdSN, this.limits);
      });
    });
  }

  private taskPdu(task: ScsiTask, pdu: Pdu): void {
    switch (pdu.opcode) {
      case Opcode.DATA_IN:
        if (task.onDataIn(pdu)) task.conn?.noteStatSN(pdu.statSN);
        break;
      case Opcode.SCSI_RESPONSE:
        task.onResponse(pdu);
        break;
      case Opcode.R2T:
        task.onR2T(pdu);
        break;
      default:
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `unexpected ${pdu.opcode.toString(16)} for a SCSI task`);
    }
  }

  private abortTask(task: ScsiTask): void {
    if (task.finished) return;
    if (!task.sent) {
      task.fail(new IscsiInitiatorError('ERR_ISCSI_ABORTED', 'aborted before it was sent'));
      return;
    }
    if (task.aborting) return;
    task.aborting = true;
    this.taskManagement(TmfFunction.ABORT_TASK, { lun: task.req.lun, referencedTaskTag: task.itt, refCmdSN: task.cmdSN }).then(
      (response) => {
        if (response === TmfResponse.FUNCTION_COMPLETE || response === TmfResponse.TASK_DOES_NOT_EXIST) {
          task.fail(new IscsiInitiatorError('ERR_ISCSI_ABORTED', `task 0x${task.itt.toString(16)} aborted`));
        }
      },
      () => undefined,
    );
  }

  // ---------------------------------------------------------------------------
  // Task management, text, ping, logout

  /**
   * Send a Task Management Function Request (§11.5) as an immediate command
   * and resolve with the TMF response code (TmfResponse). After LUN RESET
   * (and other set-wide functions) completes, the tasks it ended on that LUN
   * reject with ERR_ISCSI_ABORTED.
   */
  taskManagement(fn: number, o: { lun?: number; referencedTaskTag?: number; refCmdSN?: number } = {}, timeoutMs = 30_000): Promise<number> {
    return this.immediateRequest<number>(timeoutMs, (conn, itt, resolve) => {
      conn.send({
        opcode: Opcode.TASK_MGMT_REQUEST,
        immediate: true,
        final: true,
        function: fn,
        lun: o.lun ?? 0,
        itt,
        referencedTaskTag: o.referencedTaskTag ?? RESERVED_TAG,
        cmdSN: this.cmdSN,
        expStatSN: conn.expStatSN,
        refCmdSN: o.refCmdSN ?? 0,
        expDataSN: 0,
      });
      return (pdu) => {
        if (pdu.opcode !== Opcode.TASK_MGMT_RESPONSE) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a TMF response');
        conn.noteStatSN(pdu.statSN);
        if (pdu.response === TmfResponse.FUNCTION_COMPLETE && fn !== TmfFunction.ABORT_TASK) {
          const all = fn === TmfFunction.TARGET_WARM_RESET || fn === TmfFunction.TARGET_COLD_RESET;
          for (const t of [...this.tasks.values()]) {
            if (t.sent && (all || t.req.lun === (o.lun ?? 0))) t.fail(new IscsiInitiatorError('ERR_ISCSI_ABORTED', `task 0x${t.itt.toString(16)} ended by ${fn === TmfFunction.LOGICAL_UNIT_RESET ? 'LUN RESET' : `TMF ${fn}`}`));
          }
        }
        resolve(pdu.response);
      };
    });
  }

  /** ABORT TASK is reached through ScsiRequest.signal; LUN RESET here. Throws ERR_ISCSI_TMF_FAILED unless complete. */
  async lunReset(lun: number): Promise<void> {
    const r = await this.taskManagement(TmfFunction.LOGICAL_UNIT_RESET, { lun });
    if (r !== TmfResponse.FUNCTION_COMPLETE) throw new IscsiInitiatorError('ERR_ISCSI_TMF_FAILED', `LUN RESET of LUN ${lun} answered ${r}`, { response: r });
  }

  /**
   * A Text Request exchange (§11.10, §11.11), following the target's C bit
   * with empty requests until the final response. Resolves with its keys.
   */
  text(pairs: Array<[string, string]>, timeoutMs = 30_000): Promise<Array<[string, string]>> {
    if (this.closedWith !== undefined) return Promise.reject(this.closeError());
    return new Promise((resolve, reject) => {
      const conn = this.pickConnection();
      const itt = this.allocItt();
      const acc = new TextAccumulator(1 << 20);
      const timer = setTimeout(() => {
        this.pending.delete(itt);
        reject(new IscsiInitiatorError('ERR_ISCSI_TIMEOUT', `no Text Response within ${timeoutMs} ms`));
      }, timeoutMs);
      const finish = (err: Error | undefined, keys?: Array<[string, string]>): void => {
        clearTimeout(timer);
        this.pending.delete(itt);
        if (err !== undefined) reject(err);
        else resolve(keys ?? []);
      };
      const send = (data: Buffer | undefined, ttt: number): void =>
        this.withCmdSN((cmdSN) => {
          conn.send({ opcode: Opcode.TEXT_REQUEST, immediate: false, final: true, continue: false, lun: 0, itt, targetTransferTag: ttt, cmdSN, expStatSN: conn.expStatSN }, data);
        });
      this.pending.set(itt, {
        conn,
        fail: (e) => finish(e),
        onPdu: (pdu) => {
          if (pdu.opcode !== Opcode.TEXT_RESPONSE) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a Text Response');
          conn.noteStatSN(pdu.statSN);
          const whole = acc.add(pdu.data, pdu.continue);
          if (whole === undefined || !pdu.final) {
            if (whole !== undefined) acc.reset();
            send(undefined, pdu.targetTransferTag);
            return;
          }
          try {
            finish(undefined, parseTextKeys(whole));
          } catch (err) {
            finish(new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `bad Text Response: ${(err as Error).message}`, { cause: err }));
          }
        },
      });
      const data = encodeTextKeys(pairs);
      send(data.length > 0 ? data : undefined, RESERVED_TAG);
    });
  }

  /** NOP-Out ping (§11.18); resolves with the round trip in ms, or rejects ERR_ISCSI_TIMEOUT. */
  ping(timeoutMs = 15_000, data?: Buffer): Promise<number> {
    const t0 = performance.now();
    return this.immediateRequest<number>(timeoutMs, (conn, itt, resolve) => {
      conn.send({ opcode: Opcode.NOP_OUT, immediate: true, final: true, lun: 0, itt, targetTransferTag: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: conn.expStatSN }, data);
      return (pdu) => {
        if (pdu.opcode !== Opcode.NOP_IN) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a NOP-In');
        conn.noteStatSN(pdu.statSN);
        resolve(performance.now() - t0);
      };
    });
  }

  /**
   * Close the session with a Logout Request (§11.14, reason "close the
   * session"), then the connection. Outstanding commands reject with
   * ERR_ISCSI_SESSION_CLOSED. Idempotent.
   */
  async logout(timeoutMs = 10_000): Promise<void> {
    if (this.closedWith !== undefined || this.loggingOut) return;
    this.loggingOut = true;
    let response: number | undefined;
    try {
      response = await this.immediateRequest<number>(timeoutMs, (conn, itt, resolve) => {
        conn.send({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, final: true, reasonCode: LogoutReason.CLOSE_SESSION, itt, cid: conn.cid, cmdSN: this.cmdSN, expStatSN: conn.expStatSN });
        return (pdu) => {
          if (pdu.opcode !== Opcode.LOGOUT_RESPONSE) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a Logout Response');
          conn.noteStatSN(pdu.statSN);
          resolve(pdu.response);
        };
      }, true);
    } finally {
      const err = new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'session logged out');
      this.shutdown(err);
      await Promise.all(this.connections.map((c) => c.end()));
    }
    if (response !== LogoutResponse.SUCCESS) {
      throw new IscsiInitiatorError('ERR_ISCSI_LOGOUT_FAILED', `logout answered ${response}`, { response });
    }
  }

  /** Drop the session without a logout (sockets destroyed). */
  destroy(err?: IscsiInitiatorError): void {
    this.shutdown(err ?? new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'session destroyed'));
    for (const c of this.connections) c.destroy(this.closedWith);
  }

  /** Send one immediate request and wait for the response with its ITT. */
  private immediateRequest<T>(
    timeoutMs: number,
    send: (conn: IscsiConnection, itt: number, resolve: (v: T) => void) => (pdu: Pdu) => void,
    duringLogout = false,
  ): Promise<T> {
    if (this.closedWith !== undefined || (this.loggingOut && !duringLogout)) return Promise.reject(this.closeError());
    return new Promise<T>((resolve, reject) => {
      const conn = this.pickConnection();
      const itt = this.allocItt();
      const timer = setTimeout(() => {
        this.pending.delete(itt);
        reject(new IscsiInitiatorError('ERR_ISCSI_TIMEOUT', `no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (v: T): void => {
        clearTimeout(timer);
        this.pending.delete(itt);
        resolve(v);
      };
      // Register before sending: a fast target may answer within the write.
      const entry: Pending = {
        conn,
        onPdu: () => undefined,
        fail: (e) => {
          clearTimeout(timer);
          this.pending.delete(itt);
          reject(e);
        },
      };
      this.pending.set(itt, entry);
      entry.onPdu = send(conn, itt, done);
    });
  }

  // ---------------------------------------------------------------------------
  // Receive path

  private dispatch(conn: IscsiConnection, pdu: Pdu): void {
    try {
      this.handle(conn, pdu);
    } catch (err) {
      const e = err instanceof IscsiInitiatorError ? err : new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', (err as Error).message, { cause: err });
      // ERL 0: a protocol violation ends the connection and with it the session.
      conn.destroy(e);
    }
  }

  private handle(conn: IscsiConnection, pdu: Pdu): void {
    if ('maxCmdSN' in pdu && 'expCmdSN' in pdu) {
      // §4.2.2.1: NOP-In and R2T too; Data-In without status also carries them.
      this.updateWindow(pdu.expCmdSN, pdu.maxCmdSN);
    }
    switch (pdu.opcode) {
      case Opcode.NOP_IN:
        this.onNopIn(conn, pdu);
        return;
      case Opcode.ASYNC_MESSAGE:
        this.onAsync(conn, pdu);
        return;
      case Opcode.REJECT:
        this.onReject(conn, pdu);
        return;
      case Opcode.SCSI_RESPONSE:
        conn.noteStatSN(pdu.statSN);
        break;
      default:
        break;
    }
    const p = this.pending.get(pdu.itt);
    if (p === undefined) {
      // A late answer for something that timed out or was aborted: harmless at ERL 0.
      if (pdu.opcode === Opcode.DATA_IN || pdu.opcode === Opcode.R2T || pdu.opcode === Opcode.SCSI_RESPONSE) return;
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `PDU opcode 0x${pdu.opcode.toString(16)} for unknown ITT 0x${pdu.itt.toString(16)}`);
    }
    p.onPdu(pdu);
  }

  private onNopIn(conn: IscsiConnection, pdu: NopInPdu): void {
    if (pdu.itt !== RESERVED_TAG) {
      const p = this.pending.get(pdu.itt);
      if (p !== undefined) p.onPdu(pdu);
      return;
    }
    // §11.19: a target ping (TTT != reserved) wants a NOP-Out back with its TTT, immediately.
    if (pdu.targetTransferTag !== RESERVED_TAG) {
      conn.send(
        { opcode: Opcode.NOP_OUT, immediate: true, final: true, lunRaw: pdu.lunRaw, itt: RESERVED_TAG, targetTransferTag: pdu.targetTransferTag, cmdSN: this.cmdSN, expStatSN: conn.expStatSN },
        pdu.data.length > 0 ? Buffer.from(pdu.data.subarray(0, conn.maxSendDataSegmentLength)) : undefined,
      );
    }
  }

  private onAsync(conn: IscsiConnection, pdu: AsyncMessagePdu): void {
    conn.noteStatSN(pdu.statSN);
    const info: AsyncEventInfo = {
      event: pdu.asyncEvent,
      vcode: pdu.asyncVCode,
      lun: pdu.lun,
      parameter1: pdu.parameter1,
      parameter2: pdu.parameter2,
      parameter3: pdu.parameter3,
      data: Buffer.from(pdu.data),
    };
    this.emit('async', info);
    switch (pdu.asyncEvent) {
      case AsyncEvent.LOGOUT_REQUEST:
        // §11.9.1: log out within Parameter3 seconds; with one connection, close the session.
        void this.logout(Math.max(1, pdu.parameter3) * 1000).catch(() => undefined);
        break;
      case AsyncEvent.CONNECTION_DROP:
        conn.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', 'target announced it drops the connection'));
        break;
      case AsyncEvent.SESSION_DROP:
        this.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', 'target announced it drops the session'));
        break;
      case AsyncEvent.NEGOTIATION_REQUEST:
        // §11.9.1: answer with a (possibly empty) Text Request on this connection.
        void this.text([]).catch(() => undefined);
        break;
      default:
        break;
    }
  }

  private onReject(conn: IscsiConnection, pdu: RejectPdu): void {
    // §11.17: the rejected PDU's header is the data segment; its ITT names the request.
    const itt = pdu.data.length >= 20 ? pdu.data.readUInt32BE(16) : RESERVED_TAG;
    const p = this.pending.get(itt);
    const err = new IscsiInitiatorError('ERR_ISCSI_REJECTED', `target rejected a PDU (reason 0x${pdu.reason.toString(16)})`, { rejectReason: pdu.reason });
    if (p !== undefined && p.conn === conn) p.fail(err);
  }

  private connectionClosed(conn: IscsiConnection, err: IscsiInitiatorError): void {
    // ERL 0: losing the only connection ends the session; outstanding work fails.
    const e = err.code === 'ERR_ISCSI_SESSION_CLOSED' || err.code === 'ERR_ISCSI_DISCONNECTED' ? err : new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', err.message, { cause: err });
    for (const [, p] of [...this.pending]) if (p.conn === conn) p.fail(e);
    if (this.connections.every((c) => c.closed)) this.shutdown(e);
  }

  private shutdown(err: IscsiInitiatorError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err;
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    // Queued starters belong to pending entries, which fail below.
    this.waiting.length = 0;
    for (const [, p] of [...this.pending]) p.fail(err);
    this.emit('close', err);
  }

  private startKeepalive(): void {
    const interval = this.opts.keepaliveIntervalMs ?? 30_000;
    if (interval <= 0 || this.keepalive !== undefined) return;
    const timeout = this.opts.keepaliveTimeoutMs ?? 15_000;
    this.keepalive = setInterval(() => {
      if (this.pinging || this.closedWith !== undefined || this.loggingOut) return;
      const conn = this.connections[0];
      if (Date.now() - conn.lastReceive < interval) return;
      this.pinging = true;
      this.ping(timeout).then(
        () => {
          this.pinging = false;
        },
        (err: unknown) => {
          this.pinging = false;
          if (err instanceof IscsiInitiatorError && err.code === 'ERR_ISCSI_TIMEOUT') {
            conn.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `target did not answer a NOP-Out within ${timeout} ms`, { cause: err }));
          }
        },
      );
    }, Math.max(100, Math.min(interval, 1000)));
    this.keepalive.unref();
  }
}
