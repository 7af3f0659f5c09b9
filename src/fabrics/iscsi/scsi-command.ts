// SCSI Command, Data-Out, R2T, Data-In and SCSI Response (RFC 7143 §11.3-11.8).
//
// Write data path: immediate data (ImmediateData=Yes, up to FirstBurstLength),
// then unsolicited Data-Out (InitialR2T=No, when the command's F bit is 0) up
// to FirstBurstLength, then R2Ts for the rest: each asks for at most
// MaxBurstLength and at most MaxOutstandingR2T are open at once (§13.17).
// Every Data-Out is checked (DataSN in sequence, BufferOffset where the
// sequence stands, length inside the burst).
//
// Prepare step (LIO's write_pending): when the command is delivered in CmdSN
// order, ScsiCore.prepare() sees the CDB before any data is kept or asked
// for. `respond` (LBA out of range, write protected, reservation conflict,
// transfer over the core's MAX_TRANSFER_BYTES...): no R2T is sent, nothing is
// allocated, unsolicited data still arriving is read and dropped, and the
// response goes out after the last unsolicited PDU (§11.4: a target that
// fails a command while data is still expected waits for the F bit of the
// last expected sequence before it answers). `collect`:
// only the first `length` bytes are kept, in one buffer from the
// connection's pool (or a view of the immediate data when it holds them
// all); the rest of the Expected Data Transfer Length is still solicited
// (§11.8: the initiator must be asked for all of it) and dropped. Data that
// arrives before delivery (a command waiting behind a CmdSN gap) is kept as
// the views the framer delivered and copied in after prepare(). The buffer
// goes back to the pool once submit() has resolved (ENGINE_API: the fabric
// collects all write data before submit).
//
// Read data path: the core reads into a buffer from the connection's pool
// (ScsiCommand.dataInBuffer) that goes back once the socket's write callback
// for the last Data-In carrying it has fired (ERL 0 only: at ERL >= 1 the
// data is kept for SNACK until acknowledged, so the core allocates it). The
// data is cut into Data-In PDUs of at most the initiator's
// MaxRecvDataSegmentLength, in sequences of at most MaxBurstLength (F on the
// last PDU of each); the payloads are subarrays, never copies. When there is
// no sense, the status rides in the last Data-In (S bit, phase collapse,
// §11.7.4); otherwise a SCSI Response with the sense follows.

import { Opcode, type DataOutPdu, type Pdu, type R2TPdu, type ScsiCommandPdu } from '../../protocols/iscsi/pdu-types.js';
import { RESERVED_TAG, RejectReason, TaskAttr as WireAttr } from '../../protocols/iscsi/constants.js';
import type { EncodablePdu } from '../../protocols/iscsi/pdu.js';
import { scsiResponsePdu, sendDataIn, type RetainedResult } from './data-in.js';
import type { DataDirection, NexusHandle, ScsiResponse, TaskAttr } from '../../core/types.js';
import { ScsiStatus } from '../../core/types.js';
import { MAX_TRANSFER_BYTES, type PrepareResult } from '../../core/index.js';
import type { IscsiCore, IscsiLogger } from './config.js';
import type { SessionParams } from './session-params.js';
import type { BufferPool } from '../../util/buffer-pool.js';
import type { BudgetWaiter, SessionWriteBudget } from './write-budget.js';
import { TaskWriteData, copyKept, type EarlyData } from './early-data.js';

const EMPTY: Buffer = Buffer.alloc(0);

export function taskAttr(attr: number): TaskAttr {
  switch (attr) {
    case WireAttr.ORDERED:
      return 'ordered';
    case WireAttr.HEAD_OF_QUEUE:
      return 'head-of-queue';
    case WireAttr.ACA:
      return 'aca';
    default:
      // Untagged is treated as simple (RFC 7143 §11.3.1 note; SAM-5).
      return 'simple';
  }
}

interface R2tState {
  ttt: number;
  r2tSN: number;
  offset: number;
  length: number;
  received: number;
  nextDataSN: number;
}

export type TaskPhase = 'collecting' | 'ready' | 'submitted' | 'done';

/** The negotiated parameters a task's data phases follow. */
export type TaskParams = Pick<SessionParams, 'maxBurstLength' | 'firstBurstLength' | 'immediateData' | 'initialR2T' | 'maxOutstandingR2T'>;

/**
 * What a task needs from the connection it answers on (FullFeature provides
 * it; TASK REASSIGN moves a task to another host). Nothing here reaches past
 * the host: the task never sees the connection, session or server objects.
 */
export interface TaskHost {
  /** Encode and queue one PDU; `onWritten` once the socket took its last byte (or nothing was written). */
  send<P extends Pdu>(pdu: EncodablePdu<P>, onWritten?: () => void): void;
  /** ExpCmdSN/MaxCmdSN to put in a PDU now. */
  window(): { expCmdSN: number; maxCmdSN: number };
  takeStatSN(): number;
  /** StatSN shown without taking one (R2T). */
  readonly currentStatSN: number;
  readonly params: TaskParams;
  /** What the initiator accepts per PDU (Data-In cut). */
  readonly peerMaxRecvDataSegmentLength: number;
  /** ERL >= 1: keep results until the status is acknowledged. */
  readonly retaining: boolean;
  /** The session's core nexus. */
  readonly nexus: NexusHandle | undefined;
  readonly core: Pick<IscsiCore, 'submit' | 'prepare'>;
  readonly log: IscsiLogger;
  /** The connection's Data-In and Data-Out buffers. */
  readonly buffers: BufferPool;
  /** The connection is gone; the task keeps its result for TASK REASSIGN (ERL 2). */
  readonly connectionGone: boolean;
  /** The session's write data budget (write-budget.ts); undefined: unbounded (unit tests). */
  readonly writeBudget: SessionWriteBudget | undefined;
  /** The socket's queued output is over the high-water mark: a reply now would wait in memory. */
  readonly sendBacklogged: boolean;
  /** The reply of a task that kept its CmdSN slot while backlogged has been written. */
  replyFlushed(task: ScsiTask): void;
  /** ERL >= 1: bytes of read data a finished task keeps for SNACK (+) or lets go (-). */
  retainedData(delta: number): void;
  allocateTtt(): number;
  bindTtt(ttt: number, task: ScsiTask): void;
  unbindTtt(ttt: number): void;
  taskFinished(task: ScsiTask): void;
}

export class ScsiTask implements BudgetWaiter {
  readonly itt: number;
  readonly lun: number;
  readonly lunRaw: Buffer;
  readonly cdb: Buffer;
  readonly attr: TaskAttr;
  readonly edtl: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly cmdSN: number;
  phase: TaskPhase = 'collecting';
  /** CmdSN order reached (or immediate): may go to the core once data is in. */
  delivered = false;
  /** Sent as an immediate command (counted in IscsiSession.immediateInFlight until answered). */
  immediate = false;
  /** Its CmdSN slot (and immediate count) was given back (FullFeature.releaseSlot). */
  slotReleased = false;
  /** The reply went out while the socket was backlogged: the slot is kept until it is written. */
  slotHeldForFlush = false;
  /** prepare() accepted the write but the budget was full: the bytes it will keep, once granted. */
  private budgetWait: number | undefined;
  /** Read data bytes kept for SNACK, reported to the host's retention count. */
  private retainedBytes = 0;
  aborted = false;
  /** prepare() has run (a write with data, delivered in CmdSN order). */
  private prepared = false;
  /** prepare() refused the command: its response, sent once no unsolicited data is due. */
  private refusal: ScsiResponse | undefined;
  /** Data that came before the landing buffer, and the bytes counted against the write budget (early-data.ts). */
  private readonly data = new TaskWriteData(() => this.host.writeBudget);
  /** Ranges lost to a data digest error before prepare() (ERL >= 1): asked for again after it. */
  private lostEarly: Array<{ offset: number; length: number }> | undefined;
  /** The bytes the core uses (prepare's `length`), once prepared; bytes beyond are dropped. */
  private collected: Buffer | undefined;
  /** The pool buffer under `collected`, and the pool it goes back to. */
  private collectLease: Buffer | undefined;
  /** The pool buffer lent to the core for Data-In (ScsiCommand.dataInBuffer). */
  private dataInLease: Buffer | undefined;
  private leasePool: BufferPool | undefined;
  /** Bytes received contiguously from offset 0 (DataPDUInOrder=Yes). */
  private received = 0;
  /** End of the unsolicited area (immediate + unsolicited Data-Out). */
  private unsolicitedEnd = 0;
  private unsolicitedOpen = false;
  private unsolicitedDataSN = 0;
  private readonly r2ts = new Map<number, R2tState>();
  private nextR2tOffset = 0;
  /** Lowest offset of a transfer dropped unfinished (TASK REASSIGN restarts there). */
  private restartOffset = Number.MAX_SAFE_INTEGER;
  private r2tSN = 0;
  /** R2Ts and Data-Ins sent: the SCSI Response's ExpDataSN (§11.4.8). */
  private dataPduCount = 0;
  /** StatSN of the status last sent (ERL >= 1 bookkeeping). */
  statSN: number | undefined;
  /** ERL >= 1: the result, until its status is acknowledged. */
  private result: RetainedResult | undefined;
  /** Callbacks waiting for the task to end (live LUN removal drains); rarely set. */
  private doneWaiters: Array<() => void> | undefined;
  /**
   * Set when the target itself aborts the task in the core (a LUN removed
   * live): the initiator then gets CHECK CONDITION with this sense rather
   * than silence, since no TMF of its own asked for the abort.
   */
  private abortSense: Buffer | undefined;

  constructor(
    private host: TaskHost,
    pdu: ScsiCommandPdu,
  ) {
    this.itt = pdu.itt;
    this.lun = pdu.lun;
    this.lunRaw = Buffer.from(pdu.lunRaw);
    // The CDB is a view into the socket chunk; keep our own 16+ bytes.
    this.cdb = Buffer.from(pdu.cdb);
    this.attr = taskAttr(pdu.attr);
    this.edtl = pdu.expectedDataTransferLength >>> 0;
    this.read = pdu.read;
    this.write = pdu.write;
    this.cmdSN = pdu.cmdSN;
  }

  get direction(): DataDirection {
    if (this.read && this.write) return 'bidi';
    if (this.write) return 'write';
    if (this.read) return 'read';
    return 'none';
  }

  /**
   * Take the command's immediate data and decide the data phases. Returns a
   * Reject reason when the PDU breaks the negotiated rules.
   */
  start(pdu: ScsiCommandPdu): number | undefined {
    const p = this.host.params;
    const imm = pdu.data;
    if (!this.write) {
      // Data on a command without W is malformed (§11.3.1).
      if (imm.length > 0) return RejectReason.PROTOCOL_ERROR;
      this.phase = 'ready';
      return undefined;
    }
    if (imm.length > 0 && !p.immediateData) return RejectReason.PROTOCOL_ERROR;
    const firstBurst = Math.min(p.firstBurstLength, this.edtl);
    if (imm.length > firstBurst) return RejectReason.PROTOCOL_ERROR;
    if (!pdu.final && p.initialR2T) return RejectReason.PROTOCOL_ERROR;
    if (this.edtl === 0) {
      this.phase = 'ready';
      return undefined;
    }
    // Nothing is allocated or asked for before prepare(): the immediate
    // data stays the framer's view until then.
    if (imm.length > 0) this.data.immediate(imm, this.host.buffers.isScratch(imm));
    this.received = imm.length;
    this.unsolicitedEnd = imm.length;
    if (!pdu.final && imm.length < this.edtl) {
      // §11.3.1 F bit 0: unsolicited Data-Out follows, up to FirstBurstLength.
      this.unsolicitedOpen = true;
      this.unsolicitedEnd = firstBurst;
    }
    this.nextR2tOffset = this.received;
    return undefined;
  }

  /**
   * The prepare step (LIO's write_pending), run once the command is
   * delivered in CmdSN order: the core decides from the CDB whether the
   * write's data is wanted before any of it is kept or asked for. No-op for
   * commands without Data-Out.
   */
  prepare(): void {
    if (!this.write || this.prepared || this.budgetWait !== undefined || this.phase !== 'collecting') return;
    const nexus = this.host.nexus;
    const verdict: PrepareResult =
      nexus === undefined
        ? { kind: 'collect', length: 0 }
        : this.host.core.prepare({
            nexus,
            lun: this.lun,
            cdb: this.cdb,
            tag: this.itt,
            attr: this.attr,
            expectedLength: this.edtl,
            direction: this.direction,
          });
    if (verdict.kind === 'respond') {
      // Refused: nothing is collected and no R2T goes out; unsolicited data
      // still due is read and dropped, and the response waits for its end.
      this.prepared = true;
      this.lostEarly = undefined;
      this.data.releaseAll();
      this.refusal = verdict.response;
      if (!this.unsolicitedOpen) this.complete(verdict.response);
      return;
    }
    // One cap for fabric and core: never more than the core ever takes.
    const keep = Math.min(verdict.length, this.edtl, MAX_TRANSFER_BYTES);
    this.budgetWait = keep;
    // Over budget: no buffer and no R2T until bytes are released (write-budget.ts).
    if (!this.data.reserve(keep - this.data.chargedBytes, this)) return;
    this.collect(keep);
  }

  /** BudgetWaiter: bytes still wanted (0: none more, go on), -1 once the task no longer waits. */
  wantedBytes(): number {
    if (this.budgetWait === undefined || this.phase !== 'collecting' || this.aborted) return -1;
    return Math.max(0, this.budgetWait - this.data.chargedBytes);
  }

  /** BudgetWaiter: `n` bytes were reserved for this task. */
  granted(n: number): void {
    this.data.granted(n);
    const keep = this.budgetWait;
    if (keep === undefined || this.phase !== 'collecting') return;
    this.collect(keep);
  }

  /** Accepted and within budget: the landing buffer, then R2Ts for what is missing. */
  private collect(keep: number): void {
    this.budgetWait = undefined;
    this.prepared = true;
    const lost = this.lostEarly;
    this.lostEarly = undefined;
    // Early data is copied in: what the task holds from now on is the landing buffer.
    this.collected = this.landingBuffer(keep, this.data.take(keep));
    if (lost) for (const l of lost) this.openR2t(l.offset, l.length);
    if (!this.unsolicitedOpen) this.issueR2ts();
  }

  /**
   * The command is not delivered yet (it waits behind a CmdSN gap): immediate
   * data that the framer put in scratch memory gets memory of its own now,
   * before the next PDU reuses the scratch. Rare; the usual command is
   * prepared before its PDU handler returns.
   */
  keepEarlyData(): void {
    if (!this.prepared) this.data.keep();
  }

  /** Write data bytes this task counts against the budget now (stats, tests). */
  get chargedBytes(): number {
    return this.data.chargedBytes;
  }

  /** Accepted by the core but waiting for write budget (no buffer, no R2T yet). */
  get waitingForBudget(): boolean {
    return this.budgetWait !== undefined;
  }

  /** The buffer the kept bytes land in, with what came early copied in. */
  private landingBuffer(keep: number, early: EarlyData[] | undefined): Buffer {
    if (keep === 0) return EMPTY;
    const first = early?.[0];
    // The immediate data (in a socket chunk) holds everything the core uses: keep the view, no copy.
    if (first !== undefined && !first.transient && first.offset === 0 && first.data.length >= keep) return first.data.subarray(0, keep);
    const pool = this.host.buffers;
    const lease = pool.lease(keep);
    this.collectLease = lease;
    this.leasePool = pool;
    const buf = lease.length === keep ? lease : lease.subarray(0, keep);
    if (early) for (const e of early) copyKept(e.data, buf, e.offset);
    return buf;
  }

  /** Data for [offset, offset + data.length): kept (or stashed before prepare), or dropped. */
  private store(offset: number, data: Buffer): void {
    if (!this.prepared) {
      // Before prepare() or while waiting for budget: a copy of its own, counted against the budget.
      this.data.stash(offset, data);
      return;
    }
    const dst = this.collected;
    if (dst !== undefined && offset < dst.length) copyKept(data, dst, offset);
  }

  /**
   * Where the framer should assemble a Data-Out segment of `length` bytes at
   * `offset` that straddles socket chunks, so that it is copied once, straight
   * to its place: the slice of the command's buffer, or scratch memory for
   * bytes that are dropped anyway. undefined: let the framer allocate (not
   * prepared yet, or the segment crosses the end of the kept bytes).
   */
  dataOutTarget(offset: number, length: number): Buffer | undefined {
    if (this.phase !== 'collecting' || !this.prepared) return undefined;
    const dst = this.collected;
    if (this.refusal !== undefined || dst === undefined || offset >= dst.length) return this.host.buffers.scratch(length);
    // Only our own pool buffer is written into (never the immediate data's view of a socket chunk).
    if (offset + length > dst.length || this.collectLease === undefined) return undefined;
    return dst.subarray(offset, offset + length);
  }

  /**
   * Is all write data in? `received` is the highest offset reached; open
   * R2Ts (recovery R2Ts included) mean a range is still missing.
   */
  get dataComplete(): boolean {
    if (!this.write || this.edtl === 0) return true;
    return this.prepared && this.refusal === undefined && this.received >= this.edtl && this.r2ts.size === 0 && !this.unsolicitedOpen;
  }

  /**
   * One Data-Out for this task. Returns undefined when accepted, or an error
   * description when the sequence is broken (the task then fails).
   */
  dataOutPdu(pdu: DataOutPdu): string | undefined {
    if (this.phase !== 'collecting') return 'Data-Out for a command that expects none';
    const len = pdu.data.length;
    if (pdu.targetTransferTag === RESERVED_TAG) {
      if (!this.unsolicitedOpen) return 'unsolicited Data-Out not expected';
      if (pdu.dataSN !== this.unsolicitedDataSN) return `DataSN ${pdu.dataSN}, expected ${this.unsolicitedDataSN}`;
      if (pdu.bufferOffset !== this.received) return `BufferOffset ${pdu.bufferOffset}, expected ${this.received}`;
      if (pdu.bufferOffset + len > this.unsolicitedEnd) return 'unsolicited data beyond FirstBurstLength';
      this.store(pdu.bufferOffset, pdu.data);
      this.received += len;
      this.unsolicitedDataSN++;
      if (pdu.final) this.unsolicitedDone();
      return undefined;
    }
    const r = this.r2ts.get(pdu.targetTransferTag);
    if (!r) return `unknown Target Transfer Tag 0x${pdu.targetTransferTag.toString(16)}`;
    if (pdu.dataSN !== r.nextDataSN) return `DataSN ${pdu.dataSN}, expected ${r.nextDataSN}`;
    const at = r.offset + r.received;
    if (pdu.bufferOffset !== at) return `BufferOffset ${pdu.bufferOffset}, expected ${at}`;
    if (r.received + len > r.length) return 'Data-Out beyond the R2T';
    this.store(pdu.bufferOffset, pdu.data);
    r.received += len;
    r.nextDataSN++;
    if (r.offset + r.received > this.received) this.received = r.offset + r.received;
    if (pdu.final) {
      if (r.received !== r.length) return `burst ended after ${r.received} of ${r.length} bytes`;
      this.r2ts.delete(r.ttt);
      this.host.unbindTtt(r.ttt);
      this.issueR2ts();
    }
    return undefined;
  }

  /** The unsolicited sequence ended (F bit): R2Ts for the rest, or the refusal's response. */
  private unsolicitedDone(): void {
    this.unsolicitedOpen = false;
    this.nextR2tOffset = this.received;
    if (!this.prepared) return;
    if (this.refusal !== undefined) this.complete(this.refusal);
    else this.issueR2ts();
  }

  /** Open R2Ts until MaxOutstandingR2T are out or everything is asked for (§11.8). */
  private issueR2ts(): void {
    const p = this.host.params;
    const maxOut = Math.max(1, p.maxOutstandingR2T);
    while (this.r2ts.size < maxOut && this.nextR2tOffset < this.edtl) {
      const length = Math.min(p.maxBurstLength, this.edtl - this.nextR2tOffset);
      this.openR2t(this.nextR2tOffset, length);
      this.nextR2tOffset += length;
    }
  }

  /** Ask for [offset, offset + length) with a new R2T (also the recovery R2T of §7.8). */
  private openR2t(offset: number, length: number): void {
    const ttt = this.host.allocateTtt();
    const r: R2tState = { ttt, r2tSN: this.r2tSN++, offset, length, received: 0, nextDataSN: 0 };
    this.r2ts.set(ttt, r);
    this.host.bindTtt(ttt, this);
    this.dataPduCount++;
    this.sendR2t(r);
  }

  private sendR2t(r: R2tState): void {
    const host = this.host;
    const w = host.window();
    host.send<R2TPdu>({
      opcode: Opcode.R2T,
      itt: this.itt,
      lunRaw: this.lunRaw,
      targetTransferTag: r.ttt,
      // R2T carries StatSN without taking one (§11.8.3).
      statSN: host.currentStatSN,
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
      r2tSN: r.r2tSN,
      bufferOffset: r.offset,
      desiredDataTransferLength: r.length,
    });
  }

  /**
   * ERL >= 1 (§7.8, §6.7): a Data-Out arrived with a bad data digest. Its
   * header is sound, so the sequence moves on as if it had arrived and the
   * lost range is asked for again at once with a recovery R2T. Returns false
   * when the header itself does not fit the sequence (the task then fails).
   */
  lostDataOut(pdu: DataOutPdu): boolean {
    if (this.phase !== 'collecting') return false;
    const len = pdu.data.length;
    if (pdu.targetTransferTag === RESERVED_TAG) {
      if (!this.unsolicitedOpen || pdu.dataSN !== this.unsolicitedDataSN || pdu.bufferOffset !== this.received) return false;
      if (pdu.bufferOffset + len > this.unsolicitedEnd) return false;
      this.received += len;
      this.unsolicitedDataSN++;
      if (len > 0) this.askAgain(pdu.bufferOffset, len);
      if (pdu.final) this.unsolicitedDone();
      return true;
    }
    const r = this.r2ts.get(pdu.targetTransferTag);
    if (!r || pdu.dataSN !== r.nextDataSN || pdu.bufferOffset !== r.offset + r.received || r.received + len > r.length) return false;
    r.received += len;
    r.nextDataSN++;
    if (r.offset + r.received > this.received) this.received = r.offset + r.received;
    if (len > 0) this.askAgain(pdu.bufferOffset, len);
    if (pdu.final) {
      if (r.received !== r.length) return false;
      this.r2ts.delete(r.ttt);
      this.host.unbindTtt(r.ttt);
      this.issueR2ts();
    }
    return true;
  }

  /** A range lost to a digest error: a recovery R2T now, after prepare() if not yet prepared, none when refused. */
  private askAgain(offset: number, length: number): void {
    if (!this.prepared) (this.lostEarly ??= []).push({ offset, length });
    else if (this.refusal === undefined) this.openR2t(offset, length);
  }

  /** R2T SNACK (§11.16.1 type 0 on a write): send open R2Ts with R2TSN in [begRun, begRun + runLength) again. */
  resendR2ts(begRun: number, runLength: number): number {
    let n = 0;
    for (const r of this.r2ts.values()) {
      if (r.r2tSN < begRun || (runLength !== 0 && r.r2tSN >= begRun + runLength)) continue;
      this.sendR2t(r);
      n++;
    }
    return n;
  }

  /** Forget open R2Ts (the task ends early, or moves to another connection). */
  dropTransfers(): void {
    for (const r of this.r2ts.values()) {
      this.host.unbindTtt(r.ttt);
      if (r.offset < this.restartOffset) this.restartOffset = r.offset;
    }
    if (this.unsolicitedOpen && this.received < this.restartOffset) this.restartOffset = this.received;
    if (this.nextR2tOffset < this.restartOffset) this.restartOffset = this.nextR2tOffset;
    this.r2ts.clear();
    this.unsolicitedOpen = false;
  }

  /** Hand the command to the core once delivered in CmdSN order and all data is in. */
  maybeSubmit(): void {
    if (this.phase === 'collecting' && this.dataComplete) this.phase = 'ready';
    if (this.phase !== 'ready' || !this.delivered || this.aborted) return;
    const nexus = this.host.nexus;
    if (!nexus) return;
    this.phase = 'submitted';
    const dataOut = this.write && this.edtl > 0 ? this.collected : undefined;
    // A READ's data lands in pooled memory (ERL 0: nothing keeps it after the write callback).
    let dataInBuffer: Buffer | undefined;
    if (this.read && !this.write && this.edtl > 0 && !this.host.retaining) {
      const pool = this.host.buffers;
      dataInBuffer = pool.tryLease(this.edtl);
      if (dataInBuffer !== undefined) {
        this.dataInLease = dataInBuffer;
        this.leasePool = pool;
      }
    }
    this.host.core
      .submit({
        nexus,
        lun: this.lun,
        cdb: this.cdb,
        tag: this.itt,
        attr: this.attr,
        expectedLength: this.edtl,
        direction: this.direction,
        dataOut,
        dataInBuffer,
      })
      .then(
        (r) => {
          this.releaseCollected();
          this.complete(r);
        },
        (err: unknown) => {
          // submit() never rejects by contract; if it does, end this task only.
          this.host.log.error?.('core submit rejected', { err: err instanceof Error ? err.message : String(err) });
          this.releaseCollected();
          this.complete({ status: ScsiStatus.BUSY, residualKind: 'none', residualCount: 0 });
        },
      );
  }

  /** The write data is no longer needed: its pool buffer goes back. */
  private releaseCollected(): void {
    this.collected = undefined;
    this.budgetWait = undefined;
    this.data.releaseAll();
    const lease = this.collectLease;
    if (lease === undefined) return;
    this.collectLease = undefined;
    this.leasePool?.release(lease);
  }

  /** The Data-In buffer is no longer referred to (written, or never sent): back to the pool. */
  private releaseDataIn(): void {
    const lease = this.dataInLease;
    if (lease === undefined) return;
    this.dataInLease = undefined;
    this.leasePool?.release(lease);
  }

  /** Resolves when the task has ended (answered or aborted). */
  whenDone(): Promise<void> {
    if (this.phase === 'done') return Promise.resolve();
    return new Promise<void>((resolve) => (this.doneWaiters ??= []).push(resolve));
  }

  /** If the core reports this task aborted, answer CHECK CONDITION with `sense`. */
  answerAbortWith(sense: Buffer): void {
    this.abortSense = sense;
  }

  private markDone(): void {
    this.phase = 'done';
    this.releaseCollected();
    this.host.taskFinished(this);
    const waiters = this.doneWaiters;
    this.doneWaiters = undefined;
    if (waiters) for (const w of waiters) w();
  }

  /** Answer with a CHECK CONDITION built here (iSCSI-level failures such as a broken data sequence). */
  failWithSense(sense: Buffer): void {
    this.dropTransfers();
    this.complete({ status: ScsiStatus.CHECK_CONDITION, sense, residualKind: 'none', residualCount: 0 });
  }

  /** Local abort (TMF, connection loss): no response is sent (SAM-5, RFC 7143 §11.5.1). */
  abortLocal(): void {
    this.result = undefined;
    this.setRetained(0);
    if (this.phase === 'done') return;
    this.aborted = true;
    this.dropTransfers();
    if (this.phase !== 'submitted') this.markDone();
  }

  /** A completed task whose result is kept (ERL >= 1) until acknowledged. */
  get hasResult(): boolean {
    return this.result !== undefined;
  }

  /** The status was acknowledged (or the task is gone): let the read buffer go. */
  releaseResult(): void {
    this.result = undefined;
    this.setRetained(0);
  }

  /** Report the read data kept for SNACK to the host's retention count. */
  private setRetained(bytes: number): void {
    const delta = bytes - this.retainedBytes;
    if (delta === 0) return;
    this.retainedBytes = bytes;
    this.host.retainedData(delta);
  }

  /**
   * Data SNACK (§11.16.1 type 0 on a read): Data-In with DataSN in
   * [begRun, begRun + runLength) again, with their original DataSN (and the
   * original StatSN on the one that carried the status). Returns how many
   * PDUs went out; 0 when there is nothing to resend.
   */
  resendData(begRun: number, runLength: number): number {
    const res = this.result;
    if (!res || !res.dataIn) return 0;
    const from = Math.max(0, begRun - res.dataInBase);
    const to = runLength === 0 ? Number.MAX_SAFE_INTEGER : from + runLength;
    return this.sendDataIn(res, from, to, res.collapse ? this.statSN : undefined);
  }

  /**
   * R-Data SNACK (§11.16.3): all the data again, then the status as a SCSI
   * Response carrying the SNACK Tag (original StatSN).
   */
  resendAll(snackTag: number): boolean {
    const res = this.result;
    if (!res || this.statSN === undefined) return false;
    if (res.dataIn) this.sendDataIn(res, 0, Number.MAX_SAFE_INTEGER, undefined);
    this.sendResponse(res, this.statSN, snackTag);
    return true;
  }

  /**
   * TASK REASSIGN (§6.2.2, §11.5.1): the task continues on `host`. A finished
   * task sends its data again from `expDataSN` and its status with a StatSN
   * of the new connection; a write still collecting asks again, with R2Ts,
   * for everything from the first byte not known to be in; a task running in
   * the core answers on the new connection when it completes.
   */
  reassign(host: TaskHost, expDataSN: number): void {
    this.dropTransfers();
    this.host = host;
    if (this.phase === 'done') {
      const res = this.result;
      if (!res) return;
      const from = res.dataIn ? Math.max(0, expDataSN - res.dataInBase) : 0;
      this.emit(res, from);
      return;
    }
    if (this.phase === 'collecting' && this.refusal !== undefined) {
      // Refused by prepare(): no more unsolicited data will come on the new connection.
      this.complete(this.refusal);
      return;
    }
    if (this.phase === 'collecting' && this.write && this.edtl > 0) {
      // Bytes below the lowest R2T that was still open are in; the rest is
      // asked for again (data already there is simply overwritten).
      const restart = Math.min(this.received, this.restartOffset);
      this.received = restart;
      this.nextR2tOffset = restart;
      this.restartOffset = Number.MAX_SAFE_INTEGER;
      if (this.prepared) this.issueR2ts();
    }
  }

  private complete(r: ScsiResponse): void {
    if (this.phase === 'done') return;
    if (this.aborted) {
      this.releaseDataIn();
      this.markDone();
      return;
    }
    if (r.aborted) {
      if (!this.abortSense) {
        this.releaseDataIn();
        this.markDone();
        return;
      }
      r = { status: ScsiStatus.CHECK_CONDITION, sense: this.abortSense, residualKind: 'none', residualCount: 0 };
    }
    const dataIn = this.read && r.dataIn !== undefined && r.dataIn.length > 0 ? r.dataIn.subarray(0, Math.min(r.dataIn.length, this.edtl)) : undefined;
    const sense = r.sense !== undefined && r.sense.length > 0 ? r.sense : undefined;
    const res: RetainedResult = {
      status: r.status,
      sense,
      dataIn,
      dataInBase: this.dataPduCount,
      overflow: r.residualKind === 'overflow',
      underflow: r.residualKind === 'underflow',
      residualCount: r.residualKind === 'none' ? 0 : r.residualCount >>> 0,
      collapse: dataIn !== undefined && sense === undefined,
    };
    // The pooled Data-In buffer stays lent until the socket has written the
    // PDUs that carry it; at once when the core answered from memory of its own.
    const carried = this.dataInLease !== undefined && dataIn !== undefined && dataIn.buffer === this.dataInLease.buffer;
    if (!carried) this.releaseDataIn();
    // ERL >= 1: keep the result until its status is acknowledged (set
    // before markDone so the host knows to keep the task).
    if (this.host.retaining) {
      this.result = res;
      this.setRetained(dataIn?.length ?? 0);
    }
    // Output already backed up: the CmdSN slot stays taken until the reply
    // is written, so a peer that does not read cannot have more commands
    // answered into memory (markDone leaves the slot to replyFlushed).
    const holdSlot = !this.host.connectionGone && this.host.sendBacklogged;
    this.slotHeldForFlush = holdSlot;
    this.markDone();
    // ERL 2: a failed connection's task keeps its result for TASK REASSIGN.
    if (this.host.connectionGone) {
      this.releaseDataIn();
      if (holdSlot) this.host.replyFlushed(this);
      return;
    }
    this.emit(res, 0, carried ? () => this.releaseDataIn() : undefined, holdSlot ? () => this.host.replyFlushed(this) : undefined);
  }

  /**
   * Data-In from the `fromPdu`-th one, then the status with a fresh StatSN of
   * the current connection. `onDataWritten`: once the last Data-In is written.
   */
  private emit(res: RetainedResult, fromPdu: number, onDataWritten?: () => void, onReplyWritten?: () => void): void {
    const host = this.host;
    if (host.connectionGone) {
      onDataWritten?.();
      onReplyWritten?.();
      return;
    }
    if (res.dataIn) {
      // Phase collapse: the last Data-In is the reply.
      const collapse = res.collapse && onReplyWritten !== undefined;
      const onLast = collapse && onReplyWritten !== undefined ? both(onDataWritten, onReplyWritten) : onDataWritten;
      const sent = this.sendDataIn(res, fromPdu, Number.MAX_SAFE_INTEGER, res.collapse ? 'new' : undefined, onLast);
      if (res.collapse && sent > 0) return;
      if (collapse) onReplyWritten = undefined;
    } else {
      onDataWritten?.();
    }
    this.sendResponse(res, host.takeStatSN(), 0, onReplyWritten);
  }

  private sendResponse(res: RetainedResult, statSN: number, snackTag: number, onWritten?: () => void): void {
    this.statSN = statSN;
    this.host.send(scsiResponsePdu(res, { itt: this.itt, expDataSN: this.dataPduCount, window: this.host.window() }, statSN, snackTag), onWritten);
  }

  /** sendDataIn() of data-in.ts for this task; keeps its StatSN and Data-In count. */
  private sendDataIn(res: RetainedResult, fromPdu: number, toPdu: number, status: 'new' | number | undefined, onLastWritten?: () => void): number {
    const out = sendDataIn(this.host, { itt: this.itt, lunRaw: this.lunRaw }, res, fromPdu, toPdu, status, onLastWritten);
    if (out.statSN !== undefined) this.statSN = out.statSN;
    if (res.dataInBase + out.pdus > this.dataPduCount) this.dataPduCount = res.dataInBase + out.pdus;
    return out.sent;
  }
}

/** One callback running both (either may be absent). */
function both(a: (() => void) | undefined, b: () => void): () => void {
  if (a === undefined) return b;
  return () => {
    a();
    b();
  };
}
