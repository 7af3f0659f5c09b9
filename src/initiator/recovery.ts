// Error recovery of an initiator session (RFC 7143 §6.1.5, §6.2, §7.1):
//
// - ERL 2, connection recovery (§6.2.2): a connection dies while the session
//   lives. After DefaultTime2Wait, the failed CID is logged out for recovery
//   (Logout reason 2) on a surviving connection, or, when it was the only
//   one, a new connection logs in with the same TSIH and the same CID (which
//   implicitly logs the old one out). Then each task allegiant to it is moved
//   with TASK REASSIGN (§11.5.1) to a live connection: reads resume at the
//   next DataSN we expect, writes continue on the target's R2Ts, a task the
//   target never received is sent again with its CmdSN (a retry, §6.2.1).
//   All within DefaultTime2Retain; whatever fails falls back to ERL 0.
// - ERL 0, session reinstatement (§6.1.5.1): every connection is dropped, a
//   new session logs in with the same ISID and TSIH 0 (the target ends the
//   old one, §6.3.5), and every command that had not completed is sent again
//   (SCSI retry semantics: new CmdSN). Bounded attempts with back-off; then
//   the commands fail with ERR_ISCSI_RECOVERY_FAILED.
//
// The session owns connections and tasks; this module only sequences the
// steps through the narrow RecoveryHost interface.

import { LogoutReason, LogoutResponse, TmfResponse } from '../protocols/iscsi/constants.js';
import type { NegotiatedParams } from '../protocols/iscsi/keys.js';
import type { LogoutResponsePdu } from '../protocols/iscsi/pdu-types.js';
import type { IscsiConnection } from './connection.js';
import { IscsiInitiatorError } from './errors.js';
import type { ScsiTask } from './task.js';

/** What recovery needs from the session. */
export interface RecoveryHost {
  params(): NegotiatedParams;
  /** Closed, or logging out: recovery stops. */
  ending(): boolean;
  /** A live connection for new work (least loaded), if any. */
  pickLive(): IscsiConnection | undefined;
  activeCount(): number;
  /** How many connections the session wants (for replacements). */
  desiredConnections(): number;
  /** Log in one more connection of this session (same TSIH); `cid` reinstates that CID. */
  openConnection(cid?: number): Promise<IscsiConnection>;
  /** Forget a connection object (after logout or reinstatement of its CID). */
  dropConnection(conn: IscsiConnection): void;
  /** Unfinished SCSI tasks allegiant to `conn`, in CmdSN order. */
  tasksOf(conn: IscsiConnection): ScsiTask[];
  /** Move a task's allegiance (and the in-flight counts) to `conn`. */
  bind(task: ScsiTask, conn: IscsiConnection): void;
  logoutConnection(via: IscsiConnection, cid: number, reason: number): Promise<LogoutResponsePdu>;
  /** TASK REASSIGN on `via`; resolves with the TMF response code. */
  reassign(via: IscsiConnection, task: ScsiTask, expDataSN: number): Promise<number>;
  /** The target's ExpCmdSN is past `cmdSN` (it received that command). */
  targetHasSeen(cmdSN: number): boolean;
  /** Send a task again as a new command (new CmdSN, same ITT) on any connection. */
  restart(task: ScsiTask): void;
  /** Reinstatement step 1: drop all connections, fail non-SCSI requests, reset and return the unfinished tasks. */
  dropSession(err: IscsiInitiatorError): ScsiTask[];
  /** Reinstatement step 2: log in a new session (TSIH 0, same ISID) and its further connections; resolves with the new TSIH. */
  loginNewSession(): Promise<number>;
  /** Reinstatement step 3: send the tasks again, ahead of anything queued. */
  requeue(tasks: ScsiTask[]): void;
  /** Give up: the session closes and everything pending fails with `err`. */
  fail(err: IscsiInitiatorError): void;
  /** Progress notes (the session re-emits them as 'recovery' events). */
  note(event: RecoveryEvent): void;
}

export type RecoveryEvent =
  | { kind: 'connection-failed'; cid: number; tasks: number; reason: string }
  | { kind: 'connection-recovered'; cid: number; via: number; tasks: number; ms: number }
  | { kind: 'reinstating'; attempt: number; tasks: number; reason: string }
  | { kind: 'reinstated'; tsih: number; tasks: number }
  | { kind: 'recovery-failed'; reason: string };

export interface RecoveryOptions {
  /** Session reinstatement attempts before the commands fail (0 = no reinstatement). */
  reinstateAttempts: number;
  /** First back-off between attempts (doubles, capped at 5 s). */
  backoffMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** TASK REASSIGN answered "still allegiant": the old connection is not logged out yet; ask again this often. */
const ALLEGIANT_RETRY_MS = 50;
const ALLEGIANT_RETRIES = 20;

export class SessionRecovery {
  reinstatements = 0;
  connectionRecoveries = 0;
  private chain: Promise<void> = Promise.resolve();
  private reinstating: Promise<void> | undefined;

  constructor(
    private readonly host: RecoveryHost,
    private readonly opts: RecoveryOptions,
  ) {}

  /** Session reinstatement in progress (commands wait). */
  get busy(): boolean {
    return this.reinstating !== undefined;
  }

  /** Any recovery in progress (reinstatement or connection recovery). */
  get recovering(): boolean {
    return this.reinstating !== undefined || this.connectionsRecovering > 0;
  }

  private connectionsRecovering = 0;

  /**
   * A connection failed. ERL 2 recovers it (one recovery at a time, in
   * order: a connection that dies while carrying another's reassigned tasks
   * is recovered after it); below ERL 2, the session is reinstated.
   */
  connectionFailed(conn: IscsiConnection, err: IscsiInitiatorError): void {
    const erl = this.host.params().errorRecoveryLevel;
    this.host.note({ kind: 'connection-failed', cid: conn.cid, tasks: conn.inFlight, reason: err.message });
    if (erl < 2 || this.reinstating !== undefined) {
      this.reinstate(err);
      return;
    }
    const failedAt = Date.now();
    this.connectionsRecovering++;
    this.chain = this.chain
      .then(() => this.recoverConnection(conn, failedAt))
      .catch((e: unknown) => {
        this.reinstate(e instanceof IscsiInitiatorError ? e : new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', String(e), { cause: e }));
      })
      .finally(() => {
        this.connectionsRecovering--;
      });
  }

  /** Start (or join) session reinstatement. Without attempts configured, the session fails at once. */
  reinstate(err: IscsiInitiatorError): void {
    if (this.reinstating !== undefined || this.host.ending()) return;
    if (this.opts.reinstateAttempts <= 0) {
      this.host.fail(err);
      return;
    }
    this.reinstating = this.runReinstatement(err).finally(() => {
      this.reinstating = undefined;
    });
  }

  private async recoverConnection(failed: IscsiConnection, failedAt: number): Promise<void> {
    if (this.host.ending() || this.reinstating !== undefined) return;
    const p = this.host.params();
    // §6.2.2 / §11.15.2: wait Time2Wait before logging out or reconnecting;
    // the target keeps the tasks for Time2Retain after that.
    const deadline = failedAt + (p.defaultTime2Wait + p.defaultTime2Retain) * 1000;
    if (p.defaultTime2Wait > 0) await sleep(p.defaultTime2Wait * 1000);
    let via: IscsiConnection | undefined;
    for (let attempt = 0; via === undefined; attempt++) {
      if (this.host.ending() || this.reinstating !== undefined) return;
      if (Date.now() >= deadline || attempt >= 8) throw new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `connection ${failed.cid} could not be recovered within Time2Retain`);
      const live = this.host.pickLive();
      if (live !== undefined) {
        let resp: LogoutResponsePdu;
        try {
          resp = await this.host.logoutConnection(live, failed.cid, LogoutReason.REMOVE_CONNECTION_FOR_RECOVERY);
        } catch {
          continue; // that connection died too; its own recovery is queued after this one
        }
        if (resp.response === LogoutResponse.SUCCESS || resp.response === LogoutResponse.CID_NOT_FOUND) {
          this.host.dropConnection(failed);
          if (resp.time2Wait > 0) await sleep(Math.min(resp.time2Wait, 60) * 1000);
          via = live;
        } else {
          throw new IscsiInitiatorError('ERR_ISCSI_LOGOUT_FAILED', `logout for recovery of CID ${failed.cid} answered ${resp.response}`, { response: resp.response });
        }
      } else {
        // The only connection: log in again with its CID (§6.2.2 implicit logout).
        this.host.dropConnection(failed);
        try {
          via = await this.host.openConnection(failed.cid);
        } catch {
          await sleep(Math.min(this.opts.backoffMs * 2 ** attempt, 2000));
        }
      }
    }
    const tasks = this.host.tasksOf(failed);
    for (const task of tasks) {
      if (task.finished) continue;
      const to = this.host.pickLive() ?? via;
      await this.reassignOne(task, to);
      if (this.reinstating !== undefined || this.host.ending()) return;
    }
    this.connectionRecoveries++;
    this.host.note({ kind: 'connection-recovered', cid: failed.cid, via: via.cid, tasks: tasks.length, ms: Date.now() - failedAt });
    this.replenish();
  }

  /** TASK REASSIGN one task onto `to` (§11.5.1). */
  private async reassignOne(task: ScsiTask, to: IscsiConnection): Promise<void> {
    for (let i = 0; i <= ALLEGIANT_RETRIES; i++) {
      // Allegiance moves before the TMF goes out: the target may answer
      // with Data-In or R2Ts right behind the TMF response.
      this.host.bind(task, to);
      const expDataSN = task.reassignTo(to);
      let response: number;
      try {
        response = await this.host.reassign(to, task, expDataSN);
      } catch {
        // `to` died; the task is now allegiant to it and moves with its recovery.
        return;
      }
      switch (response) {
        case TmfResponse.FUNCTION_COMPLETE:
          return;
        case TmfResponse.TASK_DOES_NOT_EXIST:
          if (task.finished) return;
          // The command never reached the target (a CmdSN hole): retry it
          // with the same ITT and CmdSN on the new connection (§6.2.1). If
          // the target did see its CmdSN, the task is gone there (cleaned
          // up): run it again as a new command (SCSI retry semantics).
          if (this.host.targetHasSeen(task.cmdSN)) this.host.restart(task);
          else task.resend(to);
          return;
        case TmfResponse.TASK_STILL_ALLEGIANT:
          await sleep(ALLEGIANT_RETRY_MS);
          continue;
        default:
          throw new IscsiInitiatorError('ERR_ISCSI_TMF_FAILED', `TASK REASSIGN of task 0x${task.itt.toString(16)} answered ${response}`, { response });
      }
    }
    throw new IscsiInitiatorError('ERR_ISCSI_TMF_FAILED', `task 0x${task.itt.toString(16)} stayed allegiant to its old connection`);
  }

  /** Bring the session back to the number of connections it asked for (new CIDs). */
  replenish(): void {
    const missing = this.host.desiredConnections() - this.host.activeCount();
    for (let i = 0; i < missing; i++) {
      this.host.openConnection().catch(() => undefined);
    }
  }

  private async runReinstatement(err: IscsiInitiatorError): Promise<void> {
    const tasks = this.host.dropSession(err);
    let last: unknown = err;
    for (let attempt = 1; attempt <= this.opts.reinstateAttempts; attempt++) {
      if (this.host.ending()) return;
      this.host.note({ kind: 'reinstating', attempt, tasks: tasks.length, reason: (last as Error).message });
      // §6.1.5.1 / §11.15.2: Time2Wait before logging in again, then back off.
      const wait = attempt === 1 ? this.host.params().defaultTime2Wait * 1000 : Math.min(this.opts.backoffMs * 2 ** (attempt - 2), 5000);
      if (wait > 0) await sleep(wait);
      if (this.host.ending()) return;
      let tsih: number;
      try {
        tsih = await this.host.loginNewSession();
      } catch (e) {
        last = e;
        continue;
      }
      this.reinstatements++;
      this.host.requeue(tasks);
      this.host.note({ kind: 'reinstated', tsih, tasks: tasks.length });
      return;
    }
    const reason = (last as Error).message;
    this.host.note({ kind: 'recovery-failed', reason });
    this.host.fail(new IscsiInitiatorError('ERR_ISCSI_RECOVERY_FAILED', `session reinstatement failed after ${this.opts.reinstateAttempts} attempts: ${reason}`, { cause: last }));
  }
}
