// Errors of the iSCSI initiator library: one class with stable string codes
// (STYLE.md §8). Callers branch on `code`, never on `message`.
//
//   ERR_ISCSI_BAD_URL          the iscsi:// URL cannot be parsed
//   ERR_ISCSI_CONNECT          the TCP connection could not be made
//   ERR_ISCSI_TIMEOUT          connect, login, a ping, a TMF or a logout missed its deadline
//   ERR_ISCSI_LOGIN_AUTH       login refused: authentication failure (02/01)
//   ERR_ISCSI_LOGIN_FORBIDDEN  login refused: authorization failure (02/02)
//   ERR_ISCSI_LOGIN_NOT_FOUND  login refused: target not found or removed (02/03, 02/04)
//   ERR_ISCSI_LOGIN_REDIRECT   the target moved (class 01); `targetAddress` says where
//   ERR_ISCSI_LOGIN_REJECTED   any other initiator error class (02/xx)
//   ERR_ISCSI_LOGIN_TARGET     target error class (03/xx: service unavailable, out of resources)
//   ERR_ISCSI_TARGET_AUTH      mutual CHAP: the target failed to prove its identity
//   ERR_ISCSI_PROTOCOL         the target broke the protocol (bad PDU, sequence, digest)
//   ERR_ISCSI_DISCONNECTED     the connection closed while the request was outstanding
//   ERR_ISCSI_SESSION_CLOSED   the session was logged out or closed before the request went out
//   ERR_ISCSI_REJECTED         the target answered the request with a Reject PDU
//   ERR_ISCSI_ABORTED          the task was aborted (ABORT TASK, LUN RESET, caller's AbortSignal)
//   ERR_ISCSI_TARGET_FAILURE   SCSI Response "target failure" (response 0x01): no SCSI status
//   ERR_ISCSI_TMF_FAILED       a task management request got a response other than complete
//   ERR_ISCSI_LOGOUT_FAILED    the Logout Response was not "success"
//   ERR_ISCSI_RECOVERY_FAILED  session reinstatement (ERL 0) gave up: the command could not be completed
//   ERR_ISCSI_MAX_CONNECTIONS  addConnection() beyond the negotiated MaxConnections (or removing the last one)
//   ERR_ISCSI_INVALID_ARGUMENT a request the library refuses before sending it (a write that is not whole blocks)

import { LunkitError, type InitiatorErrorCode } from '../protocols/errors.js';
import { LoginStatusClass } from '../protocols/iscsi/constants.js';

export type IscsiInitiatorErrorCode = InitiatorErrorCode;

export interface IscsiInitiatorErrorDetails {
  /** Login failures: RFC 7143 §11.13.5 Status-Class and Status-Detail. */
  statusClass?: number;
  statusDetail?: number;
  /** ERR_ISCSI_LOGIN_REDIRECT: the TargetAddress the target sent. */
  targetAddress?: string;
  /** ERR_ISCSI_REJECTED: the Reject reason (§11.17.1). */
  rejectReason?: number;
  /** ERR_ISCSI_TMF_FAILED: the TMF response code (§11.6.1); ERR_ISCSI_LOGOUT_FAILED: the logout response. */
  response?: number;
  cause?: unknown;
}

/** The one error class of the initiator library. */
export class IscsiInitiatorError extends LunkitError {
  override readonly code: IscsiInitiatorErrorCode;
  readonly statusClass: number | undefined;
  readonly statusDetail: number | undefined;
  readonly targetAddress: string | undefined;
  readonly rejectReason: number | undefined;
  readonly response: number | undefined;

  constructor(code: IscsiInitiatorErrorCode, message: string, details: IscsiInitiatorErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'IscsiInitiatorError';
    this.code = code;
    this.statusClass = details.statusClass;
    this.statusDetail = details.statusDetail;
    this.targetAddress = details.targetAddress;
    this.rejectReason = details.rejectReason;
    this.response = details.response;
  }
}

/** True if `err` is an IscsiInitiatorError, optionally with the given code. */
export function isIscsiInitiatorError(err: unknown, code?: IscsiInitiatorErrorCode): err is IscsiInitiatorError {
  return err instanceof IscsiInitiatorError && (code === undefined || err.code === code);
}

const DETAIL_TEXT: Record<number, string> = {
  0x0100: 'target moved temporarily',
  0x0101: 'target moved temporarily',
  0x0102: 'target moved permanently',
  0x0200: 'initiator error',
  0x0201: 'authentication failure',
  0x0202: 'authorization failure',
  0x0203: 'target not found',
  0x0204: 'target removed',
  0x0205: 'unsupported version',
  0x0206: 'too many connections',
  0x0207: 'missing parameter',
  0x0208: 'cannot include connection in session',
  0x0209: 'session type not supported',
  0x020a: 'session does not exist',
  0x020b: 'invalid request during login',
  0x0300: 'target error',
  0x0301: 'service unavailable',
  0x0302: 'out of resources',
};

/** A non-success Login Response turned into a typed error (RFC 7143 §11.13.5). */
export function loginStatusError(statusClass: number, statusDetail: number, targetAddress?: string): IscsiInitiatorError {
  const key = (statusClass << 8) | statusDetail;
  const text = DETAIL_TEXT[key] ?? `status ${statusClass.toString(16).padStart(2, '0')}/${statusDetail.toString(16).padStart(2, '0')}`;
  const hex = `${statusClass.toString(16).padStart(2, '0')}/${statusDetail.toString(16).padStart(2, '0')}`;
  let code: IscsiInitiatorErrorCode;
  if (statusClass === LoginStatusClass.REDIRECTION) code = 'ERR_ISCSI_LOGIN_REDIRECT';
  else if (statusClass === LoginStatusClass.TARGET_ERROR) code = 'ERR_ISCSI_LOGIN_TARGET';
  else if (key === 0x0201) code = 'ERR_ISCSI_LOGIN_AUTH';
  else if (key === 0x0202) code = 'ERR_ISCSI_LOGIN_FORBIDDEN';
  else if (key === 0x0203 || key === 0x0204) code = 'ERR_ISCSI_LOGIN_NOT_FOUND';
  else code = 'ERR_ISCSI_LOGIN_REJECTED';
  const where = targetAddress !== undefined ? ` (TargetAddress ${targetAddress})` : '';
  return new IscsiInitiatorError(code, `login failed: ${text} (${hex})${where}`, { statusClass, statusDetail, targetAddress });
}
