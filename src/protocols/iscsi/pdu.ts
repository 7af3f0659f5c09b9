// iSCSI PDU codec (RFC 7143 §11). Pure functions over Buffers.
//
// decodePdu() turns a BHS (+ AHS + unpadded data segment, as the framer hands
// them over) into a typed PDU object. It allocates only that object and the
// subarray views it holds (lunRaw, cdb, ahs, data share memory with the
// inputs), except for a SCSI Command with an Extended CDB AHS, whose CDB is
// joined into a new Buffer.
//
// encodeBhs() writes the 48-byte BHS (+ AHS) into a caller-supplied buffer or a
// new one; the data segment is never copied (writer.ts sends it as its own
// iovec). DataSegmentLength comes from pdu.data.

import { LunkitError } from '../errors.js';
import { AhsType, BHS_LENGTH, opcodeName } from './constants.js';
import { decodeLun } from './lun.js';
import {
  Opcode,
  type AsyncMessagePdu,
  type DataInPdu,
  type DataOutPdu,
  type LoginRequestPdu,
  type LoginResponsePdu,
  type LogoutRequestPdu,
  type LogoutResponsePdu,
  type NopInPdu,
  type NopOutPdu,
  type Pdu,
  type R2TPdu,
  type RejectPdu,
  type ScsiCommandPdu,
  type ScsiResponsePdu,
  type SnackRequestPdu,
  type TaskMgmtRequestPdu,
  type TaskMgmtResponsePdu,
  type TextRequestPdu,
  type TextResponsePdu,
} from './pdu-types.js';

const EMPTY: Buffer = Buffer.alloc(0);

/** The fields needed to frame a PDU, read from its first 8 bytes. */
export interface BhsPeek {
  opcode: number;
  /** TotalAHSLength in 4-byte words, as on the wire (RFC 7143 §11.2.1.2). */
  totalAhsLength: number;
  /** The same in bytes (totalAhsLength * 4). */
  ahsLength: number;
  /** DataSegmentLength in bytes, without padding. */
  dataSegmentLength: number;
}

/** Read opcode and segment lengths from a BHS (needs at least 8 bytes). */
export function peekBhs(bhs: Buffer): BhsPeek {
  const totalAhsLength = bhs[4];
  return {
    opcode: bhs[0] & 0x3f,
    totalAhsLength,
    ahsLength: totalAhsLength * 4,
    dataSegmentLength: (bhs[5] << 16) | (bhs[6] << 8) | bhs[7],
  };
}

/** Bytes of padding after a segment of `len` bytes (RFC 7143 §11.2.3: 4-byte boundary). */
export function padLength(len: number): number {
  return (4 - (len & 3)) & 3;
}

// ---------------------------------------------------------------------------
// Decode

/**
 * Decode one PDU. `ahs` is the raw AHS (TotalAHSLength*4 bytes), `data` the
 * data segment without padding or digest. Throws LunkitError:
 * ERR_PDU_BAD_OPCODE for an opcode not in RFC 7143 (the target answers with a
 * Reject), ERR_PDU_MALFORMED if the lengths disagree with the BHS or an AHS is
 * malformed.
 */
export function decodePdu(bhs: Buffer, ahs: Buffer = EMPTY, data: Buffer = EMPTY): Pdu {
  if (bhs.length < BHS_LENGTH) {
    throw new LunkitError('ERR_PDU_MALFORMED', `BHS is ${bhs.length} bytes, need ${BHS_LENGTH}`);
  }
  if (ahs.length !== bhs[4] * 4) {
    throw new LunkitError('ERR_PDU_MALFORMED', `AHS is ${ahs.length} bytes, BHS says ${bhs[4] * 4}`);
  }
  const dsl = (bhs[5] << 16) | (bhs[6] << 8) | bhs[7];
  if (data.length !== dsl) {
    throw new LunkitError('ERR_PDU_MALFORMED', `data segment is ${data.length} bytes, BHS says ${dsl}`);
  }
  const op = bhs[0] & 0x3f;
  switch (op) {
    case Opcode.NOP_OUT:
      return decodeNopOut(bhs, ahs, data);
    case Opcode.SCSI_COMMAND:
      return decodeScsiCommand(bhs, ahs, data);
    case Opcode.TASK_MGMT_REQUEST:
      return decodeTaskMgmtRequest(bhs, ahs, data);
    case Opcode.LOGIN_REQUEST:
      return decodeLoginRequest(bhs, ahs, data);
    case Opcode.TEXT_REQUEST:
      return decodeTextRequest(bhs, ahs, data);
    case Opcode.DATA_OUT:
      return decodeDataOut(bhs, ahs, data);
    case Opcode.LOGOUT_REQUEST:
      return decodeLogoutRequest(bhs, ahs, data);
    case Opcode.SNACK_REQUEST:
      return decodeSnack(bhs, ahs, data);
    case Opcode.NOP_IN:
      return decodeNopIn(bhs, ahs, data);
    case Opcode.SCSI_RESPONSE:
      return decodeScsiResponse(bhs, ahs, data);
    case Opcode.TASK_MGMT_RESPONSE:
      return decodeTaskMgmtResponse(bhs, ahs, data);
    case Opcode.LOGIN_RESPONSE:
      return decodeLoginResponse(bhs, ahs, data);
    case Opcode.TEXT_RESPONSE:
      return decodeTextResponse(bhs, ahs, data);
    case Opcode.DATA_IN:
      return decodeDataIn(bhs, ahs, data);
    case Opcode.LOGOUT_RESPONSE:
      return decodeLogoutResponse(bhs, ahs, data);
    case Opcode.R2T:
      return decodeR2T(bhs, ahs, data);
    case Opcode.ASYNC_MESSAGE:
      return decodeAsync(bhs, ahs, data);
    case Opcode.REJECT:
      return decodeReject(bhs, ahs, data);
    default:
      throw new LunkitError('ERR_PDU_BAD_OPCODE', `unknown iSCSI opcode ${opcodeName(op)}`);
  }
}

function u32(b: Buffer, off: number): number {
  return b.readUInt32BE(off);
}

function u16(b: Buffer, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

function decodeScsiCommand(bhs: Buffer, ahs: Buffer, data: Buffer): ScsiCommandPdu {
  const b1 = bhs[1];
  let cdb = bhs.subarray(32, 48);
  let bidiReadLength: number | undefined;
  // AHS walk (RFC 7143 §11.2.2): AHSLength(2) AHSType(1) specific..., each
  // padded to 4 bytes. AHSLength counts the specific bytes after AHSType.
  let off = 0;
  while (off < ahs.length) {
    if (off + 4 > ahs.length) throw new LunkitError('ERR_PDU_MALFORMED', 'truncated AHS');
    const len = u16(ahs, off);
    const type = ahs[off + 2];
    const end = off + 3 + len;
    if (end > ahs.length) throw new LunkitError('ERR_PDU_MALFORMED', `AHS type ${type} overruns TotalAHSLength`);
    if (type === AhsType.EXTENDED_CDB) {
      // §11.3.5: AHSLength = (CDB length - 15): one reserved byte + the CDB bytes beyond 16.
      if (len < 2) throw new LunkitError('ERR_PDU_MALFORMED', 'empty Extended CDB AHS');
      cdb = Buffer.concat([cdb, ahs.subarray(off + 4, end)]);
    } else if (type === AhsType.BIDI_READ_LENGTH) {
      // §11.3.6: AHSLength = 0x0005, reserved byte, 4-byte length.
      if (len !== 5) throw new LunkitError('ERR_PDU_MALFORMED', 'bad Bidirectional Read AHS length');
      bidiReadLength = u32(ahs, off + 4);
    }
    off = end + padLength(3 + len);
  }
  const lunRaw = bhs.subarray(8, 16);
  const pdu: ScsiCommandPdu = {
    opcode: Opcode.SCSI_COMMAND,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (b1 & 0x80) !== 0,
    read: (b1 & 0x40) !== 0,
    write: (b1 & 0x20) !== 0,
    attr: b1 & 0x07,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    expectedDataTransferLength: u32(bhs, 20),
    cmdSN: u32(bhs, 24),
    expStatSN: u32(bhs, 28),
    cdb,
    ahs,
    data,
  };
  if (bidiReadLength !== undefined) pdu.bidiReadLength = bidiReadLength;
  return pdu;
}

function decodeScsiResponse(bhs: Buffer, ahs: Buffer, data: Buffer): ScsiResponsePdu {
  const b1 = bhs[1];
  return {
    opcode: Opcode.SCSI_RESPONSE,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (b1 & 0x80) !== 0,
    bidiOverflow: (b1 & 0x10) !== 0,
    bidiUnderflow: (b1 & 0x08) !== 0,
    overflow: (b1 & 0x04) !== 0,
    underflow: (b1 & 0x02) !== 0,
    response: bhs[2],
    status: bhs[3],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    itt: u32(bhs, 16),
    snackTag: u32(bhs, 20),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    expDataSN: u32(bhs, 36),
    bidiReadResidualCount: u32(bhs, 40),
    residualCount: u32(bhs, 44),
    ahs,
    data,
  };
}

function decodeTaskMgmtRequest(bhs: Buffer, ahs: Buffer, data: Buffer): TaskMgmtRequestPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.TASK_MGMT_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    function: bhs[1] & 0x7f,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    referencedTaskTag: u32(bhs, 20),
    cmdSN: u32(bhs, 24),
    expStatSN: u32(bhs, 28),
    refCmdSN: u32(bhs, 32),
    expDataSN: u32(bhs, 36),
    ahs,
    data,
  };
}

function decodeTaskMgmtResponse(bhs: Buffer, ahs: Buffer, data: Buffer): TaskMgmtResponsePdu {
  return {
    opcode: Opcode.TASK_MGMT_RESPONSE,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    response: bhs[2],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    itt: u32(bhs, 16),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    ahs,
    data,
  };
}

function decodeDataOut(bhs: Buffer, ahs: Buffer, data: Buffer): DataOutPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.DATA_OUT,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    expStatSN: u32(bhs, 28),
    dataSN: u32(bhs, 36),
    bufferOffset: u32(bhs, 40),
    ahs,
    data,
  };
}

function decodeDataIn(bhs: Buffer, ahs: Buffer, data: Buffer): DataInPdu {
  const b1 = bhs[1];
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.DATA_IN,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (b1 & 0x80) !== 0,
    acknowledge: (b1 & 0x40) !== 0,
    overflow: (b1 & 0x04) !== 0,
    underflow: (b1 & 0x02) !== 0,
    statusPresent: (b1 & 0x01) !== 0,
    status: bhs[3],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    dataSN: u32(bhs, 36),
    bufferOffset: u32(bhs, 40),
    residualCount: u32(bhs, 44),
    ahs,
    data,
  };
}

function decodeR2T(bhs: Buffer, ahs: Buffer, data: Buffer): R2TPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.R2T,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    r2tSN: u32(bhs, 36),
    bufferOffset: u32(bhs, 40),
    desiredDataTransferLength: u32(bhs, 44),
    ahs,
    data,
  };
}

function decodeAsync(bhs: Buffer, ahs: Buffer, data: Buffer): AsyncMessagePdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.ASYNC_MESSAGE,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    asyncEvent: bhs[36],
    asyncVCode: bhs[37],
    parameter1: u16(bhs, 38),
    parameter2: u16(bhs, 40),
    parameter3: u16(bhs, 42),
    ahs,
    data,
  };
}

function decodeTextRequest(bhs: Buffer, ahs: Buffer, data: Buffer): TextRequestPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.TEXT_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    continue: (bhs[1] & 0x40) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    cmdSN: u32(bhs, 24),
    expStatSN: u32(bhs, 28),
    ahs,
    data,
  };
}

function decodeTextResponse(bhs: Buffer, ahs: Buffer, data: Buffer): TextResponsePdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.TEXT_RESPONSE,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    continue: (bhs[1] & 0x40) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    ahs,
    data,
  };
}

function decodeLoginRequest(bhs: Buffer, ahs: Buffer, data: Buffer): LoginRequestPdu {
  const b1 = bhs[1];
  return {
    opcode: Opcode.LOGIN_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    // §11.12.1: the T bit sits where F sits in other PDUs.
    final: (b1 & 0x80) !== 0,
    transit: (b1 & 0x80) !== 0,
    continue: (b1 & 0x40) !== 0,
    csg: (b1 >> 2) & 0x03,
    nsg: b1 & 0x03,
    versionMax: bhs[2],
    versionMin: bhs[3],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    isid: bhs.readUIntBE(8, 6),
    tsih: u16(bhs, 14),
    itt: u32(bhs, 16),
    cid: u16(bhs, 20),
    cmdSN: u32(bhs, 24),
    expStatSN: u32(bhs, 28),
    ahs,
    data,
  };
}

function decodeLoginResponse(bhs: Buffer, ahs: Buffer, data: Buffer): LoginResponsePdu {
  const b1 = bhs[1];
  return {
    opcode: Opcode.LOGIN_RESPONSE,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (b1 & 0x80) !== 0,
    transit: (b1 & 0x80) !== 0,
    continue: (b1 & 0x40) !== 0,
    csg: (b1 >> 2) & 0x03,
    nsg: b1 & 0x03,
    versionMax: bhs[2],
    versionActive: bhs[3],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    isid: bhs.readUIntBE(8, 6),
    tsih: u16(bhs, 14),
    itt: u32(bhs, 16),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    statusClass: bhs[36],
    statusDetail: bhs[37],
    ahs,
    data,
  };
}

function decodeLogoutRequest(bhs: Buffer, ahs: Buffer, data: Buffer): LogoutRequestPdu {
  return {
    opcode: Opcode.LOGOUT_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    reasonCode: bhs[1] & 0x7f,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    itt: u32(bhs, 16),
    cid: u16(bhs, 20),
    cmdSN: u32(bhs, 24),
    expStatSN: u32(bhs, 28),
    ahs,
    data,
  };
}

function decodeLogoutResponse(bhs: Buffer, ahs: Buffer, data: Buffer): LogoutResponsePdu {
  return {
    opcode: Opcode.LOGOUT_RESPONSE,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    response: bhs[2],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    itt: u32(bhs, 16),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    time2Wait: u16(bhs, 40),
    time2Retain: u16(bhs, 42),
    ahs,
    data,
  };
}

function decodeSnack(bhs: Buffer, ahs: Buffer, data: Buffer): SnackRequestPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.SNACK_REQUEST,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    type: bhs[1] & 0x0f,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    expStatSN: u32(bhs, 28),
    begRun: u32(bhs, 40),
    runLength: u32(bhs, 44),
    ahs,
    data,
  };
}

function decodeReject(bhs: Buffer, ahs: Buffer, data: Buffer): RejectPdu {
  return {
    opcode: Opcode.REJECT,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    reason: bhs[2],
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    itt: u32(bhs, 16),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    dataSN: u32(bhs, 36),
    ahs,
    data,
  };
}

function decodeNopOut(bhs: Buffer, ahs: Buffer, data: Buffer): NopOutPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.NOP_OUT,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    cmdSN: u32(bhs, 24),
    expStatSN: u32(bhs, 28),
    ahs,
    data,
  };
}

function decodeNopIn(bhs: Buffer, ahs: Buffer, data: Buffer): NopInPdu {
  const lunRaw = bhs.subarray(8, 16);
  return {
    opcode: Opcode.NOP_IN,
    immediate: (bhs[0] & 0x40) !== 0,
    final: (bhs[1] & 0x80) !== 0,
    totalAhsLength: bhs[4],
    dataSegmentLength: data.length,
    lun: decodeLun(lunRaw),
    lunRaw,
    itt: u32(bhs, 16),
    targetTransferTag: u32(bhs, 20),
    statSN: u32(bhs, 24),
    expCmdSN: u32(bhs, 28),
    maxCmdSN: u32(bhs, 32),
    ahs,
    data,
  };
}
export { encodeBhs, encodedAhsLength, encodeSenseData, decodeSenseData, type EncodablePdu } from './pdu-encode.js';
