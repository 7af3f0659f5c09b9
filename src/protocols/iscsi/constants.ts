// iSCSI wire constants (RFC 7143 §11). Debug names are generated from the
// tables so they never drift from the values.

import { Opcode } from './pdu-types.js';

export const BHS_LENGTH = 48;
export const DIGEST_LENGTH = 4;
/** Reserved tag value (RFC 7143 §11.2.1.7/§11.2.1.8): "no task" / "no TTT". */
export const RESERVED_TAG = 0xffffffff;
/** Upper bound of the DataSegmentLength field (24 bits). */
export const MAX_DATA_SEGMENT_FIELD = 0xffffff;
/** RFC 7143 §13.12: MaxRecvDataSegmentLength is 512..2^24-1, default 8192. */
export const MIN_RECV_DATA_SEGMENT_LENGTH = 512;
export const DEFAULT_RECV_DATA_SEGMENT_LENGTH = 8192;
/** Bytes of a PDU's BHS header that hold opcode-independent bit flags. */
export const OPCODE_MASK = 0x3f;
export const IMMEDIATE_BIT = 0x40;
export const FINAL_BIT = 0x80;

/** ISCSI protocol version (RFC 7143 §11.12.4): only 0x00 exists. */
export const ISCSI_VERSION = 0x00;

/** AHS types (RFC 7143 §11.2.1.2). */
export const AhsType = {
  EXTENDED_CDB: 1,
  BIDI_READ_LENGTH: 2,
} as const;

/** Login stages (RFC 7143 §11.12.3). */
export const LoginStage = {
  SECURITY: 0,
  OPERATIONAL: 1,
  FULL_FEATURE: 3,
} as const;

/** Login response Status-Class (RFC 7143 §11.13.5). */
export const LoginStatusClass = {
  SUCCESS: 0x00,
  REDIRECTION: 0x01,
  INITIATOR_ERROR: 0x02,
  TARGET_ERROR: 0x03,
} as const;

/** Login response Status-Detail codes, named CLASS_DETAIL (RFC 7143 §11.13.5). */
export const LoginStatus = {
  SUCCESS: { statusClass: 0x00, statusDetail: 0x00 },
  TARGET_MOVED_TEMPORARILY: { statusClass: 0x01, statusDetail: 0x01 },
  TARGET_MOVED_PERMANENTLY: { statusClass: 0x01, statusDetail: 0x02 },
  INITIATOR_ERROR: { statusClass: 0x02, statusDetail: 0x00 },
  AUTHENTICATION_FAILURE: { statusClass: 0x02, statusDetail: 0x01 },
  AUTHORIZATION_FAILURE: { statusClass: 0x02, statusDetail: 0x02 },
  NOT_FOUND: { statusClass: 0x02, statusDetail: 0x03 },
  TARGET_REMOVED: { statusClass: 0x02, statusDetail: 0x04 },
  UNSUPPORTED_VERSION: { statusClass: 0x02, statusDetail: 0x05 },
  TOO_MANY_CONNECTIONS: { statusClass: 0x02, statusDetail: 0x06 },
  MISSING_PARAMETER: { statusClass: 0x02, statusDetail: 0x07 },
  CANT_INCLUDE_IN_SESSION: { statusClass: 0x02, statusDetail: 0x08 },
  SESSION_TYPE_NOT_SUPPORTED: { statusClass: 0x02, statusDetail: 0x09 },
  SESSION_DOES_NOT_EXIST: { statusClass: 0x02, statusDetail: 0x0a },
  INVALID_DURING_LOGIN: { statusClass: 0x02, statusDetail: 0x0b },
  TARGET_ERROR: { statusClass: 0x03, statusDetail: 0x00 },
  SERVICE_UNAVAILABLE: { statusClass: 0x03, statusDetail: 0x01 },
  OUT_OF_RESOURCES: { statusClass: 0x03, statusDetail: 0x02 },
} as const;

/** Reject reason codes (RFC 7143 §11.17.1). */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  LONG_OPERATION_REJECT: 0x0a,
  NEGOTIATION_RESET: 0x0b,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;

/** Task management function codes (RFC 7143 §11.5.1). */
export const TmfFunction = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;

/** Task management response codes (RFC 7143 §11.6.1). */
export const TmfResponse = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED: 4,
  FUNCTION_NOT_SUPPORTED: 5,
  FUNCTION_AUTHORIZATION_FAILED: 6,
  FUNCTION_REJECTED: 255,
} as const;

/** Asynchronous event codes (RFC 7143 §11.9.1). */
export const AsyncEvent = {
  SCSI_EVENT: 0,
  LOGOUT_REQUEST: 1,
  CONNECTION_DROP: 2,
  SESSION_DROP: 3,
  NEGOTIATION_REQUEST: 4,
  TASK_TERMINATION: 5,
  VENDOR_SPECIFIC: 255,
} as const;

/** Logout reason codes (RFC 7143 §11.14.1). */
export const LogoutReason = {
  CLOSE_SESSION: 0,
  CLOSE_CONNECTION: 1,
  REMOVE_CONNECTION_FOR_RECOVERY: 2,
} as const;

/** Logout response codes (RFC 7143 §11.15.1). */
export const LogoutResponse = {
  SUCCESS: 0,
  CID_NOT_FOUND: 1,
  RECOVERY_NOT_SUPPORTED: 2,
  CLEANUP_FAILED: 3,
} as const;

/** SNACK types (RFC 7143 §11.16.1). */
export const SnackType = {
  DATA_R2T: 0,
  STATUS: 1,
  DATA_ACK: 2,
  R_DATA: 3,
} as const;

/** SCSI Response "Response" field (RFC 7143 §11.4.3). */
export const ScsiResponseCode = {
  COMMAND_COMPLETED: 0x00,
  TARGET_FAILURE: 0x01,
} as const;

/** Task attributes in the SCSI Command ATTR field (RFC 7143 §11.3.1). */
export const TaskAttr = {
  UNTAGGED: 0,
  SIMPLE: 1,
  ORDERED: 2,
  HEAD_OF_QUEUE: 3,
  ACA: 4,
} as const;

const OPCODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Opcode).map(([name, value]) => [value as number, name]),
);

/** Debug name of an opcode, e.g. 0x01 -> "SCSI_COMMAND", unknown -> "OPCODE_0x1c". */
export function opcodeName(op: number): string {
  return OPCODE_NAMES.get(op & OPCODE_MASK) ?? `OPCODE_0x${(op & OPCODE_MASK).toString(16).padStart(2, '0')}`;
}

/** True if `op` is an opcode this codec can decode. */
export function isKnownOpcode(op: number): boolean {
  return OPCODE_NAMES.has(op);
}

function reverse(table: Record<string, number>): ReadonlyMap<number, string> {
  return new Map(Object.entries(table).map(([name, value]) => [value, name]));
}
const REJECT_NAMES = reverse(RejectReason);
const TMF_NAMES = reverse(TmfFunction);

/** Debug name of a Reject reason. */
export function rejectReasonName(reason: number): string {
  return REJECT_NAMES.get(reason) ?? `REASON_0x${reason.toString(16)}`;
}

/** Debug name of a TMF function. */
export function tmfFunctionName(fn: number): string {
  return TMF_NAMES.get(fn) ?? `FUNCTION_${fn}`;
}
