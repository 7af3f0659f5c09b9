// Status retention of one connection at ERL >= 1 (RFC 7143 §6.1.4.2, §11.16).
//
// Every PDU that takes a StatSN is kept, by StatSN, until the initiator
// acknowledges it: a PDU arriving with ExpStatSN > StatSN (§4.2.2.2) releases
// it. A Status SNACK resends the kept PDUs as they were (same StatSN), with
// the current ExpCmdSN/MaxCmdSN. A task's read buffer is held by the task
// itself (scsi-command.ts) and let go when its status is released here.
//
// ERL 0 connections have no retention object at all: the send path checks one
// property and moves on.
//
// Budget (issue 17, limits.retainedBytesPerConnection): an initiator that
// never advances ExpStatSN would make this grow forever. The bytes kept are
// counted (each PDU's header and data segment, plus the read data finished
// tasks keep for Data SNACK, reported by the tasks through taskData());
// going over the limit calls `overBudget` (the connection is dropped).

import { Opcode, type Pdu } from '../../protocols/iscsi/pdu-types.js';
import type { EncodablePdu } from '../../protocols/iscsi/pdu.js';
import { seqLt, seqGte, seqAdd } from '../../protocols/iscsi/seq.js';
import { BHS_LENGTH } from '../../protocols/iscsi/constants.js';

/** A status-carrying PDU as sent; StatSN, ITT and the window fields are read back on resend. */
export type RetainedPdu = EncodablePdu<Pdu> & { statSN: number; itt: number; expCmdSN?: number; maxCmdSN?: number };

/** Called when the initiator has acknowledged the status of task `itt` (StatSN `statSN`). */
export type StatusAcked = (itt: number, statSN: number) => void;

export class StatusRetention {
  /** Insertion order = StatSN order (StatSNs are taken in sequence). */
  private readonly byStatSN = new Map<number, RetainedPdu>();
  /** Bytes kept: PDUs here plus the tasks' read data (taskData). */
  private bytes = 0;

  constructor(
    private readonly onTaskAcked: StatusAcked,
    /** The budget; checked as bytes are added. */
    private readonly limitBytes: () => number = () => Number.POSITIVE_INFINITY,
    /** Called when the kept bytes go over the budget (every time; the caller acts once). */
    private readonly overBudget: (bytes: number) => void = () => {},
  ) {}

  get size(): number {
    return this.byStatSN.size;
  }

  /** Bytes kept for acknowledgement now (stats). */
  get retainedBytes(): number {
    return this.bytes;
  }

  /** A PDU just went out: keep it if it carries a StatSN of its own. */
  sent(pdu: EncodablePdu<Pdu>): void {
    if (!takesStatSN(pdu)) return;
    const p = pdu as RetainedPdu;
    const sn = p.statSN >>> 0;
    const prior = this.byStatSN.get(sn);
    if (prior !== undefined) this.bytes -= pduBytes(prior);
    this.byStatSN.set(sn, p);
    this.add(pduBytes(p));
  }

  /** A finished task keeps (+) or lets go of (-) read data for Data SNACK. */
  taskData(delta: number): void {
    this.add(delta);
  }

  private add(delta: number): void {
    this.bytes = Math.max(0, this.bytes + delta);
    if (delta > 0 && this.bytes > this.limitBytes()) this.overBudget(this.bytes);
  }

  /** ExpStatSN from the initiator: everything before it is acknowledged. */
  ack(expStatSN: number): void {
    if (this.byStatSN.size === 0) return;
    for (const [sn, p] of this.byStatSN) {
      if (!seqLt(sn, expStatSN)) break;
      this.byStatSN.delete(sn);
      this.bytes = Math.max(0, this.bytes - pduBytes(p));
      if (p.opcode === Opcode.SCSI_RESPONSE || p.opcode === Opcode.DATA_IN) this.onTaskAcked(p.itt, sn);
    }
  }

  /** The kept PDUs for StatSN [begRun, begRun + runLength) (runLength 0 = all from begRun), in order. */
  range(begRun: number, runLength: number): RetainedPdu[] {
    const out: RetainedPdu[] = [];
    const end = runLength === 0 ? undefined : seqAdd(begRun, runLength);
    for (const [sn, p] of this.byStatSN) {
      if (!seqGte(sn, begRun)) continue;
      if (end !== undefined && !seqLt(sn, end)) break;
      out.push(p);
    }
    return out;
  }

  /** Forget one task's status (it moved to another connection, or was retired). */
  forget(statSN: number): void {
    const p = this.byStatSN.get(statSN >>> 0);
    if (p === undefined) return;
    this.byStatSN.delete(statSN >>> 0);
    this.bytes = Math.max(0, this.bytes - pduBytes(p));
  }

  clear(): void {
    this.byStatSN.clear();
    this.bytes = 0;
  }
}

/**
 * What keeping one PDU costs: its header and data segment. A Data-In's data
 * is a view of the task's read data, which the task counts (taskData).
 */
function pduBytes(p: RetainedPdu): number {
  if (p.opcode === Opcode.DATA_IN) return BHS_LENGTH;
  const data = (p as { data?: Buffer }).data;
  return BHS_LENGTH + (data?.length ?? 0);
}

/** Does this target PDU take a StatSN (as opposed to only showing the current one)? */
function takesStatSN(pdu: EncodablePdu<Pdu>): boolean {
  switch (pdu.opcode) {
    case Opcode.SCSI_RESPONSE:
    case Opcode.TASK_MGMT_RESPONSE:
    case Opcode.TEXT_RESPONSE:
    case Opcode.LOGOUT_RESPONSE:
    case Opcode.REJECT:
    case Opcode.ASYNC_MESSAGE:
      return true;
    case Opcode.DATA_IN:
      return (pdu as { statusPresent?: boolean }).statusPresent === true;
    case Opcode.NOP_IN:
      // A NOP-In answering a NOP-Out takes a StatSN; our pings (ITT
      // 0xffffffff) only show it (§11.19.4).
      return (pdu as { itt: number }).itt !== 0xffffffff;
    default:
      return false;
  }
}
