// An initiator session (RFC 7143 §4): ISID + TSIH, the session-wide CmdSN
// window, the tasks in flight keyed by ITT, and its connections (MC/S: the
// leading login, then more with the same ISID/TSIH and their own CIDs;
// commands go to the least-loaded one and keep their allegiance, §7.1.3).
// Error recovery: ERL 1 within a connection (SNACK for Data-In and status
// holes, retry after a Reject for a digest error), ERL 2 connection recovery
// and ERL 0 session reinstatement (recovery.ts).

import { hostname } from 'node:os';

import { AsyncEvent, LogoutReason, LogoutResponse, RESERVED_TAG, TmfFunction, TmfResponse } from '../protocols/iscsi/constants.js';
import { Opcode, type AsyncMessagePdu, type LogoutResponsePdu } from '../protocols/iscsi/pdu-types.js';
import { seqLt } from '../protocols/iscsi/seq.js';
import { encodeTextKeys, parseTextKeys, TextAccumulator } from '../protocols/iscsi/text.js';
import { IscsiConnection } from './connection.js';
import { allocateCid, type ConnectionInfo, type SessionInfo } from './connection-pool.js';
import { IscsiInitiatorError } from './errors.js';
import type { FaultHooks } from './fault.js';
import { login, randomIsid, type LoginKeyOptions, type LoginResult } from './login.js';
import { SessionRecovery, type RecoveryHost } from './recovery.js';
import { CommandWindow, type AsyncEventInfo, type Starter } from './command-window.js';
import { formatPortal, type ChapSecret } from './url.js';

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
  /** Fault injection for tests (see fault.ts); every connection of the session gets these hooks. */
  faults?: FaultHooks;
  /**
   * MC/S: connections to open (asks MaxConnections=N; opens min(N, the
   * negotiated MaxConnections)). Default 1.
   */
  connections?: number;
  /**
   * Session reinstatement attempts (ERL 0 recovery) before pending commands
   * fail with ERR_ISCSI_RECOVERY_FAILED. Default 3 when `connections` or
   * `errorRecoveryLevel` is given, else 0 (a lost connection fails its
   * commands with ERR_ISCSI_DISCONNECTED and closes the session).
   */
  reinstateAttempts?: number;
  /** First back-off between reinstatement attempts (doubles, capped at 5 s; default 200 ms). */
  reinstateBackoffMs?: number;
}

/** Our default IQN: iqn.2024-01.org.lunkit:initiator:<hostname>. */
export function defaultInitiatorName(): string {
  const host = hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-') || 'host';
  return `iqn.2024-01.org.lunkit:initiator:${host}`;
}

export type { AsyncEventInfo, SessionEvents } from './command-window.js';

/** ERL 1: a hole still open this long after its SNACK is asked for again. */
const SNACK_RETRY_MS = 400;

export class IscsiSession extends CommandWindow {
  readonly isid: number;
  readonly targetName: string | undefined;
  readonly sessionType: 'Normal' | 'Discovery';
  tsih = 0;
  targetAlias: string | undefined;
  targetPortalGroupTag: number | undefined;

  private nextCid = 0;
  /** Bumped by each reinstatement: a login that started before it belongs to the old session. */
  private generation = 0;
  private wanted = 1;
  private keepalive: NodeJS.Timeout | undefined;
  private snackTimer: NodeJS.Timeout | undefined;
  private readonly pinging = new Set<IscsiConnection>();
  private readonly recovery: SessionRecovery;

  private constructor(private readonly opts: SessionOptions) {
    super();
    this.isid = randomIsid();
    this.targetName = opts.targetName;
    this.sessionType = opts.sessionType ?? (opts.targetName === undefined ? 'Discovery' : 'Normal');
    const explicit = opts.connections !== undefined || opts.errorRecoveryLevel !== undefined;
    this.recovery = new SessionRecovery(this.recoveryHost(), {
      reinstateAttempts: opts.reinstateAttempts ?? (explicit ? 3 : 0),
      backoffMs: opts.reinstateBackoffMs ?? 200,
    });
  }

  /** Connect, log in and enter the full feature phase; with `connections: N`, open the further connections too. */
  static async open(opts: SessionOptions): Promise<IscsiSession> {
    const s = new IscsiSession(opts);
    await s.loginLeading();
    try {
      await s.openExtraConnections();
    } catch (err) {
      s.destroy();
      throw err;
    }
    return s;
  }

  /** The leading login (a new session: TSIH 0, §6.3). */
  private async loginLeading(): Promise<void> {
    this.tsih = 0;
    await this.loginConnection(undefined);
  }

  /** After the leading login: min(connections, negotiated MaxConnections) - 1 more. */
  private async openExtraConnections(): Promise<void> {
    const asked = this.sessionType === 'Normal' ? Math.max(1, this.opts.connections ?? 1) : 1;
    this.wanted = Math.min(asked, this.params.maxConnections);
    while (this.activeConnections().length < this.wanted) await this.loginConnection(undefined);
  }

  /**
   * Log in one connection: the leading one when TSIH is 0, else one more of
   * this session (same ISID and TSIH, its own CID, only connection keys,
   * §4.2.2.x). `cid` reinstates that CID (ERL 2, §6.2.2).
   */
  private async loginConnection(cid: number | undefined): Promise<IscsiConnection> {
    const o = this.opts;
    const leading = this.tsih === 0;
    const gen = this.generation;
    const inUse = new Set(this.conns.map((c) => c.cid));
    const useCid = cid ?? allocateCid(inUse, this.nextCid);
    if (cid === undefined) this.nextCid = (useCid + 1) & 0xffff;
    const conn = await IscsiConnection.connect({ host: o.host, port: o.port, cid: useCid, connectTimeoutMs: o.connectTimeoutMs, faults: o.faults });
    let res: LoginResult;
    try {
      res = await login(conn, {
        ...o,
        maxConnections: o.maxConnections ?? (this.sessionType === 'Normal' ? Math.max(1, o.connections ?? 1) : undefined),
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
    if (this.closedWith !== undefined || gen !== this.generation || (!leading && this.tsih !== res.tsih)) {
      conn.destroy();
      throw this.closeError();
    }
    if (leading) {
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
    } else {
      this.updateWindow(res.expCmdSN, res.maxCmdSN);
    }
    const erl = this.params.errorRecoveryLevel;
    conn.setDigests(res.params.headerDigest, res.params.dataDigest);
    conn.setMaxRecvDataSegmentLength(res.params.maxRecvDataSegmentLength);
    conn.maxSendDataSegmentLength = res.params.peerMaxRecvDataSegmentLength;
    conn.strictStatSN = erl >= 1;
    if (erl >= 1) conn.onDataDigestError = (pdu) => this.onDataDigestError(conn, pdu);
    conn.onPdu = (pdu) => this.dispatch(conn, pdu);
    conn.onClose = (err) => this.connectionClosed(conn, err);
    this.conns.push(conn);
    this.startKeepalive();
    if (erl >= 1 && this.snackTimer === undefined) {
      this.snackTimer = setInterval(() => this.resendOverdueSnacks(SNACK_RETRY_MS), SNACK_RETRY_MS / 2);
      this.snackTimer.unref();
    }
    this.pump();
    return conn;
  }

  /** Session reinstatements (ERL 0) and connection recoveries (ERL 2) so far. */
  get recoveries(): { reinstatements: number; connectionRecoveries: number } {
    return { reinstatements: this.recovery.reinstatements, connectionRecoveries: this.recovery.connectionRecoveries };
  }

  /** The test seam: the first live connection (fault hooks, socket cuts). */
  get connection(): IscsiConnection {
    return this.conns.find((c) => c.state === 'active' && !c.closed) ?? this.conns[0];
  }

  /** The connection objects themselves (tests: cut one with `cutSocket()`). */
  get connectionObjects(): readonly IscsiConnection[] {
    return this.conns;
  }

  /** The connections as plain data (`lunkit sessions --initiator`). */
  get connections(): ConnectionInfo[] {
    return this.conns.map((c) => ({
      cid: c.cid,
      state: c.state,
      localAddress: c.localAddress,
      localPort: c.localPort,
      remoteAddress: c.host,
      remotePort: c.port,
      inFlight: c.inFlight,
      expStatSN: c.expStatSN,
      headerDigest: c.headerDigestOn,
      dataDigest: c.dataDigestOn,
    }));
  }

  /** The session as plain JSON (target, portal, TSIH, ISID, ERL, connections, parameters). */
  info(): SessionInfo {
    const p = this.params;
    return {
      targetName: this.targetName,
      portal: formatPortal(this.opts.host, this.opts.port),
      tsih: this.tsih,
      isid: this.isid.toString(16).padStart(12, '0'),
      sessionType: this.sessionType,
      errorRecoveryLevel: p.errorRecoveryLevel,
      state: this.closedWith !== undefined ? 'closed' : this.recovery.recovering ? 'recovering' : 'open',
      reinstatements: this.recovery.reinstatements,
      connectionRecoveries: this.recovery.connectionRecoveries,
      inFlight: this.tasks.size,
      cmdSN: this.cmdSN,
      expCmdSN: this.expCmdSN,
      maxCmdSN: this.maxCmdSN,
      connections: this.connections,
      params: {
        HeaderDigest: p.headerDigest ? 'CRC32C' : 'None',
        DataDigest: p.dataDigest ? 'CRC32C' : 'None',
        MaxConnections: p.maxConnections,
        ErrorRecoveryLevel: p.errorRecoveryLevel,
        InitialR2T: p.initialR2T,
        ImmediateData: p.immediateData,
        MaxRecvDataSegmentLength: p.maxRecvDataSegmentLength,
        TargetMaxRecvDataSegmentLength: p.peerMaxRecvDataSegmentLength,
        MaxBurstLength: p.maxBurstLength,
        FirstBurstLength: p.firstBurstLength,
        MaxOutstandingR2T: p.maxOutstandingR2T,
        DefaultTime2Wait: p.defaultTime2Wait,
        DefaultTime2Retain: p.defaultTime2Retain,
        AuthMethod: p.authMethod,
      },
    };
  }

  // ---------------------------------------------------------------------------
  // MC/S: adding and removing connections

  /**
   * Log in one more connection of this session (new CID, same ISID/TSIH)
   * while I/O runs. Throws ERR_ISCSI_MAX_CONNECTIONS beyond the negotiated
   * MaxConnections.
   */
  async addConnection(): Promise<ConnectionInfo> {
    if (this.closedWith !== undefined || this.loggingOut) throw this.closeError();
    if (this.sessionType !== 'Normal' || this.conns.filter((c) => c.state !== 'closed').length >= this.params.maxConnections) {
      throw new IscsiInitiatorError('ERR_ISCSI_MAX_CONNECTIONS', `the session may have at most ${this.params.maxConnections} connection(s)`);
    }
    this.wanted++;
    let conn: IscsiConnection;
    try {
      conn = await this.loginConnection(undefined);
    } catch (err) {
      this.wanted--;
      throw err;
    }
    return this.connections.find((c) => c.cid === conn.cid) as ConnectionInfo;
  }

  /**
   * Close connection `cid` with Logout reason 1 (§11.14.1) while the others
   * go on: it takes no new commands, its tasks finish (up to `timeoutMs`),
   * then it logs out. The last connection cannot be removed (use logout()).
   */
  async removeConnection(cid: number, timeoutMs = 30_000): Promise<void> {
    const conn = this.conns.find((c) => c.cid === cid && c.state === 'active');
    if (conn === undefined) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `no active connection with CID ${cid}`);
    if (this.activeConnections().length <= 1) throw new IscsiInitiatorError('ERR_ISCSI_MAX_CONNECTIONS', 'cannot remove the last connection; log the session out instead');
    conn.state = 'draining';
    this.wanted = Math.max(1, this.wanted - 1);
    const deadline = Date.now() + timeoutMs;
    while (conn.inFlight > 0 && !conn.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (conn.closed) return;
    const resp = await this.logoutOn(conn, conn.cid, LogoutReason.CLOSE_CONNECTION, Math.max(1000, deadline - Date.now()));
    conn.state = 'closed';
    this.dropConnection(conn);
    await conn.end();
    if (resp.response !== LogoutResponse.SUCCESS) {
      throw new IscsiInitiatorError('ERR_ISCSI_LOGOUT_FAILED', `logout of CID ${cid} answered ${resp.response}`, { response: resp.response });
    }
  }

  /** Logout Request (§11.14) on `via` for connection `cid`. */
  private logoutOn(via: IscsiConnection, cid: number, reason: number, timeoutMs = 10_000): Promise<LogoutResponsePdu> {
    return this.immediateRequest<LogoutResponsePdu>(timeoutMs, (conn, itt, resolve) => {
      conn.send({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, final: true, reasonCode: reason, itt, cid, cmdSN: this.cmdSN, expStatSN: conn.expStatSN });
      return (pdu) => {
        if (pdu.opcode !== Opcode.LOGOUT_RESPONSE) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a Logout Response');
        resolve(pdu);
      };
    }, reason === LogoutReason.CLOSE_SESSION, via);
  }

  private dropConnection(conn: IscsiConnection): void {
    if (conn.state !== 'closed') conn.state = 'closed';
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    if (this.cursor >= this.conns.length) this.cursor = 0;
    if (!conn.closed) conn.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `connection ${conn.cid} logged out for recovery`));
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
      let bound: IscsiConnection | undefined;
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
      // Every PDU of the exchange goes on one connection (the first one's).
      const send = (data: Buffer | undefined, ttt: number): void =>
        this.withCmdSN((cmdSN, picked) => {
          const conn = bound ?? picked;
          bound = conn;
          conn.send({ opcode: Opcode.TEXT_REQUEST, immediate: false, final: true, continue: false, lun: 0, itt, targetTransferTag: ttt, cmdSN, expStatSN: conn.expStatSN }, data);
        });
      this.pending.set(itt, {
        get conn() {
          return bound;
        },
        fail: (e) => finish(e),
        onPdu: (pdu) => {
          if (pdu.opcode !== Opcode.TEXT_RESPONSE) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a Text Response');
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
  ping(timeoutMs = 15_000, data?: Buffer, via?: IscsiConnection): Promise<number> {
    const t0 = performance.now();
    return this.immediateRequest<number>(timeoutMs, (conn, itt, resolve) => {
      conn.send({ opcode: Opcode.NOP_OUT, immediate: true, final: true, lun: 0, itt, targetTransferTag: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: conn.expStatSN }, data);
      return (pdu) => {
        if (pdu.opcode !== Opcode.NOP_IN) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'expected a NOP-In');
        resolve(performance.now() - t0);
      };
    }, false, via);
  }

  /**
   * Close the session with a Logout Request (§11.14, reason "close the
   * session"), then its connections. Outstanding commands reject with
   * ERR_ISCSI_SESSION_CLOSED. Idempotent.
   */
  async logout(timeoutMs = 10_000): Promise<void> {
    if (this.closedWith !== undefined || this.loggingOut) return;
    this.loggingOut = true;
    let response: number | undefined;
    try {
      const via = this.requireConnection();
      response = (await this.logoutOn(via, via.cid, LogoutReason.CLOSE_SESSION, timeoutMs)).response;
    } finally {
      const err = new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'session logged out');
      this.shutdown(err);
      await Promise.all(this.conns.map((c) => c.end()));
    }
    if (response !== LogoutResponse.SUCCESS) {
      throw new IscsiInitiatorError('ERR_ISCSI_LOGOUT_FAILED', `logout answered ${response}`, { response });
    }
  }

  /** Drop the session without a logout (sockets destroyed). */
  destroy(err?: IscsiInitiatorError): void {
    this.shutdown(err ?? new IscsiInitiatorError('ERR_ISCSI_SESSION_CLOSED', 'session destroyed'));
    for (const c of this.conns) c.destroy(this.closedWith);
  }

  protected onAsync(conn: IscsiConnection, pdu: AsyncMessagePdu): void {
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
        // §11.9.1: log out within Parameter3 seconds: this connection if
        // others remain (MC/S), else the session.
        if (this.activeConnections().length > 1 && conn.state === 'active') void this.removeConnection(conn.cid, Math.max(1, pdu.parameter3) * 1000).catch(() => undefined);
        else void this.logout(Math.max(1, pdu.parameter3) * 1000).catch(() => undefined);
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

  // ---------------------------------------------------------------------------
  // Connection loss and recovery

  private connectionClosed(conn: IscsiConnection, err: IscsiInitiatorError): void {
    const e = err.code === 'ERR_ISCSI_SESSION_CLOSED' || err.code === 'ERR_ISCSI_DISCONNECTED' ? err : new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', err.message, { cause: err });
    this.pinging.delete(conn);
    // Immediate requests (ping, TMF, Text, Logout) on it fail now; SCSI tasks wait for recovery.
    for (const [, p] of [...this.pending]) if (p.task === undefined && p.conn === conn) p.fail(e);
    if (this.closedWith !== undefined || this.suspended) return; // gone, or reinstatement dropped it
    if (conn.state === 'closed' || this.loggingOut) {
      // Logged out on purpose: anything still allegiant to it cannot finish.
      for (const t of [...this.tasks.values()]) if (t.conn === conn) t.fail(e);
      if (this.conns.every((c) => c.closed)) this.shutdown(e);
      return;
    }
    conn.state = 'failed';
    this.recovery.connectionFailed(conn, e);
  }

  private recoveryHost(): RecoveryHost {
    return {
      params: () => this.params,
      ending: () => this.closedWith !== undefined || this.loggingOut,
      pickLive: () => this.pickConnection(),
      activeCount: () => this.conns.filter((c) => c.state === 'active' && !c.closed).length,
      desiredConnections: () => this.wanted,
      openConnection: (cid) => this.loginConnection(cid),
      dropConnection: (conn) => this.dropConnection(conn),
      tasksOf: (conn) => this.sortedTasks((t) => t.conn === conn && t.sent),
      bind: (task, conn) => this.bind(task, conn),
      logoutConnection: (via, cid, reason) => this.logoutOn(via, cid, reason),
      reassign: (via, task, expDataSN) =>
        this.taskManagement(TmfFunction.TASK_REASSIGN, { lun: task.req.lun, referencedTaskTag: task.itt, refCmdSN: task.cmdSN, expDataSN }, 10_000, via),
      targetHasSeen: (cmdSN) => seqLt(cmdSN, this.window.expCmdSN),
      restart: (task) => {
        this.unbind(task);
        task.resetForRetry();
        this.waiting.unshift((cmdSN, conn) => this.startTask(task, cmdSN, conn));
        this.pump();
      },
      dropSession: (err) => {
        this.suspended = true;
        this.generation++;
        for (const c of this.conns) {
          c.state = 'closed';
          c.destroy(err);
        }
        this.conns.length = 0;
        this.cursor = 0;
        for (const [, p] of [...this.pending]) if (p.task === undefined) p.fail(err);
        const tasks = this.sortedTasks((t) => t.sent);
        for (const t of tasks) {
          this.unbind(t);
          t.resetForRetry();
        }
        return tasks;
      },
      loginNewSession: async () => {
        // §6.3.5: same ISID, TSIH 0: the target reinstates (ends the old session).
        this.tsih = 0;
        await this.loginLeading();
        try {
          await this.openExtraConnections();
        } catch {
          // Fewer connections than asked is still a session.
        }
        return this.tsih;
      },
      requeue: (tasks) => {
        const starters: Starter[] = tasks.map((task) => (cmdSN, conn) => this.startTask(task, cmdSN, conn));
        this.waiting.unshift(...starters);
        this.suspended = false;
        this.pump();
      },
      fail: (err) => {
        this.suspended = false;
        this.destroy(err);
      },
      note: (event) => this.emit('recovery', event),
    };
  }

  protected onShutdown(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    if (this.snackTimer !== undefined) clearInterval(this.snackTimer);
  }

  private startKeepalive(): void {
    const interval = this.opts.keepaliveIntervalMs ?? 30_000;
    if (interval <= 0 || this.keepalive !== undefined) return;
    const timeout = this.opts.keepaliveTimeoutMs ?? 15_000;
    this.keepalive = setInterval(() => {
      if (this.closedWith !== undefined || this.loggingOut) return;
      // Each connection is pinged on its own: a silent one is a dead one (§6.2.2 detection).
      for (const conn of this.activeConnections()) {
        if (this.pinging.has(conn) || Date.now() - conn.lastReceive < interval) continue;
        this.pinging.add(conn);
        this.ping(timeout, undefined, conn).then(
          () => {
            this.pinging.delete(conn);
          },
          (err: unknown) => {
            this.pinging.delete(conn);
            if (err instanceof IscsiInitiatorError && err.code === 'ERR_ISCSI_TIMEOUT') {
              conn.destroy(new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', `target did not answer a NOP-Out within ${timeout} ms`, { cause: err }));
            }
          },
        );
      }
    }, Math.max(100, Math.min(interval, 1000)));
    this.keepalive.unref();
  }
}
