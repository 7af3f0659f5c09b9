// Typed views of iSCSI PDUs (RFC 7143 §11). Shared by the target and the
// initiator. Each PDU is a plain object; codecs in pdu.ts turn a 48-byte Basic
// Header Segment (+ AHS + data segment) into one of these and back.
//
// Field names follow RFC 7143. Sequence numbers are unsigned 32-bit numbers
// compared with serial arithmetic (RFC 1982, see seq.ts). The LUN field is kept
// as its 8-byte form in `lunRaw` plus the decoded flat LUN number in `lun`
// (SAM-5 single-level peripheral / flat addressing).

export const Opcode = {
  // Initiator opcodes (RFC 7143 §11.1.1)
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MGMT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
  // Target opcodes
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MGMT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

/** Fields every PDU has (RFC 7143 §11.2.1). */
export interface PduCommon {
  /** I bit: immediate delivery (initiator PDUs only). */
  immediate: boolean;
  /** F bit (final). */
  final: boolean;
  /** TotalAHSLength in 4-byte words. */
  totalAhsLength: number;
  /** DataSegmentLength in bytes (unpadded). */
  dataSegmentLength: number;
  /** Initiator Task Tag. 0xffffffff = reserved / unsolicited. */
  itt: number;
  /** Additional header segments, raw (rarely used; kept for completeness). */
  ahs: Buffer;
  /** Data segment without padding (a view into the receive buffer). */
  data: Buffer;
}

export interface ScsiCommandPdu extends PduCommon {
  opcode: 0x01;
  read: boolean;
  write: boolean;
  /** ATTR field: 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA. */
  attr: number;
  lun: number;
  lunRaw: Buffer;
  expectedDataTransferLength: number;
  cmdSN: number;
  expStatSN: number;
  /** CDB (16 bytes from the BHS, extended by an Extended CDB AHS if present). */
  cdb: Buffer;
  /** Bidirectional read expected data length from the AHS, if present. */
  bidiReadLength?: number;
}

export interface ScsiResponsePdu extends PduCommon {
  opcode: 0x21;
  bidiOverflow: boolean; // o
  bidiUnderflow: boolean; // u
  overflow: boolean; // O
  underflow: boolean; // U
  response: number;
  status: number;
  snackTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  expDataSN: number;
  bidiReadResidualCount: number;
  residualCount: number;
  /** Sense data as carried in the data segment: 2-byte SenseLength + sense. */
}

export interface TaskMgmtRequestPdu extends PduCommon {
  opcode: 0x02;
  /** Function code 1..15 (RFC 7143 §11.5.1). */
  function: number;
  lun: number;
  lunRaw: Buffer;
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  refCmdSN: number;
  expDataSN: number;
}

export interface TaskMgmtResponsePdu extends PduCommon {
  opcode: 0x22;
  response: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

export interface DataOutPdu extends PduCommon {
  opcode: 0x05;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
}

export interface DataInPdu extends PduCommon {
  opcode: 0x25;
  acknowledge: boolean; // A
  overflow: boolean; // O
  underflow: boolean; // U
  /** S bit: status is carried in this PDU (phase collapse). */
  statusPresent: boolean;
  status: number;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  bufferOffset: number;
  residualCount: number;
}

export interface R2TPdu extends PduCommon {
  opcode: 0x31;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  r2tSN: number;
  bufferOffset: number;
  desiredDataTransferLength: number;
}

export interface AsyncMessagePdu extends PduCommon {
  opcode: 0x32;
  lun: number;
  lunRaw: Buffer;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  asyncEvent: number;
  asyncVCode: number;
  parameter1: number;
  parameter2: number;
  parameter3: number;
}

export interface TextRequestPdu extends PduCommon {
  opcode: 0x04;
  /** C bit: continue. */
  continue: boolean;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  cmdSN: number;
  expStatSN: number;
}

export interface TextResponsePdu extends PduCommon {
  opcode: 0x24;
  continue: boolean;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

export interface LoginRequestPdu extends PduCommon {
  opcode: 0x03;
  /** T bit (transit), carried in `final`'s position. */
  transit: boolean;
  continue: boolean;
  /** Current stage: 0 security, 1 operational, 3 full feature. */
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** 6-byte ISID as a 48-bit number (fits a JS number exactly). */
  isid: number;
  tsih: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}

export interface LoginResponsePdu extends PduCommon {
  opcode: 0x23;
  transit: boolean;
  continue: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: number;
  tsih: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  statusClass: number;
  statusDetail: number;
}

export interface LogoutRequestPdu extends PduCommon {
  opcode: 0x06;
  /** 0 close session, 1 close connection, 2 remove connection for recovery. */
  reasonCode: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}

export interface LogoutResponsePdu extends PduCommon {
  opcode: 0x26;
  response: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  time2Wait: number;
  time2Retain: number;
}

export interface SnackRequestPdu extends PduCommon {
  opcode: 0x10;
  /** 0 Data/R2T, 1 Status, 2 DataACK, 3 R-Data. */
  type: number;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  expStatSN: number;
  begRun: number;
  runLength: number;
}

export interface RejectPdu extends PduCommon {
  opcode: 0x3f;
  reason: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  dataSN: number;
  /** The rejected PDU's header travels in the data segment. */
}

export interface NopOutPdu extends PduCommon {
  opcode: 0x00;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  cmdSN: number;
  expStatSN: number;
}

export interface NopInPdu extends PduCommon {
  opcode: 0x20;
  lun: number;
  lunRaw: Buffer;
  targetTransferTag: number;
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

export type Pdu =
  | ScsiCommandPdu
  | ScsiResponsePdu
  | TaskMgmtRequestPdu
  | TaskMgmtResponsePdu
  | DataOutPdu
  | DataInPdu
  | R2TPdu
  | AsyncMessagePdu
  | TextRequestPdu
  | TextResponsePdu
  | LoginRequestPdu
  | LoginResponsePdu
  | LogoutRequestPdu
  | LogoutResponsePdu
  | SnackRequestPdu
  | RejectPdu
  | NopOutPdu
  | NopInPdu;

/** A PDU to encode: common fields that the encoder fills in are optional. */
export type PduInit<P extends Pdu> = Omit<P, 'totalAhsLength' | 'dataSegmentLength' | 'ahs' | 'data' | 'immediate' | 'final'> &
  Partial<Pick<P, 'ahs' | 'data' | 'immediate' | 'final'>>;
