// One SCSI task on the initiator side (RFC 7143 §11.3-§11.8): the command PDU
// with immediate data, unsolicited Data-Out up to FirstBurstLength, Data-Out
// sequences answering R2Ts, Data-In reassembly in DataSN order, and the final
// status (a SCSI Response or a phase-collapsed Data-In with the S bit).
//
// A task remembers its connection (connection allegiance, §7.1.3); ERL 2
// moves it with TASK REASSIGN (reassignTo), ERL 0 reinstatement restarts it
// in a new session (resetForRetry), ERL 1 fills DataSN holes by SNACK: a
// status that arrives while Data-In is missing is held until the hole fills.

import { LunkitError } from '../protocols/errors.js';
import { RESERVED_TAG, TaskAttr } from '../protocols/iscsi/constants.js';
import { decodeSenseData } from '../protocols/iscsi/pdu-encode.js';
import { Opcode, type DataInPdu, type R2TPdu, type ScsiResponsePdu } from '../protocols/iscsi/pdu-types.js';
import type { IscsiConnection } from './connection.js';
import { commandLoad } from './connection-pool.js';
import { IscsiInitiatorError } from './errors.js';
import { decodeSense, type SenseData } from './sense.js';
import { SeqTracker, type SnRun } from './snack.js';

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
  /** ERL >= 1: DataSN holes are recovered by SNACK instead of failing the task. */
  tolerateGaps = false;
  /** Times the command was sent again (ERL 0 reinstatement, ERL 1 Reject, ERL 2 retry). */
  retries = 0;
  /** ERL 1: the StatSN of a status held back (Data-In still missing) on its connection. */
  heldStatSN: { conn: IscsiConnection; statSN: number } | undefined;

  private readonly readBuffer: Buffer | undefined;
  /** One past the highest byte of Data-In received (the data view's length). */
  private received = 0;
  private readonly dataSNs = new SeqTracker(0);
  /** A status that arrived while Data-In PDUs before it were still missing. */
  private held: ScsiResult | undefined;
  private limits: WriteLimits | undefined;
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

  /** Its weight for connection picking (connection-pool.ts commandLoad). */
  get load(): number {
    return commandLoad(this.expectedIn + this.expectedOut);
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
    this.limits = limits;
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

  /**
   * Send the command again with the same ITT and CmdSN (§6.2.1 retry): after
   * a Reject for a data digest error in its immediate data (ERL 1), or when
   * TASK REASSIGN says the target never saw it (ERL 2).
   */
  resend(conn: IscsiConnection): void {
    if (this.limits === undefined) throw new LunkitError('ERR_INTERNAL', 'resend() of a task never started');
    this.retries++;
    this.dataSNs.resetTo(0);
    this.received = 0;
    this.held = undefined;
    this.start(conn, this.cmdSN, this.limits);
  }

  /** Next DataSN expected (TASK REASSIGN's ExpDataSN, §11.5.1: 0 for writes). */
  get expDataSN(): number {
    return this.expectedIn > 0 ? this.dataSNs.expected : 0;
  }

  /**
   * ERL 2: move allegiance to `conn` before TASK REASSIGN goes out on it;
   * Data-In resumes at ExpDataSN (the target resends from there), writes
   * continue on the R2Ts the target sends for what it lacks.
   */
  reassignTo(conn: IscsiConnection): number {
    const exp = this.expDataSN;
    this.conn = conn;
    this.dataSNs.resetTo(exp);
    this.held = undefined;
    return exp;
  }

  /** ERL 0 reinstatement: the command starts over in a new session (new CmdSN). */
  resetForRetry(): void {
    this.conn = undefined;
    this.sent = false;
    this.aborting = false;
    this.retries++;
    this.dataSNs.resetTo(0);
    this.received = 0;
    this.held = undefined;
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

  /**
   * ERL >= 1: a Data-In whose data digest failed. Returns the DataSN runs to
   * ask for again (the discarded one, and any hole it revealed).
   */
  discardDataIn(dataSN: number): SnRun[] {
    if (this.done) return [];
    const runs = this.dataSNs.takeUnrecovered();
    if (this.dataSNs.discard(dataSN)) runs.push(...this.dataSNs.takeUnrecovered(), { begRun: dataSN, runLength: 1 });
    return mergeRuns(runs);
  }

  /** ERL 1: DataSN holes whose SNACK went unanswered for `afterMs`: to be asked again. */
  overdueSnacks(now: number, afterMs: number): SnRun[] {
    return this.done ? [] : this.dataSNs.overdue(now, afterMs);
  }

  /** Data-In PDUs known to be missing (ERL 1 waits for their resend). */
  get missingDataIn(): number {
    return this.dataSNs.missingCount;
  }

  /**
   * Take one Data-In PDU. `done` is true when it completed the task (S bit
   * and no hole left); `snack` lists DataSN runs found missing (ERL >= 1).
   */
  onDataIn(pdu: DataInPdu): { done: boolean; snack: SnRun[] } {
    // §11.7.5: Data-In DataSN counts from 0 per command; DataPDUInOrder=Yes.
    if (!this.tolerateGaps && pdu.dataSN !== this.dataSNs.next) {
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `Data-In DataSN ${pdu.dataSN}, expected ${this.dataSNs.next} (task 0x${this.itt.toString(16)})`);
    }
    const acc = this.dataSNs.accept(pdu.dataSN);
    // ERL >= 1: a hole means Data-In PDUs were lost: ask for them (§6.1.4.1).
    const snack: SnRun[] = acc.gap !== undefined ? this.dataSNs.takeUnrecovered() : [];
    // A resend of something we already have (after a SNACK or TASK REASSIGN): nothing new.
    if (!acc.fresh) return { done: false, snack };
    const len = pdu.data.length;
    if (len > 0) {
      const buf = this.readBuffer;
      if (buf === undefined || pdu.bufferOffset + len > buf.length) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `Data-In of ${len} bytes at ${pdu.bufferOffset} overruns the ${this.expectedIn}-byte read`);
      }
      if (!this.tolerateGaps && pdu.bufferOffset !== this.received) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `Data-In at offset ${pdu.bufferOffset}, expected ${this.received} (DataPDUInOrder)`);
      }
      pdu.data.copy(buf, pdu.bufferOffset);
      this.received = Math.max(this.received, pdu.bufferOffset + len);
    }
    if (!pdu.statusPresent) return { done: this.releaseHeld(), snack };
    this.finishOrHold({
      status: pdu.status,
      sense: undefined,
      data: this.dataView(),
      residualCount: pdu.residualCount,
      underflow: pdu.underflow,
      overflow: pdu.overflow,
    });
    return { done: this.done, snack };
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
    this.finishOrHold({
      status: pdu.status,
      sense,
      data: this.dataView(),
      residualCount: pdu.residualCount,
      underflow: pdu.underflow,
      overflow: pdu.overflow,
    });
  }

  /** Finish now, or hold the status until the Data-In holes are filled (ERL 1). */
  private finishOrHold(r: ScsiResult): void {
    if (this.dataSNs.complete) this.finish(r);
    else this.held = r;
  }

  private releaseHeld(): boolean {
    const h = this.held;
    if (h === undefined || !this.dataSNs.complete) return false;
    this.held = undefined;
    this.finish({ ...h, data: this.dataView() });
    return true;
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

/** Sort runs and merge overlapping/adjacent ones. */
function mergeRuns(runs: SnRun[]): SnRun[] {
  const sorted = [...runs].sort((a, b) => a.begRun - b.begRun);
  const out: SnRun[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.begRun <= last.begRun + last.runLength) {
      last.runLength = Math.max(last.runLength, r.begRun + r.runLength - last.begRun);
    } else {
      out.push({ ...r });
    }
  }
  return out;
}
