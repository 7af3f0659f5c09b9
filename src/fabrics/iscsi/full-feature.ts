// Full feature phase of one connection: routes PDUs by opcode, orders them by
// CmdSN (RFC 7143 §3.2.2.1), and keeps the connection's tasks.
//
// Non-immediate requests (SCSI Command, TMF, Text, NOP-Out, Logout) pass the
// session's CmdSN window: outside it they are dropped silently, ahead of
// ExpCmdSN they wait for the gap to close. A SCSI Command is registered at
// once so its Data-Out can flow while it waits; it reaches the core when it
// is both delivered in order and has all its data.

import {
  Opcode,
  type AsyncMessagePdu,
  type DataOutPdu,
  type LogoutRequestPdu,
  type NopInPdu,
  type NopOutPdu,
  type Pdu,
  type ScsiCommandPdu,
  type ScsiResponsePdu,
  type SnackRequestPdu,
  type TaskMgmtRequestPdu,
  type TaskMgmtResponsePdu,
  type TextRequestPdu,
} from '../../protocols/iscsi/pdu-types.js';
import { AsyncEvent, RESERVED_TAG, RejectReason } from '../../protocols/iscsi/constants.js';
import type { IscsiSession } from './session.js';
import { ScsiTask, type TaskHost, type TaskParams } from './scsi-command.js';
import { SENSE_CRC_ERROR, SENSE_DATA_PHASE_ERROR } from './fabric-sense.js';
import { encodeSenseData, type EncodablePdu } from '../../protocols/iscsi/pdu.js';
import type { NexusHandle } from '../../core/types.js';
import type { IscsiCore, IscsiLogger } from './config.js';
import type { AcceptingServer } from './accepting-server.js';
import type { CmdSnFields, ConnectionPort, TaskTable } from './hosts.js';
import type { StatusRetention } from './retention.js';
import type { BufferPool } from '../../util/buffer-pool.js';
import { handleTmf, type TmfHost } from './tmf.js';
import { TextHandler, type TextHost } from './text.js';
import { answerNopOut } from './nop.js';
import { handleLogout, type LogoutHost } from './logout.js';
import { handleSnack, type SnackHost } from './snack.js';
import { serverWriteBudget, type SessionWriteBudget } from './write-budget.js';
import { seqAdd } from '../../protocols/iscsi/seq.js';

/** What the full feature phase needs of the server (IscsiTargetServer's AcceptingServer). */
export type FullFeatureServer = Pick<AcceptingServer, 'core' | 'log' | 'stats' | 'sendTargets' | 'limits'>;

/**
 * The full feature phase of one connection: its task table, and the host
 * every handler of the phase works through (each names only the narrow
 * interface it needs).
 */
export class FullFeature implements TaskTable, TaskHost, TmfHost, TextHost, SnackHost, LogoutHost {
  private readonly tasks = new Map<number, ScsiTask>();
  private readonly ttts = new Map<number, ScsiTask>();
  private nextTtt = 1;
  private accepting = true;
  /** Held by the session for connection recovery (ERL 2). */
  private detached = false;
  private readonly text: TextHandler;
  /** ERL >= 1: finished tasks stay (with their results) until their status is acknowledged. */
  readonly retaining: boolean;
  /** The session's write data budget (write-budget.ts); normal sessions only. */
  readonly writeBudget: SessionWriteBudget | undefined;

  constructor(
    readonly conn: ConnectionPort,
    readonly session: IscsiSession,
    private readonly server: FullFeatureServer,
  ) {
    this.text = new TextHandler(this);
    this.retaining = session.params.errorRecoveryLevel >= 1 && session.type === 'normal';
    this.writeBudget = session.type === 'normal' ? session.writeBudget(serverWriteBudget(server)) : undefined;
  }

  // -------------------------------------------------------------------------
  // What the handlers reach through this host (TaskHost, TmfHost, ...)

  send<P extends Pdu>(pdu: EncodablePdu<P>, onWritten?: () => void): void {
    this.conn.send(pdu, onWritten);
  }

  window(): CmdSnFields {
    return this.conn.window();
  }

  takeStatSN(): number {
    return this.conn.takeStatSN();
  }

  get currentStatSN(): number {
    return this.conn.currentStatSN;
  }

  get params(): TaskParams {
    return this.conn.params;
  }

  get peerMaxRecvDataSegmentLength(): number {
    return this.conn.peerMaxRecvDataSegmentLength;
  }

  get nexus(): NexusHandle | undefined {
    return this.session.nexus;
  }

  get core(): IscsiCore {
    return this.server.core;
  }

  get log(): IscsiLogger {
    return this.server.log;
  }

  get connectionGone(): boolean {
    return this.conn.closed;
  }

  get retention(): StatusRetention | undefined {
    return this.conn.retention;
  }

  get buffers(): BufferPool {
    return this.conn.buffers;
  }

  get sendBacklogged(): boolean {
    return this.conn.sendBacklogged;
  }

  retainedData(delta: number): void {
    this.conn.retention?.taskData(delta);
  }

  reject(bhs: Buffer, reason: number): void {
    this.conn.reject(bhs, reason);
  }

  sendTargets(initiator: string, which: string): Array<[string, string]> {
    return this.server.sendTargets(initiator, which, this.conn.portalKey);
  }

  loggedOut(reasonCode: number): void {
    const session = this.session;
    this.server.stats.logout(this.conn, session, reasonCode);
    this.server.log.info?.('iSCSI logout', { tsih: session.tsih, initiator: session.initiatorName, reason: reasonCode });
  }

  closeSessionConnections(reason: string): void {
    for (const c of [...this.session.connections]) if (c !== this.conn) c.destroy(reason);
    this.conn.end(reason);
  }

  task(itt: number): ScsiTask | undefined {
    return this.tasks.get(itt);
  }

  get taskCount(): number {
    return this.tasks.size;
  }

  /** Tasks of this connection addressed to `lun` that are running in the core. */
  submittedTasksOn(lun: number): ScsiTask[] {
    const out: ScsiTask[] = [];
    for (const t of this.tasks.values()) if (t.lun === lun && t.phase === 'submitted') out.push(t);
    return out;
  }

  handle(pdu: Pdu, bhs: Buffer): void {
    if (!this.accepting) return;
    // ERL >= 1: ExpStatSN acknowledges the statuses before it (§4.2.2.2). A
    // SNACK's is not taken: it must not release what it asks for again.
    if (this.conn.retention !== undefined && 'expStatSN' in pdu && pdu.opcode !== Opcode.SNACK_REQUEST) this.conn.retention.ack(pdu.expStatSN);
    const discovery = this.session.type === 'discovery';
    switch (pdu.opcode) {
      case Opcode.SCSI_COMMAND:
        if (discovery) return this.rejectOrdered(pdu, bhs, RejectReason.PROTOCOL_ERROR);
        return this.scsiCommand(pdu, bhs);
      case Opcode.DATA_OUT:
        if (discovery) return this.conn.reject(bhs, RejectReason.PROTOCOL_ERROR);
        return this.dataOut(pdu);
      case Opcode.TASK_MGMT_REQUEST:
        if (discovery) return this.rejectOrdered(pdu, bhs, RejectReason.PROTOCOL_ERROR);
        return this.ordered(pdu, () => this.tmf(pdu));
      case Opcode.NOP_OUT:
        // RFC 7143 §4.3: a discovery session accepts only Text and Logout.
        if (discovery) return this.rejectOrdered(pdu, bhs, RejectReason.PROTOCOL_ERROR);
        return this.nopOut(pdu, bhs);
      case Opcode.TEXT_REQUEST:
        return this.ordered(pdu, () => this.text.handle(pdu as TextRequestPdu, bhs));
      case Opcode.LOGOUT_REQUEST:
        return this.ordered(pdu, () => handleLogout(this, pdu as LogoutRequestPdu));
      case Opcode.SNACK_REQUEST:
        // ERL 0 (§11.16): SNACK is not supported.
        if (!this.retaining) return this.conn.reject(bhs, RejectReason.PROTOCOL_ERROR);
        return handleSnack(this, pdu as SnackRequestPdu, bhs);
      case Opcode.LOGIN_REQUEST:
        return this.conn.reject(bhs, RejectReason.PROTOCOL_ERROR);
      default:
        // A target opcode sent by an initiator.
        return this.conn.reject(bhs, RejectReason.PROTOCOL_ERROR);
    }
  }

  /**
   * Reject a request that carries a CmdSN; its CmdSN still counts as received
   * so the window does not stall on a hole (the initiator will not resend it).
   */
  private rejectOrdered(pdu: { immediate: boolean; cmdSN: number }, bhs: Buffer, reason: number): void {
    this.conn.reject(bhs, reason);
    this.ordered(pdu, () => {});
  }

  /**
   * RFC 7143 §11.5.1 b): ABORT TASK for a command never received, whose
   * RefCmdSN is inside the window: the target "must consider the CmdSN as
   * received", so later commands are not held behind the hole forever. If the
   * command turns up after all, its CmdSN is already used and it is dropped.
   */
  considerReceived(cmdSN: number): void {
    this.ordered({ immediate: false, cmdSN }, () => {});
  }

  /** Run `fn` in CmdSN order (or now, for an immediate request). */
  private ordered(pdu: { immediate: boolean; cmdSN: number }, fn: () => void): void {
    if (pdu.immediate) {
      fn();
      return;
    }
    const r = this.session.window.offer(pdu.cmdSN, fn);
    if (r.verdict === 'drop') {
      this.server.log.debug?.('iSCSI CmdSN outside window: dropped', {
        cmdSN: pdu.cmdSN,
        expCmdSN: this.session.window.expCmdSN,
        maxCmdSN: this.session.window.maxCmdSN,
      });
      return;
    }
    for (const f of r.ready) f();
  }

  // -------------------------------------------------------------------------
  // SCSI commands

  private scsiCommand(pdu: ScsiCommandPdu, bhs: Buffer): void {
    const window = this.session.window;
    if (!pdu.immediate && !window.inWindow(pdu.cmdSN)) {
      // §3.2.2.1: outside [ExpCmdSN, MaxCmdSN]: silently ignored.
      this.server.log.debug?.('iSCSI CmdSN outside window: dropped', { cmdSN: pdu.cmdSN, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN });
      return;
    }
    // §11.17.1 reason 0x06: immediate commands bypass the CmdSN window, so
    // their number in flight is capped on its own; the initiator may resend.
    const immediateCap = pdu.immediate && this.session.immediateInFlight >= this.server.limits().maxImmediateCommands;
    if (immediateCap) {
      this.conn.reject(bhs, RejectReason.IMMEDIATE_COMMAND_REJECT);
      return;
    }
    const prior = this.tasks.get(pdu.itt);
    // ERL >= 1: a finished task kept for its unacknowledged status gives way
    // to a new command with its ITT (the initiator is done with it).
    if (prior !== undefined && prior.phase === 'done') this.retire(prior);
    if (this.tasks.has(pdu.itt) || pdu.itt === RESERVED_TAG) {
      this.rejectOrdered(pdu, bhs, RejectReason.INVALID_PDU_FIELD);
      return;
    }
    const task = new ScsiTask(this, pdu);
    const bad = task.start(pdu);
    if (bad !== undefined) {
      task.dropTransfers();
      this.rejectOrdered(pdu, bhs, bad);
      return;
    }
    this.tasks.set(task.itt, task);
    if (pdu.immediate) {
      task.immediate = true;
      this.session.immediateInFlight++;
    }
    this.ordered(pdu, () => {
      if (task.phase === 'done') {
        return;
      }
      task.delivered = true;
      window.started();
      // In CmdSN order now: the core sees a write's CDB before its data is kept or asked for.
      task.prepare();
      task.maybeSubmit();
    });
    // Still waiting for its CmdSN: immediate data in scratch memory must outlive this PDU.
    task.keepEarlyData();
  }

  /**
   * The framer asks where a data segment that straddles socket chunks should
   * be assembled (its header is all that is known yet). A Data-Out for an
   * open transfer: the task's own buffer, so the data is copied once. A write
   * command's immediate data: the connection's scratch memory (no buffer per
   * command; it is copied on into the command's buffer after prepare(), or
   * kept by keepEarlyData()). The PDU is still checked in full when it arrives.
   */
  segmentTarget(bhs: Buffer, length: number): Buffer | undefined {
    if (!this.accepting) return undefined;
    const opcode = bhs[0] & 0x3f;
    if (opcode === Opcode.SCSI_COMMAND) return (bhs[1] & 0x20) !== 0 && this.session.type === 'normal' ? this.conn.buffers.scratch(length) : undefined;
    if (opcode !== Opcode.DATA_OUT) return undefined;
    const itt = bhs.readUInt32BE(16);
    const ttt = bhs.readUInt32BE(20);
    const task = ttt === RESERVED_TAG ? this.tasks.get(itt) : this.ttts.get(ttt);
    if (!task || task.itt !== itt) return undefined;
    return task.dataOutTarget(bhs.readUInt32BE(40), length);
  }

  private dataOut(pdu: DataOutPdu): void {
    const task = pdu.targetTransferTag === RESERVED_TAG ? this.tasks.get(pdu.itt) : this.ttts.get(pdu.targetTransferTag);
    if (!task || task.itt !== pdu.itt || task.phase !== 'collecting') {
      // Data for a command that already ended (failed or aborted): drop it.
      this.server.log.debug?.('iSCSI Data-Out for no open transfer: dropped', { itt: pdu.itt, ttt: pdu.targetTransferTag });
      return;
    }
    const err = task.dataOutPdu(pdu);
    if (err !== undefined) {
      this.server.log.info?.('iSCSI Data-Out sequence error', { itt: pdu.itt, err });
      // The command fails with CHECK CONDITION; the connection stays usable
      // (libiscsi iSCSIDataSnInvalid expects the command to fail).
      if (!task.delivered) {
        task.delivered = true;
        this.session.window.started();
      }
      task.failWithSense(SENSE_DATA_PHASE_ERROR);
      return;
    }
    task.maybeSubmit();
  }

  // TaskHost
  allocateTtt(): number {
    let t = this.nextTtt;
    while (this.ttts.has(t) || t === RESERVED_TAG) t = (t + 1) >>> 0;
    this.nextTtt = (t + 1) >>> 0;
    return t;
  }

  bindTtt(ttt: number, task: ScsiTask): void {
    this.ttts.set(ttt, task);
  }

  unbindTtt(ttt: number): void {
    this.ttts.delete(ttt);
  }

  taskFinished(task: ScsiTask): void {
    if (!task.hasResult && this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    if (!task.slotHeldForFlush) this.releaseSlot(task);
  }

  /**
   * A reply queued while the socket was backlogged has been written: the
   * task's CmdSN slot frees now. If the last window this connection
   * announced was closed, no other PDU may be on its way to tell the
   * initiator it opened (the replies already sent carry the old MaxCmdSN), so
   * a NOP-In (ITT and TTT 0xffffffff, no answer expected, §11.19.2) carries it.
   */
  replyFlushed(task: ScsiTask): void {
    this.releaseSlot(task);
    const told = this.conn.announcedWindow;
    if (told === undefined || this.conn.closed || seqAdd(told.maxCmdSN, 1) !== told.expCmdSN) return;
    if (this.session.window.refresh() === told.maxCmdSN) return;
    const f = this.conn.window();
    this.conn.send<NopInPdu>({
      opcode: Opcode.NOP_IN,
      itt: RESERVED_TAG,
      lun: 0,
      targetTransferTag: RESERVED_TAG,
      statSN: this.conn.currentStatSN,
      expCmdSN: f.expCmdSN,
      maxCmdSN: f.maxCmdSN,
    });
  }

  /** The task no longer takes a CmdSN slot (nor counts as an immediate command). Once per task. */
  private releaseSlot(task: ScsiTask): void {
    if (task.slotReleased) return;
    task.slotReleased = true;
    if (task.immediate && this.session.immediateInFlight > 0) this.session.immediateInFlight--;
    if (task.delivered) this.session.window.finished();
  }

  /** ERL >= 1: the status with this StatSN was acknowledged; free its task. */
  statusAcked(itt: number, statSN: number): void {
    const task = this.tasks.get(itt);
    if (task && task.phase === 'done' && task.statSN === statSN) this.retire(task);
  }

  /** Forget a finished task and its kept result. */
  private retire(task: ScsiTask): void {
    task.releaseResult();
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    if (task.statSN !== undefined) this.conn.retention?.forget(task.statSN);
  }

  /** TASK REASSIGN: take `task` over from `from` (a failed connection's task table). */
  adopt(task: ScsiTask, from: TaskTable, expDataSN: number): boolean {
    const here = this.tasks.get(task.itt);
    if (here !== undefined && here !== task) {
      if (here.phase !== 'done') return false;
      this.retire(here);
    }
    from.release(task);
    this.tasks.set(task.itt, task);
    task.reassign(this, expDataSN);
    return true;
  }

  /** A task leaves this (failed) connection. */
  release(task: ScsiTask): void {
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
  }

  /** Every task of this connection (SNACK, TMF lookups). */
  allTasks(): IterableIterator<ScsiTask> {
    return this.tasks.values();
  }

  /** Abort tasks that have not reached the core (TMF on a LUN, reset). */
  abortLocalTasks(match: (t: ScsiTask) => boolean): void {
    for (const t of [...this.tasks.values()]) if (t.phase !== 'submitted' && match(t)) t.abortLocal();
  }

  // -------------------------------------------------------------------------
  // Other requests

  private tmf(pdu: TaskMgmtRequestPdu): void {
    handleTmf(this, pdu).catch((err: unknown) => {
      this.server.log.error?.('iSCSI TMF failed', { err: err instanceof Error ? err.message : String(err) });
      this.sendTmfResponse(pdu, 255);
    });
  }

  sendTmfResponse(pdu: TaskMgmtRequestPdu, response: number): void {
    const w = this.conn.window();
    this.conn.send<TaskMgmtResponsePdu>({
      opcode: Opcode.TASK_MGMT_RESPONSE,
      itt: pdu.itt,
      response,
      statSN: this.conn.takeStatSN(),
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
    });
  }

  private nopOut(pdu: NopOutPdu, bhs: Buffer): void {
    if (pdu.itt === RESERVED_TAG) {
      // Answer to our NOP-In ping (§11.18.1): must be immediate, no reply.
      if (pdu.targetTransferTag === RESERVED_TAG) {
        this.conn.reject(bhs, RejectReason.PROTOCOL_ERROR);
        return;
      }
      this.conn.nopAnswered(pdu.targetTransferTag);
      return;
    }
    this.ordered(pdu, () => answerNopOut(this.conn, pdu));
  }

  /**
   * Ask the initiator to log out within `seconds` (Async Message, event 1,
   * RFC 7143 §11.9.1); used when the server shuts down gracefully.
   */
  requestLogout(seconds: number): void {
    const w = this.conn.window();
    this.conn.send<AsyncMessagePdu>({
      opcode: Opcode.ASYNC_MESSAGE,
      itt: RESERVED_TAG,
      lun: 0,
      statSN: this.conn.takeStatSN(),
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
      asyncEvent: AsyncEvent.LOGOUT_REQUEST,
      asyncVCode: 0,
      parameter1: 0,
      parameter2: 0,
      parameter3: Math.max(1, Math.ceil(seconds)),
    });
  }

  /**
   * A PDU arrived with a bad data digest (already rejected). RFC 7143 §7.8 at
   * ERL 0: a SCSI Command's task, or the task a Data-Out belongs to, ends
   * with CHECK CONDITION, ABORTED COMMAND / PROTOCOL SERVICE CRC ERROR; the
   * command's CmdSN counts as received so the session goes on.
   */
  dataDigestError(pdu: Pdu): void {
    if (this.retaining) {
      this.dataDigestErrorRecovery(pdu);
      return;
    }
    if (pdu.opcode === Opcode.SCSI_COMMAND) {
      if (this.session.type === 'discovery' || this.tasks.has(pdu.itt)) return;
      if (!pdu.immediate && !this.session.window.inWindow(pdu.cmdSN)) return;
      this.ordered(pdu, () => {
        const w = this.conn.window();
        this.conn.send<ScsiResponsePdu>({
          opcode: Opcode.SCSI_RESPONSE,
          itt: pdu.itt,
          bidiOverflow: false,
          bidiUnderflow: false,
          overflow: false,
          underflow: false,
          response: 0,
          status: 0x02,
          snackTag: 0,
          statSN: this.conn.takeStatSN(),
          expCmdSN: w.expCmdSN,
          maxCmdSN: w.maxCmdSN,
          expDataSN: 0,
          bidiReadResidualCount: 0,
          residualCount: 0,
          data: encodeSenseData(SENSE_CRC_ERROR),
        });
      });
      return;
    }
    if (pdu.opcode === Opcode.DATA_OUT) {
      const task = pdu.targetTransferTag === RESERVED_TAG ? this.tasks.get(pdu.itt) : this.ttts.get(pdu.targetTransferTag);
      if (!task || task.itt !== pdu.itt || task.phase !== 'collecting') return;
      if (!task.delivered) {
        task.delivered = true;
        this.session.window.started();
      }
      task.failWithSense(SENSE_CRC_ERROR);
    }
  }

  /**
   * ERL 2: the connection failed and the session holds its tasks for
   * recovery (recovery.ts): no more input, open transfers forgotten, tasks
   * (running, collecting or finished with a result) kept as they are.
   */
  detach(): void {
    this.detached = true;
    this.accepting = false;
    for (const t of this.tasks.values()) if (t.phase !== 'done') t.dropTransfers();
    this.ttts.clear();
  }

  /**
   * Time2Retain ran out (§6.2.2): tasks still in the core are aborted there,
   * the rest just end; nothing is answered.
   */
  expireRetained(): void {
    const nexus = this.session.nexus;
    for (const t of [...this.tasks.values()]) {
      if (t.phase === 'submitted' && nexus) {
        void this.server.core.taskManagement({ nexus, fn: 'abort-task', lun: t.lun, refTag: t.itt }).catch(() => undefined);
      }
      t.abortLocal();
    }
    this.tasks.clear();
  }

  /**
   * ERL >= 1 (§7.8, §6.2.1): a SCSI Command with a bad immediate data digest
   * is dropped with its Reject: its CmdSN stays a hole and the initiator
   * sends the command again (same ITT, same CmdSN). A Data-Out's range is
   * asked for again with a recovery R2T.
   */
  private dataDigestErrorRecovery(pdu: Pdu): void {
    if (pdu.opcode !== Opcode.DATA_OUT) return;
    const task = pdu.targetTransferTag === RESERVED_TAG ? this.tasks.get(pdu.itt) : this.ttts.get(pdu.targetTransferTag);
    if (!task || task.itt !== pdu.itt || task.phase !== 'collecting') return;
    if (task.lostDataOut(pdu)) return;
    if (!task.delivered) {
      task.delivered = true;
      this.session.window.started();
    }
    task.failWithSense(SENSE_CRC_ERROR);
  }

  /** After Logout: ignore further requests. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * The connection is gone: every task of it ends without a response. A
   * FullFeature held for recovery (detached) ends only with `force` (the
   * session or its retention ends).
   */
  connectionClosed(force = false): void {
    if (this.detached && !force) return;
    this.accepting = false;
    for (const t of [...this.tasks.values()]) t.abortLocal();
    this.tasks.clear();
    this.ttts.clear();
  }
}
