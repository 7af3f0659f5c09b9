// The PDUs that answer a completed SCSI task (RFC 7143 §11.4, §11.7): Data-In
// cut to the initiator's MaxRecvDataSegmentLength in sequences of at most
// MaxBurstLength, the status riding in the last Data-In when there is no
// sense (phase collapse, §11.7.4), or a SCSI Response. Pure functions of the
// result and the connection's limits, so a SNACK or TASK REASSIGN resend
// (ERL >= 1) reproduces the original PDUs. scsi-command.ts owns the task.

import { Opcode, type DataInPdu, type Pdu, type ScsiResponsePdu } from '../../protocols/iscsi/pdu-types.js';
import { RESERVED_TAG, ScsiResponseCode } from '../../protocols/iscsi/constants.js';
import { encodeSenseData, type EncodablePdu } from '../../protocols/iscsi/pdu.js';

/**
 * ERL >= 1: a completed task's result, kept until its status is acknowledged
 * so Data-In and status can be sent again (SNACK, TASK REASSIGN). The read
 * data is the core's own buffer: nothing is copied to keep it.
 */
export interface RetainedResult {
  status: number;
  sense: Buffer | undefined;
  dataIn: Buffer | undefined;
  /** DataSN of the first Data-In. */
  dataInBase: number;
  overflow: boolean;
  underflow: boolean;
  residualCount: number;
  /** Status rides in the last Data-In (no sense). */
  collapse: boolean;
}

/** What sending Data-In needs of the connection (TaskHost satisfies it). */
export interface DataInHost {
  send<P extends Pdu>(pdu: EncodablePdu<P>, onWritten?: () => void): void;
  window(): { expCmdSN: number; maxCmdSN: number };
  takeStatSN(): number;
  readonly peerMaxRecvDataSegmentLength: number;
  readonly params: { readonly maxBurstLength: number };
}

/** The SCSI Response PDU of a result. `expDataSN`: Data-In PDUs sent for the task so far. */
export function scsiResponsePdu(
  res: RetainedResult,
  task: { itt: number; expDataSN: number; window: { expCmdSN: number; maxCmdSN: number } },
  statSN: number,
  snackTag: number,
): EncodablePdu<ScsiResponsePdu> {
  return {
    opcode: Opcode.SCSI_RESPONSE,
    itt: task.itt,
    bidiOverflow: false,
    bidiUnderflow: false,
    overflow: res.overflow,
    underflow: res.underflow,
    response: ScsiResponseCode.COMMAND_COMPLETED,
    status: res.status,
    snackTag,
    statSN,
    expCmdSN: task.window.expCmdSN,
    maxCmdSN: task.window.maxCmdSN,
    expDataSN: task.expDataSN,
    bidiReadResidualCount: 0,
    residualCount: res.residualCount,
    data: res.sense !== undefined ? encodeSenseData(res.sense) : undefined,
  };
}

/**
 * Send Data-In PDUs number [fromPdu, toPdu) of the read data (numbers
 * relative to the first; DataSN = dataInBase + number). `status`: 'new'
 * takes a StatSN for the last PDU, a number reuses that StatSN (SNACK),
 * undefined sends none. `onLastWritten` runs once the socket has written the
 * last of them (at once when none went out). Returns how many PDUs went out,
 * how many the data makes up to where it stopped, and the StatSN used.
 */
export function sendDataIn(
  host: DataInHost,
  task: { itt: number; lunRaw: Buffer },
  res: RetainedResult,
  fromPdu: number,
  toPdu: number,
  status: 'new' | number | undefined,
  onLastWritten?: () => void,
): { sent: number; pdus: number; statSN: number | undefined } {
  const data = res.dataIn ?? Buffer.alloc(0);
  const seg = Math.max(512, host.peerMaxRecvDataSegmentLength);
  const burst = Math.max(seg, host.params.maxBurstLength);
  let offset = 0;
  let burstUsed = 0;
  let n = 0;
  let sent = 0;
  let usedStatSN: number | undefined;
  while (offset < data.length && n < toPdu) {
    const len = Math.min(seg, data.length - offset, burst - burstUsed);
    const last = offset + len >= data.length;
    burstUsed += len;
    const endOfBurst = last || burstUsed >= burst;
    if (endOfBurst) burstUsed = 0;
    if (n >= fromPdu) {
      const withStatus = last && status !== undefined;
      let statSN = 0;
      if (withStatus) {
        statSN = status === 'new' ? host.takeStatSN() : status;
        usedStatSN = statSN;
      }
      const w = host.window();
      const pdu: EncodablePdu<DataInPdu> = {
        opcode: Opcode.DATA_IN,
        final: endOfBurst,
        itt: task.itt,
        acknowledge: false,
        overflow: withStatus ? res.overflow : false,
        underflow: withStatus ? res.underflow : false,
        statusPresent: withStatus,
        status: withStatus ? res.status : 0,
        lunRaw: task.lunRaw,
        targetTransferTag: RESERVED_TAG,
        statSN,
        expCmdSN: w.expCmdSN,
        maxCmdSN: w.maxCmdSN,
        dataSN: res.dataInBase + n,
        bufferOffset: offset,
        residualCount: withStatus ? res.residualCount : 0,
        data: data.subarray(offset, offset + len),
      };
      const lastSent = last || n + 1 >= toPdu;
      if (lastSent && onLastWritten !== undefined) host.send(pdu, onLastWritten);
      else host.send(pdu);
      sent++;
    }
    offset += len;
    n++;
  }
  if (sent === 0) onLastWritten?.();
  return { sent, pdus: n, statSN: usedStatSN };
}
