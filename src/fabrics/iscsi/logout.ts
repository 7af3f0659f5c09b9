// Logout Request/Response (RFC 7143 §11.14, §11.15).
//
// - Reason 0 (close session): the session ends once the response is flushed.
// - Reason 1 (close connection): this connection, or another one of the
//   session named by CID; the session ends with its last connection.
// - Reason 2 (remove connection for recovery, ERL 2 only, §6.2.2): the named
//   connection is dropped if still up and its tasks, held by the session,
//   become reassignable with TASK REASSIGN. The response carries
//   Time2Wait/Time2Retain (§11.15.2, §11.15.3).

import { Opcode, type LogoutRequestPdu, type LogoutResponsePdu } from '../../protocols/iscsi/pdu-types.js';
import { LogoutReason, LogoutResponse } from '../../protocols/iscsi/constants.js';
import type { PduSink, SessionConnection, TaskTable } from './hosts.js';
import type { IscsiSession } from './session.js';

/** What the Logout handler needs of the connection the request came on (FullFeature provides it). */
export interface LogoutHost extends TaskTable, PduSink {
  /** That connection, as its session knows it. */
  readonly conn: SessionConnection & { end(reason: string): void };
  readonly session: Pick<IscsiSession, 'connections' | 'recovery' | 'params' | 'connectionFailed' | 'close' | 'endIfIdle'>;
  /** Take no more requests on this connection. */
  stopAccepting(): void;
  /** Hold this connection's tasks for recovery (ERL 2). */
  detach(): void;
  /** Count and log a Logout that ends the connection or the session. */
  loggedOut(reasonCode: number): void;
}

export function handleLogout(host: LogoutHost, pdu: LogoutRequestPdu): void {
  const conn = host.conn;
  const session = host.session;
  let response: number = LogoutResponse.SUCCESS;
  let closing = true;
  /** Reason 2 on the connection it removes: this one's tasks are held, then it closes. */
  let holdOwn = false;
  if (pdu.reasonCode === LogoutReason.CLOSE_CONNECTION && pdu.cid !== conn.cid) {
    const other = [...session.connections].find((c) => c.cid === pdu.cid);
    if (!other) {
      response = LogoutResponse.CID_NOT_FOUND;
      closing = false;
    } else {
      other.destroy('logged out by another connection');
      closing = false;
    }
  } else if (pdu.reasonCode === LogoutReason.REMOVE_CONNECTION_FOR_RECOVERY) {
    closing = false;
    if (!session.recovery) {
      response = LogoutResponse.RECOVERY_NOT_SUPPORTED;
    } else if (pdu.cid === conn.cid) {
      holdOwn = true;
    } else {
      // A live connection with that CID is dropped first: a failure, so the
      // session holds its tasks (connection.ts), then they are released.
      const other = [...session.connections].find((c) => c.cid === pdu.cid);
      if (other) other.destroy('removed for recovery');
      if (!session.recovery.release(pdu.cid)) response = LogoutResponse.CID_NOT_FOUND;
    }
  } else if (pdu.reasonCode !== LogoutReason.CLOSE_SESSION && pdu.reasonCode !== LogoutReason.CLOSE_CONNECTION) {
    response = LogoutResponse.CLEANUP_FAILED;
    closing = false;
  }
  if (closing || holdOwn) {
    // Stop accepting commands; tasks still running are aborted when the
    // session closes (SAM-5: the I_T nexus is lost).
    host.stopAccepting();
  }
  const erl2 = session.recovery !== undefined;
  const w = host.window();
  host.send<LogoutResponsePdu>({
    opcode: Opcode.LOGOUT_RESPONSE,
    itt: pdu.itt,
    response,
    statSN: host.takeStatSN(),
    expCmdSN: w.expCmdSN,
    maxCmdSN: w.maxCmdSN,
    time2Wait: erl2 ? session.params.defaultTime2Wait : 0,
    time2Retain: erl2 ? session.params.defaultTime2Retain : 0,
  });
  if (holdOwn) {
    session.connections.delete(conn);
    if (session.connectionFailed(conn.cid, host)) host.detach();
    session.recovery?.release(conn.cid);
    conn.end('removed for recovery');
    return;
  }
  if (closing) {
    host.loggedOut(pdu.reasonCode);
    // The session ends now (its nexus closes, tasks still running are
    // aborted); this connection is taken out first so that its Logout
    // Response is flushed by end() rather than cut by a destroy.
    session.connections.delete(conn);
    if (pdu.reasonCode === LogoutReason.CLOSE_SESSION) session.close('logout');
    else session.endIfIdle('logout');
    conn.end('logout');
  }
}
