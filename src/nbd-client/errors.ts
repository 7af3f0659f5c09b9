// Errors of the NBD client library: one class with stable string codes
// (STYLE.md §8). Callers branch on `code`, never on `message`.
//
//   ERR_NBD_BAD_URL          the URL cannot be parsed (or names TLS, which we do not speak)
//   ERR_NBD_CONNECT          the TCP/Unix connection could not be made
//   ERR_NBD_OPTION_REFUSED   the server refused an option (unknown export, policy...)
//   ERR_NBD_PROTOCOL         the server broke the protocol (bad magic, unknown cookie...)
//   ERR_NBD_SERVER_ERROR     a command failed; `errno` carries the NBD errno
//   ERR_NBD_DISCONNECTED     the connection closed (or was closed) before the reply
//   ERR_NBD_TIMEOUT          the connection, handshake or a request missed its deadline
//   ERR_NBD_UNSUPPORTED      the export did not advertise the command or flag
//   ERR_NBD_INVALID_ARGUMENT offset/length outside the export or not representable

import { LunkitError, type LunkitErrorCode, type NbdClientErrorCode } from '../protocols/errors.js';
import { NbdErrno, errnoName, repName } from '../protocols/nbd/constants.js';

export type { NbdClientErrorCode };

export interface NbdClientErrorDetails {
  /** ERR_NBD_SERVER_ERROR: the errno the server sent (NbdErrno value). */
  errno?: number;
  /** ERR_NBD_OPTION_REFUSED: the option (NbdOpt) and the reply type (NbdRep error). */
  option?: number;
  replyType?: number;
  cause?: unknown;
}

/** The one error class of the NBD client library. */
export class NbdClientError extends LunkitError {
  override readonly code: NbdClientErrorCode;
  /** NBD errno from the server (ERR_NBD_SERVER_ERROR). */
  readonly errno: number | undefined;
  /** The refused option (ERR_NBD_OPTION_REFUSED). */
  readonly option: number | undefined;
  /** The NBD_REP_ERR_* reply type (ERR_NBD_OPTION_REFUSED). */
  readonly replyType: number | undefined;

  constructor(code: NbdClientErrorCode, message: string, details: NbdClientErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'NbdClientError';
    this.code = code;
    this.errno = details.errno;
    this.option = details.option;
    this.replyType = details.replyType;
  }

  /**
   * The Node-style error code this error stands for, so a backstore can hand it
   * to the SCSI core: server errnos map one to one, a lost or stuck connection
   * is EIO, an unadvertised command EOPNOTSUPP, a bad argument EINVAL.
   */
  get nodeCode(): LunkitErrorCode {
    switch (this.code) {
      case 'ERR_NBD_SERVER_ERROR':
        return nbdErrnoToNodeCode(this.errno ?? NbdErrno.EIO);
      case 'ERR_NBD_UNSUPPORTED':
        return 'EOPNOTSUPP';
      case 'ERR_NBD_INVALID_ARGUMENT':
      case 'ERR_NBD_BAD_URL':
        return 'EINVAL';
      default:
        return 'EIO';
    }
  }
}

/** True if `err` is an NbdClientError, optionally with the given code. */
export function isNbdClientError(err: unknown, code?: NbdClientErrorCode): err is NbdClientError {
  return err instanceof NbdClientError && (code === undefined || err.code === code);
}

/** proto.md "Error values" -> Node error code; unknown values are EIO (proto.md says treat them so). */
export function nbdErrnoToNodeCode(errno: number): LunkitErrorCode {
  switch (errno) {
    case NbdErrno.EPERM:
      return 'EPERM';
    case NbdErrno.EIO:
      return 'EIO';
    case NbdErrno.ENOMEM:
      return 'ENOMEM';
    case NbdErrno.EINVAL:
      return 'EINVAL';
    case NbdErrno.ENOSPC:
      return 'ENOSPC';
    case NbdErrno.EOVERFLOW:
      return 'EOVERFLOW';
    case NbdErrno.ENOTSUP:
      return 'ENOTSUP';
    case NbdErrno.ESHUTDOWN:
      return 'ESHUTDOWN';
    default:
      return 'EIO';
  }
}

/** An NBD_REP_ERR_* reply turned into ERR_NBD_OPTION_REFUSED. */
export function optionRefused(option: number, optionName: string, replyType: number, message: string): NbdClientError {
  const text = message ? `: ${message}` : '';
  return new NbdClientError('ERR_NBD_OPTION_REFUSED', `server refused ${optionName} with ${repName(replyType)}${text}`, {
    option,
    replyType,
  });
}

/** A failed command turned into ERR_NBD_SERVER_ERROR. */
export function serverError(what: string, errno: number, message = ''): NbdClientError {
  const text = message ? `: ${message}` : '';
  return new NbdClientError('ERR_NBD_SERVER_ERROR', `${what} failed with ${errnoName(errno)} (${errno})${text}`, { errno });
}
