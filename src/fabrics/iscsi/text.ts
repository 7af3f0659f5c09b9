// Text Request/Response in full feature phase (RFC 7143 §11.10, §11.11),
// mainly SendTargets (§12.3 / Appendix C): "All" lists every target this
// initiator may log in to, "<iqn>" just that one, empty (normal sessions
// only) the session's own target. Each target is followed by a TargetAddress
// for every portal of each TPG that serves it ("host:port,tpgt").
//
// A long answer is split at the initiator's MaxRecvDataSegmentLength: every
// piece but the last has F=0 and a Target Transfer Tag; the initiator asks
// for the next piece with an empty Text Request carrying that tag.
//
// What the initiator sends is bounded: TEXT_MAX_BYTES of text over a C-bit
// sequence and TEXT_MAX_KEYS keys per request. Past either the request is
// answered with a Reject, reason Negotiation Reset (0x0b, §11.17.1: the text
// exchange is abandoned and nothing agreed in it stands), and the connection
// carries on.

import { Opcode, type TextRequestPdu, type TextResponsePdu } from '../../protocols/iscsi/pdu-types.js';
import { RESERVED_TAG, RejectReason } from '../../protocols/iscsi/constants.js';
import { encodeTextKeys, parseTextKeys, TextAccumulator } from '../../protocols/iscsi/text.js';
import type { PduSink } from './hosts.js';
import type { IscsiSession } from './session.js';

/** Text one Text Request sequence (C bit) may carry. */
export const TEXT_MAX_BYTES = 64 * 1024;
/** Keys one Text Request may carry (SendTargets needs one). */
export const TEXT_MAX_KEYS = 256;

/** What the Text handler needs of its connection (FullFeature provides it). */
export interface TextHost extends PduSink {
  readonly session: Pick<IscsiSession, 'type' | 'targetName' | 'initiatorName'>;
  readonly peerMaxRecvDataSegmentLength: number;
  reject(bhs: Buffer, reason: number): void;
  /** SendTargets pairs for `which` ('All' or a target name) as seen on this connection's portal. */
  sendTargets(initiator: string, which: string): Array<[string, string]>;
}

interface PendingText {
  ttt: number;
  rest: Buffer;
}

export class TextHandler {
  private pending: PendingText | undefined;
  private readonly acc = new TextAccumulator(TEXT_MAX_BYTES);
  private nextTtt = 1;

  constructor(private readonly host: TextHost) {}

  handle(pdu: TextRequestPdu, bhs: Buffer): void {
    if (pdu.targetTransferTag !== RESERVED_TAG) {
      // Continuation of a long answer of ours (§11.10.4).
      if (this.pending && this.pending.ttt === pdu.targetTransferTag) {
        const rest = this.pending.rest;
        this.pending = undefined;
        this.sendPiece(pdu, rest);
        return;
      }
      this.pending = undefined;
    }
    let whole: Buffer | undefined;
    try {
      whole = this.acc.add(pdu.data, pdu.continue);
    } catch {
      this.host.reject(bhs, RejectReason.NEGOTIATION_RESET);
      return;
    }
    if (whole === undefined) {
      // More request text follows (C bit): acknowledge with an empty response.
      this.reply(pdu, Buffer.alloc(0), false, this.allocTtt(), false);
      return;
    }
    let pairs: Array<[string, string]>;
    try {
      pairs = parseTextKeys(whole);
    } catch {
      this.host.reject(bhs, RejectReason.INVALID_PDU_FIELD);
      return;
    }
    if (pairs.length > TEXT_MAX_KEYS) {
      this.host.reject(bhs, RejectReason.NEGOTIATION_RESET);
      return;
    }
    const out: Array<[string, string]> = [];
    const session = this.host.session;
    for (const [key, value] of pairs) {
      if (key === 'SendTargets') {
        let which = value;
        if (session.type === 'normal') {
          // In a normal session only the session's target is reported.
          if (which === '' || which === 'All' || which.toLowerCase() === session.targetName.toLowerCase()) which = session.targetName;
          else which = '\0none';
        } else if (which === '') {
          continue;
        }
        out.push(...this.host.sendTargets(session.initiatorName, which));
      } else if (key.startsWith('X-') || key.startsWith('X#')) {
        out.push([key, 'NotUnderstood']);
      } else {
        // Full-feature renegotiation is not offered (ERL 0, one connection).
        out.push([key, 'Reject']);
      }
    }
    this.sendPiece(pdu, encodeTextKeys(out));
  }

  private sendPiece(pdu: TextRequestPdu, all: Buffer): void {
    const max = Math.max(512, this.host.peerMaxRecvDataSegmentLength);
    if (all.length <= max) {
      this.reply(pdu, all, true, RESERVED_TAG, false);
      return;
    }
    const ttt = this.allocTtt();
    this.pending = { ttt, rest: all.subarray(max) };
    // A pair cut in two is flagged with C (§11.11.2).
    this.reply(pdu, all.subarray(0, max), false, ttt, all[max - 1] !== 0);
  }

  private allocTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    return t;
  }

  private reply(pdu: TextRequestPdu, data: Buffer, final: boolean, ttt: number, cont: boolean): void {
    const host = this.host;
    const w = host.window();
    host.send<TextResponsePdu>({
      opcode: Opcode.TEXT_RESPONSE,
      final,
      continue: cont,
      itt: pdu.itt,
      lunRaw: pdu.lunRaw,
      targetTransferTag: ttt,
      statSN: host.takeStatSN(),
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
      data,
    });
  }
}
