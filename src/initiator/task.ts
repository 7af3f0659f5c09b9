// One SCSI task on the initiator side (RFC 7143 §11.3-§11.8): the command PDU
// with immediate data, unsolicited Data-Out up to FirstBurstLength, Data-Out
// sequences answering R2Ts, Data-In reassembly in DataSN order, and the final
// status (a SCSI Response or a phase-collapsed Data-In with the S bit).
//
// A task remembers its connection (connection allegiance, §7.1.3) so that a
// later MC/S or ERL 2 session can reassign it; for now a session has one.

import { RESERVED_TAG, TaskAttr } from '../protocols/iscsi/constants.js';
import { decodeSenseData } from '../protocols/iscsi/pdu-encode.js';
import { Opcode, type DataInPdu, type R2TPdu, type ScsiResponsePdu } from '../protocols/iscsi/pdu-types.js';
import type { IscsiConnection } from './connection.js';
import { IscsiInitiatorError } from './errors.js';
import { decodeSense, type SenseData } from './sense.js';

export interface ScsiRequest {
  lun: number;
  cdb: Buffer;
  /** Data-In: the number of bytes expected, or the buffer to read into (its length is the expected length). */
  dataIn?: number | Buffer;
  /** Data-Out: the bytes to write (expected length = its length). */
  dataOut?: Buffer;
  /** Task attribute (TaskAttr, default SIMPLE). */
  attr?: number;
  /** Aborting sends ABORT TASK (or drops a queued command); the promise rejects with ERR_ISCSI_ABORTED. */
  signal?: AbortSignal;
}

// Status byte values used by callers (SAM-5 §5.3.1).
export { ScsiStatus } from '../protocols/scsi/status.js';

export interface ScsiResult {
  /** SCSI status byte (ScsiStatus). A CHECK CONDITION is a result, not an exception. */
  status: number;
  /** Decoded sense data, when the target sent any. */
  sense: SenseData | undefined;
  /** Data-In received (a view of the read buffer, as long as what arrived). */
  data: Buffer;
  /** Residual count from the target (§11.4.5). */
  residualCount: number;
  underflow: boolean;
  overflow: boolean;
}

/** The negotiated limits a task needs for its Data-Out (from the session's NegotiatedParams). */
export interface WriteLimits {
  immediateData: boolean;
  initialR2T: boolean;
  firstBurstLength: number;
  maxBurstLength: number;
}

export class ScsiTask {
  cmdSN = 0;
  /** Connection allegiance (§7.1.3). */
  conn: IscsiConnection | undefined;
  /** True once the command PDU went out. */
  sent = false;
  /** An ABORT TASK is in progress for it. */
  aborting = false;

  private readonly readBuffer: Buffer | undefined;
  private received = 0;
  private nextDataSN = 0;
  private done = false;

  constructor(
    readonly itt: number,
    readonly req: ScsiRequest,
    private readonly resolve: (r: ScsiResult) => void,
    private readonly reject: (e: Error) => void,
  ) {
    const din = req.dataIn;
    this.readBuffer = din === undefined ? undefined : typeof din === 'number' ? (din > 0 ? Buffer.allocUnsafe(din) : undefined) : din;
  }

  get finished(): boolean {
    return this.done;
  }

  get expectedIn(): number {
    return this.readBuffer?.length ?? 0;
  }

  get expectedOut(): number {
    return this.req.dataOut?.length ?? 0;
  }

  /**
   * Send the command PDU, its immediate data and unsolicited Data-Out
   * (§11.3.1, §13.10, §13.11, §13.14). All data segments respect the
   * target's MaxRecvDataSegmentLength.
   */
  start(conn: IscsiConnection, cmdSN: number, limits: WriteLimits): void {
    this.conn = conn;
    this.cmdSN = cmdSN;
    this.sent = true;
    const out = this.req.dataOut;
    const mrdsl = conn.maxSendDataSegmentLength;
    let immediate = 0;
    let unsolicited = 0;
    if (out !== undefined && out.length > 0) {
      const firstBurst = Math.min(limits.firstBurstLength, out.length);
      if (limits.immediateData) immediate = Math.min(firstBurst, mrdsl);
      if (!limits.initialR2T) unsolicited = firstBurst;
      else unsolicited = immediate;
    }
    const followUp = unsolicited > immediate;
    conn.send(
      {
        opcode: Opcode.SCSI_COMMAND,
        immediate: false,
        // §11.3.1: F = 1 when no unsolicited Data-Out follows the command.
        final: !followUp,
        read: this.expectedIn > 0,
        write: this.expectedOut > 0,
        attr: this.req.attr ?? TaskAttr.SIMPLE,
        lun: this.req.lun,
        itt: this.itt,
        expectedDataTransferLength: this.expectedIn > 0 ? this.expectedIn : this.expectedOut,
        cmdSN,
        expStatSN: conn.expStatSN,
        cdb: this.req.cdb,
      },
      immediate > 0 ? (out as Buffer).subarray(0, immediate) : undefined,
    );
    if (followUp) this.sendDataOut(conn, RESERVED_TAG, immediate, unsolicited - immediate);
  }

  /** Answer an R2T with one Data-Out sequence (§11.8, §11.7). */
  onR2T(r2t: R2TPdu): void {
    const out = this.req.dataOut;
    const conn = this.conn;
    if (out === undefined || conn === undefined) {
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `R2T for task 0x${this.itt.toString(16)} that has no data to write`);
    }
    if (r2t.desiredDataTransferLength === 0 || r2t.bufferOffset + r2t.desiredDataTransferLength > out.length) {
      throw new IscsiInitiatorError(
        'ERR_ISCSI_PROTOCOL',
        `R2T asks for ${r2t.desiredDataTransferLength} bytes at ${r2t.bufferOffset} of a ${out.length}-byte write`,
      );
    }
    if (this.aborting) return;
    this.sendDataOut(conn, r2t.targetTransferTag, r2t.bufferOffset, r2t.desiredDataTransferLength);
  }

  /** One Data-Out sequence: DataSN from 0, F on the last PDU (§11.7.5). */
  private sendDataOut(conn: IscsiConnection, ttt: number, offset: number, length: number): void {
    const out = this.req.dataOut as Buffer;
    const mrdsl = conn.maxSendDataSegmentLength;
    let dataSN = 0;
    const end = offset + length;
    for (let off = offset; off < end; off += mrdsl) {
      const n = Math.min(mrdsl, end - off);
      conn.send(
        {
          opcode: Opcode.DATA_OUT,
          final: off + n >= end,
          lun: this.req.lun,
          itt: this.itt,
          targetTransferTag: ttt,
          expStatSN: conn.expStatSN,
          dataSN: dataSN++,
          bufferOffset: off,
        },
        out.subarray(off, off + n),
      );
    }
  }

  /** Take one Data-In PDU; returns true when it completed the task (S bit). */
  onDataIn(pdu: DataInPdu): boolean {
    // §11.7.5: Data-In DataSN counts from 0 per command; DataPDUInOrder=Yes at ERL 0.
    if (pdu.dataSN !== this.nextDataSN) {
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `Data-In DataSN ${pdu.dataSN}, expected ${this.nextDataSN} (task 0x${this.itt.toString(16)})`);
    }
    this.nextDataSN++;
    const len = pdu.data.length;
    if (len > 0) {
      const buf = this.readBuffer;
      if (buf === undefined || pdu.bufferOffset + len > buf.length) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `Data-In of ${len} bytes at ${pdu.bufferOffset} overruns the ${this.expectedIn}-byte read`);
      }
      if (pdu.bufferOffset !== this.received) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `Data-In at offset ${pdu.bufferOffset}, expected ${this.received} (DataPDUInOrder)`);
      }
      pdu.data.copy(buf, pdu.bufferOffset);
      this.received += len;
    }
    if (!pdu.statusPresent) return false;
    this.finish({
      status: pdu.status,
      sense: undefined,
      data: this.dataView(),
      residualCount: pdu.residualCount,
      underflow: pdu.underflow,
      overflow: pdu.overflow,
    });
    return true;
  }

  /** The SCSI Response (§11.4). */
  onResponse(pdu: ScsiResponsePdu): void {
    if (pdu.response !== 0) {
      this.fail(new IscsiInitiatorError('ERR_ISCSI_TARGET_FAILURE', `target failure (response 0x${pdu.response.toString(16)}) for task 0x${this.itt.toString(16)}`, { response: pdu.response }));
      return;
    }
    let sense: SenseData | undefined;
    if (pdu.data.length > 0) {
      try {
        const raw = decodeSenseData(pdu.data);
        if (raw.length > 0) sense = decodeSense(Buffer.from(raw));
      } catch {
        sense = undefined;
      }
    }
    this.finish({
      status: pdu.status,
      sense,
      data: this.dataView(),
      residualCount: pdu.residualCount,
      underflow: pdu.underflow,
      overflow: pdu.overflow,
    });
  }

  private dataView(): Buffer {
    return this.readBuffer === undefined ? Buffer.alloc(0) : this.readBuffer.subarray(0, this.received);
  }

  private finish(r: ScsiResult): void {
    if (this.done) return;
    this.done = true;
    this.resolve(r);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.reject(err);
  }
}
