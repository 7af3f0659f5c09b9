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
import type { ScsiTask } from './scsi-command.js';
import type { PduSink } from './hosts.js';
import type { IscsiSession } from './session.js';
import type { StatusRetention } from './retention.js';

/** What the SNACK handler needs of its connection (FullFeature provides it). */
export interface SnackHost extends PduSink {
  readonly session: Pick<IscsiSession, 'findTask'>;
  /** Status PDUs kept until acknowledged (ERL >= 1). */
  readonly retention: StatusRetention | undefined;
  /** A task of this connection. */
  task(itt: number): ScsiTask | undefined;
  reject(bhs: Buffer, reason: number): void;
}

export function handleSnack(host: SnackHost, pdu: SnackRequestPdu, bhs: Buffer): void {
  switch (pdu.type) {
    case SnackType.DATA_R2T: {
      const task = snackTask(host, pdu.itt);
      if (!task) return host.reject(bhs, RejectReason.SNACK_REJECT);
      const n = task.write && task.phase !== 'done' ? task.resendR2ts(pdu.begRun, pdu.runLength) : task.resendData(pdu.begRun, pdu.runLength);
      if (n === 0) host.reject(bhs, RejectReason.SNACK_REJECT);
      return;
    }
    case SnackType.STATUS: {
      const kept = host.retention?.range(pdu.begRun, pdu.runLength) ?? [];
      if (kept.length === 0) return host.reject(bhs, RejectReason.SNACK_REJECT);
      for (const p of kept) {
        // Same PDU, same StatSN; the window fields say where we stand now.
        if (p.expCmdSN !== undefined) {
          const w = host.window();
          p.expCmdSN = w.expCmdSN;
          p.maxCmdSN = w.maxCmdSN;
        }
        host.send(p);
      }
      return;
    }
    case SnackType.DATA_ACK:
      return;
    case SnackType.R_DATA: {
      const task = snackTask(host, pdu.itt);
      if (!task || !task.resendAll(pdu.targetTransferTag)) host.reject(bhs, RejectReason.SNACK_REJECT);
      return;
    }
    default:
      host.reject(bhs, RejectReason.PROTOCOL_ERROR);
  }
}

/**
 * The task a Data/R2T or R-Data SNACK names: normally one of this connection;
 * a SNACK that arrives on another connection of the session is honoured too,
 * the PDUs going out on the task's own connection (allegiance, §6.3).
 */
function snackTask(host: SnackHost, itt: number): ScsiTask | undefined {
  const here = host.task(itt);
  if (here) return here;
  const where = host.session.findTask(itt);
  return where.kind === 'live' ? where.task : undefined;
}
