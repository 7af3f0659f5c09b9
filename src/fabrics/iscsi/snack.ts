// SNACK Request (RFC 7143 §11.16) at ERL >= 1, target side.
//
// - Data/R2T (type 0): ITT names a task of this connection. A read sends the
//   Data-In with DataSN in [BegRun, BegRun + RunLength) again (RunLength 0 =
//   to the end) with their original DataSN, and the original StatSN on the
//   one that carried the status; a write sends its open R2Ts with R2TSN in
//   the run again.
// - Status (type 1): the responses with StatSN in the run, as they were
//   (retention.ts).
// - DataACK (type 2): we never set the A bit, so there is nothing to
//   release early; the SNACK is accepted and ignored (the status
//   acknowledgement frees the data, §6.1.4.2).
// - R-Data (type 3): all the data again, then a SCSI Response carrying the
//   SNACK Tag (§11.16.3).
//
// A SNACK we cannot satisfy (no such task, nothing kept) is answered with
// Reject SNACK REJECT (§11.17.1 reason 0x03).

import { SnackType, RejectReason } from '../../protocols/iscsi/constants.js';
import type { SnackRequestPdu } from '../../protocols/iscsi/pdu-types.js';
import type { FullFeature } from './full-feature.js';
import type { ScsiTask } from './scsi-command.js';

export function handleSnack(ffp: FullFeature, pdu: SnackRequestPdu, bhs: Buffer): void {
  const conn = ffp.conn;
  switch (pdu.type) {
    case SnackType.DATA_R2T: {
      const task = snackTask(ffp, pdu.itt);
      if (!task) return conn.reject(bhs, RejectReason.SNACK_REJECT);
      const n = task.write && task.phase !== 'done' ? task.resendR2ts(pdu.begRun, pdu.runLength) : task.resendData(pdu.begRun, pdu.runLength);
      if (n === 0) conn.reject(bhs, RejectReason.SNACK_REJECT);
      return;
    }
    case SnackType.STATUS: {
      const kept = conn.retention?.range(pdu.begRun, pdu.runLength) ?? [];
      if (kept.length === 0) return conn.reject(bhs, RejectReason.SNACK_REJECT);
      for (const p of kept) {
        // Same PDU, same StatSN; the window fields say where we stand now.
        if (p.expCmdSN !== undefined) {
          const w = conn.window();
          p.expCmdSN = w.expCmdSN;
          p.maxCmdSN = w.maxCmdSN;
        }
        conn.send(p);
      }
      return;
    }
    case SnackType.DATA_ACK:
      return;
    case SnackType.R_DATA: {
      const task = snackTask(ffp, pdu.itt);
      if (!task || !task.resendAll(pdu.targetTransferTag)) conn.reject(bhs, RejectReason.SNACK_REJECT);
      return;
    }
    default:
      conn.reject(bhs, RejectReason.PROTOCOL_ERROR);
  }
}

/**
 * The task a Data/R2T or R-Data SNACK names: normally one of this connection;
 * a SNACK that arrives on another connection of the session is honoured too,
 * the PDUs going out on the task's own connection (allegiance, §6.3).
 */
function snackTask(ffp: FullFeature, itt: number): ScsiTask | undefined {
  const here = ffp.task(itt);
  if (here) return here;
  const where = ffp.session.findTask(itt);
  return where.kind === 'live' ? where.task : undefined;
}
