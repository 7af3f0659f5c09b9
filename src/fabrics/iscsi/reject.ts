// Reject PDU (RFC 7143 §11.17): the target refuses a PDU and sends its header
// back in the data segment. A Reject takes a StatSN (§11.17.3 treats it as a
// response); the rejected PDU's ITT is not echoed (ITT field is 0xffffffff).

import { Opcode, type RejectPdu } from '../../protocols/iscsi/pdu-types.js';
import { BHS_LENGTH, RESERVED_TAG } from '../../protocols/iscsi/constants.js';
import type { PduSink } from './hosts.js';

export function sendReject(conn: PduSink, bhs: Buffer, reason: number): void {
  // Copy the header: the original is a view of a receive chunk.
  const header = Buffer.alloc(BHS_LENGTH);
  bhs.copy(header, 0, 0, Math.min(BHS_LENGTH, bhs.length));
  const w = conn.window();
  conn.send<RejectPdu>({
    opcode: Opcode.REJECT,
    itt: RESERVED_TAG,
    reason,
    statSN: conn.takeStatSN(),
    expCmdSN: w.expCmdSN,
    maxCmdSN: w.maxCmdSN,
    dataSN: 0,
    data: header,
  });
}
