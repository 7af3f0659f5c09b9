// One error class for every layer, with stable string codes from one closed
// list. Callers branch on `code`, never on `message` (STYLE.md §8, after
// undici). Every code here has a line in docs/errors.md, and
// test/unit/errors-doc.test.ts keeps the two lists (and the codes thrown in
// src/) the same. A new code is added here, in the docs, and nowhere else.

/** The iSCSI initiator library's codes (src/initiator, IscsiInitiatorError). */
export type InitiatorErrorCode =
  | 'ERR_ISCSI_BAD_URL'
  | 'ERR_ISCSI_CONNECT'
  | 'ERR_ISCSI_TIMEOUT'
  | 'ERR_ISCSI_LOGIN_AUTH'
  | 'ERR_ISCSI_LOGIN_FORBIDDEN'
  | 'ERR_ISCSI_LOGIN_NOT_FOUND'
  | 'ERR_ISCSI_LOGIN_REDIRECT'
  | 'ERR_ISCSI_LOGIN_REJECTED'
  | 'ERR_ISCSI_LOGIN_TARGET'
  | 'ERR_ISCSI_TARGET_AUTH'
  | 'ERR_ISCSI_PROTOCOL'
  | 'ERR_ISCSI_DISCONNECTED'
  | 'ERR_ISCSI_SESSION_CLOSED'
  | 'ERR_ISCSI_REJECTED'
  | 'ERR_ISCSI_ABORTED'
  | 'ERR_ISCSI_TARGET_FAILURE'
  | 'ERR_ISCSI_TMF_FAILED'
  | 'ERR_ISCSI_LOGOUT_FAILED'
  | 'ERR_ISCSI_RECOVERY_FAILED'
  | 'ERR_ISCSI_MAX_CONNECTIONS'
  | 'ERR_ISCSI_INVALID_ARGUMENT'
  | 'ERR_ISCSI_SCSI_STATUS';

/** The NBD client library's codes (src/nbd-client, NbdClientError). */
export type NbdClientErrorCode =
  | 'ERR_NBD_BAD_URL'
  | 'ERR_NBD_CONNECT'
  | 'ERR_NBD_OPTION_REFUSED'
  | 'ERR_NBD_PROTOCOL'
  | 'ERR_NBD_SERVER_ERROR'
  | 'ERR_NBD_DISCONNECTED'
  | 'ERR_NBD_TIMEOUT'
  | 'ERR_NBD_UNSUPPORTED'
  | 'ERR_NBD_INVALID_ARGUMENT';

/** attach/mount codes (src/attach, AttachError). */
export type AttachErrorCode =
  | 'ERR_NOT_ROOT'
  | 'ERR_ATTACH_SOURCE'
  | 'ERR_ATTACH_NOT_FOUND'
  | 'ERR_ATTACH_BUSY'
  | 'ERR_ATTACH_START'
  | 'ERR_MOUNT_IN_USE'
  | 'ERR_MOUNT_NOT_FOUND'
  | 'ERR_MOUNT_STEP';

export type LunkitErrorCode =
  // Protocol codecs (src/protocols): iSCSI PDUs and text keys, LUNs, NBD, SCSI data.
  | 'ERR_PDU_TOO_LARGE'
  | 'ERR_PDU_BAD_OPCODE'
  | 'ERR_PDU_MALFORMED'
  | 'ERR_PDU_HEADER_DIGEST'
  | 'ERR_PDU_DATA_DIGEST'
  | 'ERR_ISCSI_TEXT_MALFORMED'
  | 'ERR_ISCSI_CHAP'
  | 'ERR_LUN_UNSUPPORTED'
  | 'ERR_SCSI_DATA_MALFORMED'
  | 'ERR_NBD_BAD_MAGIC'
  | 'ERR_NBD_TOO_LARGE'
  | 'ERR_NBD_MALFORMED'
  // Backstores: errno names thrown on purpose so the core maps them to sense
  // (core/errno.ts errnoToSense) and NBD/FUSE to an errno. Node's own fs
  // errors carry the same names and pass through untouched.
  | 'EIO'
  | 'EINVAL'
  | 'ENOSPC'
  | 'EROFS'
  | 'EPERM'
  | 'EACCES'
  | 'ENOMEM'
  | 'EOVERFLOW'
  | 'EOPNOTSUPP'
  | 'ENOTSUP'
  | 'ESHUTDOWN'
  // Backstores and their filters: a configuration they refuse.
  | 'ERR_INVALID_FILTER'
  // qcow2 backstore (src/backstores/qcow2): an image it cannot open.
  | 'ERR_QCOW2_INVALID'
  | 'ERR_QCOW2_UNSUPPORTED'
  | 'ERR_QCOW2_BACKING'
  | 'ERR_QCOW2_NEEDS_CHECK'
  // Sockets: the bind errors a listener passes on with their own name
  // (EACCES above too: a privileged port).
  | 'EADDRINUSE'
  | 'EADDRNOTAVAIL'
  // Every layer: a broken internal assertion (a bug).
  | 'ERR_INTERNAL'
  // SCSI core (src/core).
  | 'ERR_BACKSTORE_CAPS'
  // iSCSI target fabric (src/fabrics/iscsi).
  | 'ERR_LISTEN'
  | 'ERR_ISCSI_LOGIN_REFUSED'
  // NBD server fabric (src/fabrics/nbd).
  | 'ERR_NBD_TLS'
  | 'ERR_NBD_SOCKET_PATH'
  | 'ERR_NBD_SOCKET_IN_USE'
  | 'ERR_NBD_EXPORT_UNAVAILABLE'
  // FUSE fabric (src/fabrics/fuse).
  | 'ERR_FUSE_STATE'
  | 'ERR_FUSE_MOUNT'
  | 'ERR_FUSE_PROBE'
  | 'ERR_FUSE_UNMOUNT'
  | 'ERR_FUSE_BAD_NAME'
  | 'ERR_FUSE_MOUNTPOINT'
  | 'ERR_FUSE_MOUNTPOINT_IN_USE'
  // iSCSI initiator library (src/initiator, IscsiInitiatorError).
  | InitiatorErrorCode
  // NBD client library (src/nbd-client, NbdClientError).
  | NbdClientErrorCode
  // Daemon and control socket (src/daemon: ControlError; docs/control-protocol.md).
  | 'ERR_CONTROL_PARSE'
  | 'ERR_CONTROL_REQUEST'
  | 'ERR_CONTROL_METHOD'
  | 'ERR_CONTROL_TOO_LARGE'
  | 'ERR_CONTROL_BUSY'
  | 'ERR_INVALID_PARAMS'
  | 'ERR_NOT_FOUND'
  | 'ERR_EXISTS'
  | 'ERR_IN_USE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_APPLY_FAILED'
  | 'ERR_CONTROL_CONNECT'
  | 'ERR_CONTROL_CLOSED'
  | 'ERR_CONTROL_PROTOCOL'
  | 'ERR_CONTROL_RPC'
  | 'ERR_CONTROL_SOCKET_PATH'
  | 'ERR_CONTROL_SOCKET_IN_USE'
  | 'ERR_TARGETCLI_INVALID'
  // Command line (src/cli: UsageError, exit code 2) and human input parsers (src/util).
  | 'ERR_USAGE'
  | 'ERR_INVALID_NAME'
  | 'ERR_INVALID_SIZE'
  | 'ERR_INVALID_NUMBER'
  | 'ERR_INVALID_PORTAL'
  | 'ERR_INVALID_TYPE'
  | 'ERR_NOT_A_TERMINAL'
  // attach / mount (src/attach, AttachError).
  | AttachErrorCode
  // Development tools (src/tools: bench, conformance).
  | 'ERR_TOOL_PEER';

// The same list at run time, for codes that arrive as text (a daemon's JSON-RPC
// error, an attach holder's reply, a bind error). `satisfies` makes the
// compiler hold it equal to the union.
const CODES = new Set<string>(
  Object.keys({
    ERR_PDU_TOO_LARGE: 1, ERR_PDU_BAD_OPCODE: 1, ERR_PDU_MALFORMED: 1, ERR_PDU_HEADER_DIGEST: 1, ERR_PDU_DATA_DIGEST: 1,
    ERR_ISCSI_TEXT_MALFORMED: 1, ERR_ISCSI_CHAP: 1, ERR_LUN_UNSUPPORTED: 1, ERR_SCSI_DATA_MALFORMED: 1,
    ERR_NBD_BAD_MAGIC: 1, ERR_NBD_TOO_LARGE: 1, ERR_NBD_MALFORMED: 1,
    EIO: 1, EINVAL: 1, ENOSPC: 1, EROFS: 1, EPERM: 1, EACCES: 1, ENOMEM: 1, EOVERFLOW: 1,
    EOPNOTSUPP: 1, ENOTSUP: 1, ESHUTDOWN: 1, EADDRINUSE: 1, EADDRNOTAVAIL: 1,
    ERR_INVALID_FILTER: 1,
    ERR_QCOW2_INVALID: 1, ERR_QCOW2_UNSUPPORTED: 1, ERR_QCOW2_BACKING: 1, ERR_QCOW2_NEEDS_CHECK: 1,
    ERR_INTERNAL: 1,
    ERR_BACKSTORE_CAPS: 1,
    ERR_LISTEN: 1, ERR_ISCSI_LOGIN_REFUSED: 1,
    ERR_NBD_TLS: 1, ERR_NBD_SOCKET_PATH: 1, ERR_NBD_SOCKET_IN_USE: 1, ERR_NBD_EXPORT_UNAVAILABLE: 1,
    ERR_FUSE_STATE: 1, ERR_FUSE_MOUNT: 1, ERR_FUSE_PROBE: 1, ERR_FUSE_UNMOUNT: 1, ERR_FUSE_BAD_NAME: 1, ERR_FUSE_MOUNTPOINT: 1,
    ERR_FUSE_MOUNTPOINT_IN_USE: 1,
    ERR_ISCSI_BAD_URL: 1, ERR_ISCSI_CONNECT: 1, ERR_ISCSI_TIMEOUT: 1, ERR_ISCSI_LOGIN_AUTH: 1, ERR_ISCSI_LOGIN_FORBIDDEN: 1,
    ERR_ISCSI_LOGIN_NOT_FOUND: 1, ERR_ISCSI_LOGIN_REDIRECT: 1, ERR_ISCSI_LOGIN_REJECTED: 1, ERR_ISCSI_LOGIN_TARGET: 1,
    ERR_ISCSI_TARGET_AUTH: 1, ERR_ISCSI_PROTOCOL: 1, ERR_ISCSI_DISCONNECTED: 1, ERR_ISCSI_SESSION_CLOSED: 1, ERR_ISCSI_REJECTED: 1,
    ERR_ISCSI_ABORTED: 1, ERR_ISCSI_TARGET_FAILURE: 1, ERR_ISCSI_TMF_FAILED: 1, ERR_ISCSI_LOGOUT_FAILED: 1,
    ERR_ISCSI_RECOVERY_FAILED: 1, ERR_ISCSI_MAX_CONNECTIONS: 1, ERR_ISCSI_INVALID_ARGUMENT: 1, ERR_ISCSI_SCSI_STATUS: 1,
    ERR_NBD_BAD_URL: 1, ERR_NBD_CONNECT: 1, ERR_NBD_OPTION_REFUSED: 1, ERR_NBD_PROTOCOL: 1, ERR_NBD_SERVER_ERROR: 1,
    ERR_NBD_DISCONNECTED: 1, ERR_NBD_TIMEOUT: 1, ERR_NBD_UNSUPPORTED: 1, ERR_NBD_INVALID_ARGUMENT: 1,
    ERR_CONTROL_PARSE: 1, ERR_CONTROL_REQUEST: 1, ERR_CONTROL_METHOD: 1, ERR_CONTROL_TOO_LARGE: 1, ERR_CONTROL_BUSY: 1, ERR_INVALID_PARAMS: 1,
    ERR_NOT_FOUND: 1, ERR_EXISTS: 1, ERR_IN_USE: 1, ERR_INVALID_CONFIG: 1, ERR_APPLY_FAILED: 1, ERR_CONTROL_CONNECT: 1,
    ERR_CONTROL_CLOSED: 1, ERR_CONTROL_PROTOCOL: 1, ERR_CONTROL_RPC: 1, ERR_CONTROL_SOCKET_PATH: 1, ERR_CONTROL_SOCKET_IN_USE: 1,
    ERR_TARGETCLI_INVALID: 1,
    ERR_USAGE: 1, ERR_INVALID_NAME: 1, ERR_INVALID_SIZE: 1, ERR_INVALID_NUMBER: 1, ERR_INVALID_PORTAL: 1, ERR_INVALID_TYPE: 1,
    ERR_NOT_A_TERMINAL: 1,
    ERR_NOT_ROOT: 1, ERR_ATTACH_SOURCE: 1, ERR_ATTACH_NOT_FOUND: 1, ERR_ATTACH_BUSY: 1, ERR_ATTACH_START: 1, ERR_MOUNT_IN_USE: 1,
    ERR_MOUNT_NOT_FOUND: 1, ERR_MOUNT_STEP: 1,
    ERR_TOOL_PEER: 1,
  } satisfies Record<LunkitErrorCode, 1>),
);

/** True if `code` is one of ours (text from a peer, or a Node error's code). */
export function isLunkitErrorCode(code: unknown): code is LunkitErrorCode {
  return typeof code === 'string' && CODES.has(code);
}

export class LunkitError extends Error {
  readonly code: LunkitErrorCode;

  constructor(code: LunkitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LunkitError';
    this.code = code;
  }
}

/** True if `err` is a LunkitError, optionally with the given code. */
export function isLunkitError(err: unknown, code?: LunkitErrorCode): err is LunkitError {
  return err instanceof LunkitError && (code === undefined || err.code === code);
}
