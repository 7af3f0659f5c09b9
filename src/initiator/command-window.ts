// The command window of an initiator session (RFC 7143 §4), without the
// login and recovery policy (session.ts): the session-wide CmdSN window
// (§4.2.2.1), the tasks in flight keyed by ITT with their connection
// allegiance (§7.1.3) and in-flight counts, least-loaded connection picking,
// immediate requests (TMF, NOP, Logout), and the receive path with ERL 1's
// within-connection recovery: StatSN and DataSN holes filled by SNACK
// (§6.1.4), a status held back while its Data-In is incomplete, and a
// command retried after a Reject for a digest error in its immediate data.

import { EventEmitter } from 'node:events';

import { RejectReason, RESERVED_TAG, TmfFunction, TmfResponse } from '../protocols/iscsi/constants.js';
import type { NegotiatedParams } from '../protocols/iscsi/keys.js';
import { Opcode, type AsyncMessagePdu, type DataInPdu, type NopInPdu, type Pdu, type RejectPdu } from '../protocols/iscsi/pdu-types.js';
import { seqAdd, seqGt, seqLt, seqLte } from '../protocols/iscsi/seq.js';
import type { IscsiConnection } from './connection.js';
import { pickSticky } from './connection-pool.js';
import { IscsiInitiatorError } from './errors.js';
import type { RecoveryEvent } from './recovery.js';
import { dataAck, dataSnack, statusSnack, type SnRun } from './snack.js';
import { ScsiTask, type ScsiRequest, type ScsiResult, type WriteLimits } from './task.js';

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
export interface Pending {
  /** The connection the answer comes on (a SCSI task's current allegiance). */
  readonly conn: IscsiConnection | undefined;
  /** Set for SCSI tasks (they survive connection recovery); unset for immediate requests. */
  task?: ScsiTask;
  onPdu(pdu: Pdu): void;
  fail(err: Error): void;
}

export type Starter = (cmdSN: number, conn: IscsiConnection) => void;

export interface SessionEvents {
  close: [err: IscsiInitiatorError];
  async: [info: AsyncEventInfo];
  /** Error recovery progress (connection failed/recovered, reinstatement). */
  recovery: [event: RecoveryEvent];
}

/** Does this PDU take a StatSN of its own (§4.2.2.2), as opposed to only showing the current one? */
function takesStatSN(pdu: Pdu): pdu is Pdu & { statSN: number } {
  switch (pdu.opcode) {
    case Opcode.SCSI_RESPONSE:
    case Opcode.TASK_MGMT_RESPONSE:
    case Opcode.TEXT_RESPONSE:
    case Opcode.LOGOUT_RESPONSE:
    case Opcode.ASYNC_MESSAGE:
    case Opcode.REJECT:
      return true;
    case Opcode.DATA_IN:
      return pdu.statusPresent;
    case Opcode.NOP_IN:
      return pdu.itt !== RESERVED_TAG;
    default:
      return false;
  }
}

export abstract class CommandWindow extends EventEmitter<SessionEvents> {
  params!: NegotiatedParams;

  /** Next CmdSN to assign; ExpCmdSN and MaxCmdSN as the target last told us (§4.2.2.1). */
  protected cmdSN = 1;
  protected expCmdSN = 1;
  protected maxCmdSN = 1;
  protected readonly waiting: Starter[] = [];
  protected readonly pending = new Map<number, Pending>();
  protected readonly tasks = new Map<number, ScsiTask>();
  protected nextItt = 1;
  protected readonly conns: IscsiConnection[] = [];
  protected cursor = 0;
  protected closedWith: IscsiInitiatorError | undefined;
  protected loggingOut = false;
  protected limits!: WriteLimits;
  /** Reinstatement in progress: no command starts until the new session is up. */
  protected suspended = false;

  /** An Async Message (§11.9): the session acts on it. */
  protected abstract onAsync(conn: IscsiConnection, pdu: AsyncMessagePdu): void;
  /** The session just closed (timers stop). */
  protected abstract onShutdown(): void;

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

  /** The negotiated ErrorRecoveryLevel. */
  get errorRecoveryLevel(): number {
    return this.params.errorRecoveryLevel;
  }

  protected activeConnections(): IscsiConnection[] {
    return this.conns.filter((c) => c.state === 'active' && !c.closed);
  }

  /**
   * The connection new work goes to (connection-pool.ts pickSticky): the one
   * that took the last command while it is not too far ahead, else the least
   * loaded active one (ties rotate).
   */
  protected pickConnection(): IscsiConnection | undefined {
    const conns = this.conns;
    if (conns.length === 1) {
      // The common single-connection session: no picking to do.
      const c = conns[0];
      return c.state === 'active' && !c.closed ? c : undefined;
    }
    const last = this.lastPicked === undefined ? -1 : conns.indexOf(this.lastPicked);
    const i = pickSticky(conns.map((c) => ({ state: c.closed ? 'failed' : c.state, inFlight: c.inFlight, load: c.load })), last, this.cursor);
    if (i < 0) return undefined;
    if (i !== last) this.cursor = (i + 1) % conns.length;
    this.lastPicked = conns[i];
    return conns[i];
  }

  /** The connection pickConnection() chose last (it keeps small commands together). */
  private lastPicked: IscsiConnection | undefined;

  protected requireConnection(): IscsiConnection {
    const c = this.pickConnection();
    if (c === undefined) throw this.closedWith ?? new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', 'no connection of the session is up (recovery in progress)');
    return c;
  }

  protected closeError(): IscsiInitiatorError {
    return this.closedWith ?? new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'session is closed');
  }

  protected allocItt(): number {
    for (;;) {
      const itt = this.nextItt;
      this.nextItt = this.nextItt >= 0xfffffffe ? 1 : this.nextItt + 1;
      if (itt !== RESERVED_TAG && !this.pending.has(itt)) return itt;
    }
  }

  // ---------------------------------------------------------------------------
  // CmdSN window (§4.2.2.1)

  /** Run `start` with a CmdSN and a connection once the window admits one more non-immediate command. */
  protected withCmdSN(start: Starter): void {
    this.waiting.push(start);
    this.pump();
  }

  protected pump(): void {
    while (this.waiting.length > 0 && this.closedWith === undefined && !this.suspended && seqLte(this.cmdSN, this.maxCmdSN)) {
      const conn = this.pickConnection();
      if (conn === undefined) return; // every connection is in recovery: wait for one
      const start = this.waiting.shift() as Starter;
      const sn = this.cmdSN;
      this.cmdSN = seqAdd(this.cmdSN, 1);
      start(sn, conn);
    }
  }

  /** Take ExpCmdSN/MaxCmdSN from any response (§4.2.2.1: ignore if MaxCmdSN < ExpCmdSN - 1). */
  protected updateWindow(exp: number, max: number): void {
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
        if (task.heldStatSN !== undefined) task.heldStatSN.conn.statSNTracker.release(task.heldStatSN.statSN);
        this.unbind(task);
        this.tasks.delete(itt);
        this.pending.delete(itt);
        req.signal?.removeEventListener('abort', onAbort);
      };
      const task: ScsiTask = new ScsiTask(
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
      task.tolerateGaps = this.params.errorRecoveryLevel >= 1;
      const onAbort = (): void => this.abortTask(task);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      this.tasks.set(itt, task);
      this.pending.set(itt, {
        get conn() {
          return task.conn;
        },
        task,
        onPdu: (pdu) => this.taskPdu(task, pdu),
        fail: (e) => task.fail(e),
      });
      this.withCmdSN((cmdSN, conn) => this.startTask(task, cmdSN, conn));
    });
  }

  protected startTask(task: ScsiTask, cmdSN: number, conn: IscsiConnection): void {
    if (task.finished) {
      // Aborted while queued: nothing went out with this CmdSN, so the
      // next command takes it (a hole would stall the target's ExpCmdSN).
      this.cmdSN = cmdSN;
      return;
    }
    this.bind(task, conn);
    task.start(conn, cmdSN, this.limits);
  }

  /** Connection allegiance with in-flight counts (the picker balances on them). */
  protected bind(task: ScsiTask, conn: IscsiConnection): void {
    if (task.conn === conn && task.sent) return;
    this.unbind(task);
    conn.inFlight++;
    conn.load += task.load;
    task.conn = conn;
  }

  protected unbind(task: ScsiTask): void {
    const c = task.conn;
    if (c !== undefined && c.inFlight > 0) {
      c.inFlight--;
      c.load = c.inFlight === 0 ? 0 : Math.max(0, c.load - task.load);
    }
    task.conn = undefined;
  }

  protected taskPdu(task: ScsiTask, pdu: Pdu): void {
    switch (pdu.opcode) {
      case Opcode.DATA_IN:
        this.taskDataIn(task, pdu);
        break;
      case Opcode.SCSI_RESPONSE:
        task.onResponse(pdu);
        if (task.conn !== undefined) this.holdStatus(task, task.conn, pdu.statSN);
        break;
      case Opcode.R2T:
        // Recovery R2Ts (ERL 1, after TASK REASSIGN) are answered like any other.
        task.onR2T(pdu);
        break;
      default:
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `unexpected ${pdu.opcode.toString(16)} for a SCSI task`);
    }
  }

  protected taskDataIn(task: ScsiTask, pdu: DataInPdu): void {
    const conn = task.conn;
    const { snack } = task.onDataIn(pdu);
    if (conn === undefined) return;
    if (pdu.statusPresent) this.holdStatus(task, conn, pdu.statSN);
    this.sendDataSnacks(conn, task, snack);
    // §11.16.3: a Data-In with the A bit wants a DataACK (ERL >= 1).
    if (pdu.acknowledge && this.params.errorRecoveryLevel >= 1 && !task.finished) {
      conn.send(dataAck(task.itt, task.req.lun, pdu.targetTransferTag, task.expDataSN, conn.expStatSN));
    }
  }

  /**
   * ERL 1: a status arrived while the task still misses Data-In: do not
   * acknowledge it (ExpStatSN stays below it) so the target keeps the data
   * for our SNACKs (§6.1.4.2); released when the task completes.
   */
  protected holdStatus(task: ScsiTask, conn: IscsiConnection, statSN: number): void {
    if (task.finished || task.heldStatSN !== undefined || this.params.errorRecoveryLevel < 1) return;
    conn.statSNTracker.hold(statSN);
    task.heldStatSN = { conn, statSN };
  }

  protected sendDataSnacks(conn: IscsiConnection, task: ScsiTask, runs: SnRun[]): void {
    for (const run of runs) conn.send(dataSnack(task.itt, task.req.lun, run, conn.expStatSN));
  }

  protected abortTask(task: ScsiTask): void {
    if (task.finished) return;
    if (!task.sent) {
      task.fail(new IscsiInitiatorError('ERR_ISCSI_ABORTED', 'aborted before it was sent'));
      return;
    }
    if (task.aborting) return;
    task.aborting = true;
    // On the task's own connection when it is up (its PDUs travel there, §7.1.3).
    const via = task.conn !== undefined && task.conn.state === 'active' && !task.conn.closed ? task.conn : undefined;
    this.taskManagement(TmfFunction.ABORT_TASK, { lun: task.req.lun, referencedTaskTag: task.itt, refCmdSN: task.cmdSN }, 30_000, via).then(
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
  taskManagement(fn: number, o: { lun?: number; referencedTaskTag?: number; refCmdSN?: number; expDataSN?: number } = {}, timeoutMs = 30_000, via?: IscsiConnection): Promise<number> {
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
        expDataSN: o.expDataSN ?? 0,
      });
      return (pdu) => {
        if (pdu.opcode !== Opcode.TASK_MGMT_RESPONSE) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a TMF response');
        if (pdu.response === TmfResponse.FUNCTION_COMPLETE && fn !== TmfFunction.ABORT_TASK && fn !== TmfFunction.TASK_REASSIGN) {
          const all = fn === TmfFunction.TARGET_WARM_RESET || fn === TmfFunction.TARGET_COLD_RESET;
          for (const t of [...this.tasks.values()]) {
            if (t.sent && (all || t.req.lun === (o.lun ?? 0))) t.fail(new IscsiInitiatorError('ERR_ISCSI_ABORTED', `task 0x${t.itt.toString(16)} ended by ${fn === TmfFunction.LOGICAL_UNIT_RESET ? 'LUN RESET' : `TMF ${fn}`}`));
          }
        }
        resolve(pdu.response);
      };
    }, false, via);
  }

  /** Send one immediate request (on `via`, else the least-loaded connection) and wait for the response with its ITT. */
  protected immediateRequest<T>(
    timeoutMs: number,
    send: (conn: IscsiConnection, itt: number, resolve: (v: T) => void) => (pdu: Pdu) => void,
    duringLogout = false,
    via?: IscsiConnection,
  ): Promise<T> {
    if (this.closedWith !== undefined || (this.loggingOut && !duringLogout)) return Promise.reject(this.closeError());
    return new Promise<T>((resolve, reject) => {
      let conn: IscsiConnection;
      try {
        conn = via ?? this.requireConnection();
      } catch (err) {
        reject(err as Error);
        return;
      }
      if (conn.closed) {
        reject(conn.closeReason ?? new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', 'connection closed'));
        return;
      }
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

  protected dispatch(conn: IscsiConnection, pdu: Pdu): void {
    try {
      this.handle(conn, pdu);
    } catch (err) {
      const e = err instanceof IscsiInitiatorError ? err : new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', (err as Error).message, { cause: err });
      // A protocol violation ends the connection (recovery takes it from there).
      conn.destroy(e);
    }
  }

  protected handle(conn: IscsiConnection, pdu: Pdu): void {
    if ('maxCmdSN' in pdu && 'expCmdSN' in pdu) {
      // §4.2.2.1: NOP-In and R2T too; Data-In without status also carries them.
      this.updateWindow(pdu.expCmdSN, pdu.maxCmdSN);
    }
    // ERL >= 1: a StatSN hole means a status PDU was lost: Status SNACK
    // (§6.1.4.2), sent after the PDU is handled so that its ExpStatSN
    // reflects a status held back by the task.
    const gap = takesStatSN(pdu) ? conn.noteStatSN(pdu.statSN).gap : undefined;
    try {
      this.route(conn, pdu);
    } finally {
      if (gap !== undefined) this.sendStatusSnacks(conn);
    }
  }

  protected route(conn: IscsiConnection, pdu: Pdu): void {
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
      default:
        break;
    }
    const p = this.pending.get(pdu.itt);
    if (p === undefined) {
      // A late answer for something that timed out, was aborted, or a resend of one we have.
      if (pdu.opcode === Opcode.DATA_IN || pdu.opcode === Opcode.R2T || pdu.opcode === Opcode.SCSI_RESPONSE || pdu.opcode === Opcode.TASK_MGMT_RESPONSE || pdu.opcode === Opcode.LOGOUT_RESPONSE) return;
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `PDU opcode 0x${pdu.opcode.toString(16)} for unknown ITT 0x${pdu.itt.toString(16)}`);
    }
    p.onPdu(pdu);
  }

  /**
   * ERL 1: a SNACK or the PDUs it asked for can be lost too; holes still
   * open after `afterMs` are asked for again (called from a timer).
   */
  protected resendOverdueSnacks(afterMs: number): void {
    const now = Date.now();
    for (const task of this.tasks.values()) {
      const conn = task.conn;
      if (conn === undefined || conn.state !== 'active' || conn.closed) continue;
      this.sendDataSnacks(conn, task, task.overdueSnacks(now, afterMs));
    }
    for (const conn of this.conns) {
      if (conn.state !== 'active' || conn.closed) continue;
      for (const run of conn.statSNTracker.overdue(now, afterMs)) conn.send(statusSnack(run, conn.expStatSN));
    }
  }

  protected sendStatusSnacks(conn: IscsiConnection): void {
    for (const run of conn.statSNTracker.takeUnrecovered()) conn.send(statusSnack(run, conn.expStatSN));
  }

  /**
   * ERL >= 1 (§7.8): a PDU whose data digest failed. Its header is sound:
   * discard the data and ask for the PDU again (Data SNACK for Data-In,
   * Status SNACK for a status-carrying PDU).
   */
  protected onDataDigestError(conn: IscsiConnection, pdu: Pdu): void {
    try {
      if ('maxCmdSN' in pdu && 'expCmdSN' in pdu) this.updateWindow(pdu.expCmdSN, pdu.maxCmdSN);
      if (pdu.opcode === Opcode.DATA_IN) {
        // Its status (S bit) comes back with the resent Data-In: no Status SNACK for it.
        if (pdu.statusPresent) conn.statSNTracker.discard(pdu.statSN);
        const task = this.tasks.get(pdu.itt);
        if (task !== undefined && task.conn === conn) this.sendDataSnacks(conn, task, task.discardDataIn(pdu.dataSN));
        return;
      }
      if (takesStatSN(pdu) && conn.statSNTracker.discard(pdu.statSN)) {
        conn.send(statusSnack({ begRun: pdu.statSN, runLength: 1 }, conn.expStatSN));
      }
    } catch (err) {
      conn.destroy(err instanceof IscsiInitiatorError ? err : new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', (err as Error).message, { cause: err }));
    }
  }

  protected onNopIn(conn: IscsiConnection, pdu: NopInPdu): void {
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

  protected onReject(conn: IscsiConnection, pdu: RejectPdu): void {
    // §11.17: the rejected PDU's header is the data segment; its ITT names the request.
    const itt = pdu.data.length >= 20 ? pdu.data.readUInt32BE(16) : RESERVED_TAG;
    const opcode = pdu.data.length >= 1 ? pdu.data[0] & 0x3f : -1;
    const p = this.pending.get(itt);
    if (pdu.reason === RejectReason.DATA_DIGEST_ERROR && this.params.errorRecoveryLevel >= 1) {
      // §7.8 / §6.2.1: the target dropped our PDU. A command (its immediate
      // data was bad) is sent again with the same ITT and CmdSN; lost
      // Data-Out comes back as a recovery R2T, so nothing to do for it.
      if (opcode === Opcode.SCSI_COMMAND && p?.task !== undefined && p.task.conn === conn && !p.task.finished) p.task.resend(conn);
      if (opcode === Opcode.SCSI_COMMAND || opcode === Opcode.DATA_OUT) return;
    }
    const err = new IscsiInitiatorError('ERR_ISCSI_REJECTED', `target rejected a PDU (reason 0x${pdu.reason.toString(16)})`, { rejectReason: pdu.reason });
    if (p !== undefined && p.conn === conn) p.fail(err);
  }

  /** Unfinished tasks matching `pred`, in CmdSN order. */
  protected sortedTasks(pred: (t: ScsiTask) => boolean): ScsiTask[] {
    return [...this.tasks.values()].filter((t) => !t.finished && pred(t)).sort((a, b) => (a.cmdSN === b.cmdSN ? 0 : seqLt(a.cmdSN, b.cmdSN) ? -1 : 1));
  }

  protected shutdown(err: IscsiInitiatorError): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err;
    this.onShutdown();
    // Queued starters belong to pending entries, which fail below.
    this.waiting.length = 0;
    for (const [, p] of [...this.pending]) p.fail(err);
    this.emit('close', err);
  }

}
