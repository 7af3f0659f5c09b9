// NOP-Out / NOP-In (RFC 7143 §11.18, §11.19).
//
// - A NOP-Out with a real ITT is a ping from the initiator: answer with a
//   NOP-In echoing its data (cut to what the initiator accepts) and taking a
//   StatSN.
// - A NOP-Out with ITT 0xffffffff answers one of our pings (its TTT).
// - NopPinger: every `interval` seconds of a quiet connection we send a NOP-In
//   with ITT 0xffffffff and a fresh TTT (StatSN not advanced); when neither
//   the answer nor any other PDU arrives within `timeout` seconds, the
//   connection is dead and is dropped.
// - DiscoveryIdleWatch: a discovery session may not be pinged (RFC 7143 §4.3:
//   in a discovery session the target accepts only Text Requests with
//   SendTargets and a Logout; a NOP-In would invite a NOP-Out it must reject),
//   so instead of pings it is dropped after `idleSec` seconds without a Text
//   or Logout Request. Other PDUs (rejected anyway) do not count as activity,
//   or a NOP-Out flood would keep an idle discovery session open for ever.

import { Opcode, type NopInPdu, type NopOutPdu } from '../../protocols/iscsi/pdu-types.js';
import { RESERVED_TAG } from '../../protocols/iscsi/constants.js';
import type { PduSink } from './hosts.js';

export function answerNopOut(conn: PduSink & { readonly peerMaxRecvDataSegmentLength: number }, pdu: NopOutPdu): void {
  const w = conn.window();
  const data = pdu.data.length > conn.peerMaxRecvDataSegmentLength ? pdu.data.subarray(0, conn.peerMaxRecvDataSegmentLength) : pdu.data;
  conn.send<NopInPdu>({
    opcode: Opcode.NOP_IN,
    itt: pdu.itt,
    lunRaw: pdu.lunRaw,
    targetTransferTag: RESERVED_TAG,
    statSN: conn.takeStatSN(),
    expCmdSN: w.expCmdSN,
    maxCmdSN: w.maxCmdSN,
    data: data.length > 0 ? Buffer.from(data) : undefined,
  });
}

/** What the connection tells its liveness check (NopPinger or DiscoveryIdleWatch). */
export interface Liveness {
  /** A PDU with this opcode arrived. */
  activity(opcode: number): void;
  /** A NOP-Out with ITT 0xffffffff answered our ping with this TTT. */
  answered(ttt: number): void;
  stop(): void;
}

export class NopPinger implements Liveness {
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private outstanding: number | undefined;
  private lastRx = Date.now();
  private sentAt = 0;
  private nextTtt = 1;

  constructor(
    private readonly conn: PduSink & { destroy(reason: string): void },
    private readonly intervalSec: number,
    private readonly timeoutSec: number,
  ) {
    this.timer = setInterval(() => this.tick(), intervalSec * 1000);
    this.timer.unref();
  }

  /** Any PDU from the initiator shows it is alive. */
  activity(_opcode?: number): void {
    this.lastRx = Date.now();
  }

  /** A NOP-Out with ITT 0xffffffff arrived. */
  answered(ttt: number): void {
    if (this.outstanding === ttt) {
      this.outstanding = undefined;
      if (this.deadline) clearTimeout(this.deadline);
      this.deadline = undefined;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    this.timer = undefined;
    this.deadline = undefined;
  }

  private tick(): void {
    if (this.outstanding !== undefined) return;
    if (Date.now() - this.lastRx < this.intervalSec * 1000) return;
    const ttt = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    this.outstanding = ttt;
    this.sentAt = Date.now();
    const w = this.conn.window();
    this.conn.send<NopInPdu>({
      opcode: Opcode.NOP_IN,
      itt: RESERVED_TAG,
      lun: 0,
      targetTransferTag: ttt,
      statSN: this.conn.currentStatSN,
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
    });
    this.armDeadline();
  }

  private armDeadline(): void {
    this.deadline = setTimeout(() => {
      this.deadline = undefined;
      if (this.outstanding === undefined) return;
      if (this.lastRx > this.sentAt) {
        // Traffic came in after our ping: the peer is alive, just busy.
        this.outstanding = undefined;
        return;
      }
      this.conn.destroy(`no answer to NOP-In within ${this.timeoutSec} s`);
    }, this.timeoutSec * 1000);
    this.deadline.unref();
  }
}

export class DiscoveryIdleWatch implements Liveness {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly conn: { destroy(reason: string): void },
    private readonly idleSec: number,
  ) {
    this.arm();
  }

  activity(opcode: number): void {
    if (opcode === Opcode.TEXT_REQUEST || opcode === Opcode.LOGOUT_REQUEST) this.arm();
  }

  answered(): void {
    // Discovery sessions are never pinged: nothing to answer.
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.conn.destroy(`discovery session idle for ${this.idleSec} s`);
    }, this.idleSec * 1000);
    this.timer.unref();
  }
}
