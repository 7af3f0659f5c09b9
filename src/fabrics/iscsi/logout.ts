// Logout Request/Response (RFC 7143 §11.14, §11.15). At ERL 0 with one
// connection per session, closing the connection or the session both end
// the session once the response is flushed. Removing a connection for
// recovery needs ERL 2: "connection recovery not supported".

import { Opcode, type LogoutRequestPdu, type LogoutResponsePdu } from '../../protocols/iscsi/pdu-types.js';
import { LogoutReason, LogoutResponse } from '../../protocols/iscsi/constants.js';
import type { FullFeature } from './full-feature.js';

export function handleLogout(ffp: FullFeature, pdu: LogoutRequestPdu): void {
  const conn = ffp.conn;
  let response: number = LogoutResponse.SUCCESS;
  let closing = true;
  if (pdu.reasonCode === LogoutReason.CLOSE_CONNECTION && pdu.cid !== conn.cid) {
    const other = [...ffp.session.connections].find((c) => c.cid === pdu.cid);
    if (!other) {
      response = LogoutResponse.CID_NOT_FOUND;
      closing = false;
    } else {
      other.destroy('logged out by another connection');
      closing = false;
    }
  } else if (pdu.reasonCode === LogoutReason.REMOVE_CONNECTION_FOR_RECOVERY) {
    response = LogoutResponse.RECOVERY_NOT_SUPPORTED;
    closing = false;
  } else if (pdu.reasonCode !== LogoutReason.CLOSE_SESSION && pdu.reasonCode !== LogoutReason.CLOSE_CONNECTION) {
    response = LogoutResponse.CLEANUP_FAILED;
    closing = false;
  }
  if (closing) {
    // Stop accepting commands; tasks still running are aborted when the
    // session closes (SAM-5: the I_T nexus is lost).
    ffp.stopAccepting();
  }
  const w = conn.window();
  conn.send<LogoutResponsePdu>({
    opcode: Opcode.LOGOUT_RESPONSE,
    itt: pdu.itt,
    response,
    statSN: conn.takeStatSN(),
    expCmdSN: w.expCmdSN,
    maxCmdSN: w.maxCmdSN,
    time2Wait: 0,
    time2Retain: 0,
  });
  if (closing) {
    conn.ctx.stats.logout(conn, ffp.session, pdu.reasonCode);
    conn.ctx.log.info?.('iSCSI logout', { tsih: ffp.session.tsih, initiator: ffp.session.initiatorName, reason: pdu.reasonCode });
    // The session ends now (its nexus closes, tasks still running are
    // aborted); this connection is taken out first so that its Logout
    // Response is flushed by end() rather than cut by a destroy.
    ffp.session.connections.delete(conn);
    if (pdu.reasonCode === LogoutReason.CLOSE_SESSION || ffp.session.connections.size === 0) ffp.session.close('logout');
    conn.end('logout');
  }
}
