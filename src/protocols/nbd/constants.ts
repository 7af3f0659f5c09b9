// NBD wire constants (NetworkBlockDevice/nbd doc/proto.md; nbdkit
// common/protocol/nbd-protocol.h carries the same values). Debug names are
// generated from the constant tables so a new entry cannot lack a name.

// --- Magics (proto.md "Handshake", "Transmission") -------------------------

/** 'NBDMAGIC': first 8 bytes of every greeting. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': newstyle greeting and every option request. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Oldstyle greeting magic (cliserv_magic); recognised only to reject it. */
export const NBD_OLDSTYLE_MAGIC = 0x00420281861253n;
/** Option reply magic (fixed newstyle). */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_EXTENDED_REQUEST_MAGIC = 0x21e41c71;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const NBD_EXTENDED_REPLY_MAGIC = 0x6e8a278c;

// --- Sizes and limits -------------------------------------------------------

export const NBD_DEFAULT_PORT = 10809;
/** Server greeting: NBDMAGIC(8) IHAVEOPT(8) handshake flags(2). */
export const GREETING_LENGTH = 18;
export const CLIENT_FLAGS_LENGTH = 4;
/** Option request header: IHAVEOPT(8) option(4) length(4). */
export const OPTION_HEADER_LENGTH = 16;
/** Option reply header: magic(8) option(4) type(4) length(4). */
export const OPTION_REPLY_HEADER_LENGTH = 20;
/** NBD_OPT_EXPORT_NAME reply: size(8) flags(2) + 124 zero bytes unless NO_ZEROES. */
export const EXPORT_NAME_REPLY_LENGTH = 10;
export const EXPORT_NAME_REPLY_ZEROES = 124;
export const REQUEST_LENGTH = 28;
export const EXTENDED_REQUEST_LENGTH = 32;
export const SIMPLE_REPLY_LENGTH = 16;
export const STRUCTURED_REPLY_LENGTH = 20;
export const EXTENDED_REPLY_LENGTH = 32;
/** proto.md "Conventions": strings MUST be no longer than 4096 bytes. */
export const NBD_MAX_STRING = 4096;
/** Hard cap on an option's data (nbdkit MAX_REQUEST_SIZE-like guard for haggling). */
export const NBD_MAX_OPTION_LENGTH = 64 * 1024;
/** Hard cap on a request payload (NBD_MAX_BUFFER_SIZE, nbdkit MAX_REQUEST_SIZE). */
export const NBD_MAX_PAYLOAD = 32 * 1024 * 1024;

// --- Handshake flags (server, 16 bits) and client flags (32 bits) -------------

export const NbdHandshakeFlag = {
  FIXED_NEWSTYLE: 1 << 0,
  NO_ZEROES: 1 << 1,
} as const;

export const NbdClientFlag = {
  C_FIXED_NEWSTYLE: 1 << 0,
  C_NO_ZEROES: 1 << 1,
} as const;

// --- Transmission flags (16 bits, per export) --------------------------------

export const NbdTransmissionFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
  BLOCK_STAT_PAYLOAD: 1 << 12,
} as const;

// --- Options ------------------------------------------------------------------

export const NbdOpt = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

/** Option reply types; errors have bit 31 set. */
export const NbdRep = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
  ERR_EXT_HEADER_REQD: 0x8000000a,
} as const;

export function isRepError(type: number): boolean {
  return (type & 0x80000000) !== 0;
}

/** NBD_REP_INFO payload types (16 bits). */
export const NbdInfo = {
  EXPORT: 0,
  NAME: 1,
  DESCRIPTION: 2,
  BLOCK_SIZE: 3,
} as const;

// --- Transmission -------------------------------------------------------------

export const NbdCmd = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
  /** Experimental (proto.md "Experimental extensions"). */
  RESIZE: 8,
} as const;

export const NbdCmdFlag = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
  /** Extended headers only: the request length is a payload length. */
  PAYLOAD_LEN: 1 << 5,
} as const;

/** Structured reply chunk flags. */
export const NbdReplyFlag = {
  DONE: 1 << 0,
} as const;

/** Structured reply chunk types; errors have bit 15 set. */
export const NbdReplyType = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  BLOCK_STATUS_EXT: 6,
  ERROR: 0x8001,
  ERROR_OFFSET: 0x8002,
} as const;

export function isReplyTypeError(type: number): boolean {
  return (type & 0x8000) !== 0;
}

/** base:allocation block status flags. */
export const NbdState = {
  HOLE: 1 << 0,
  ZERO: 1 << 1,
} as const;

/** The meta context every server worth talking to offers. */
export const BASE_ALLOCATION = 'base:allocation';

/** Errno values on the wire (proto.md "Error values"): not the host's errno. */
export const NbdErrno = {
  OK: 0,
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;

/**
 * proto.md "Error values": the wire carries only the errnos above. A Linux
 * errno outside the set is narrowed: write protection (EROFS, EACCES) is
 * EPERM, EOPNOTSUPP is ENOTSUP, anything else unknown EIO.
 */
export function nbdErrnoOf(errno: number): number {
  switch (errno) {
    case 0:
    case NbdErrno.EPERM:
    case NbdErrno.EIO:
    case NbdErrno.ENOMEM:
    case NbdErrno.EINVAL:
    case NbdErrno.ENOSPC:
    case NbdErrno.EOVERFLOW:
    case NbdErrno.ENOTSUP:
    case NbdErrno.ESHUTDOWN:
      return errno;
    case 13: // EACCES
    case 30: // EROFS
      return NbdErrno.EPERM;
    default:
      return NbdErrno.EIO;
  }
}

// --- Debug names, generated from the tables above -----------------------------

function reverse(table: Readonly<Record<string, number>>): Map<number, string> {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) m.set(v, k);
  return m;
}

function flagNames(table: Readonly<Record<string, number>>, flags: number): string {
  const parts: string[] = [];
  let rest = flags >>> 0;
  for (const [k, v] of Object.entries(table)) {
    if ((rest & v) !== 0) {
      parts.push(k);
      rest = (rest & ~v) >>> 0;
    }
  }
  if (rest !== 0) parts.push(`0x${rest.toString(16)}`);
  return parts.length === 0 ? '0' : parts.join('|');
}

const OPT_NAMES = reverse(NbdOpt);
const REP_NAMES = reverse(NbdRep);
const INFO_NAMES = reverse(NbdInfo);
const CMD_NAMES = reverse(NbdCmd);
const REPLY_TYPE_NAMES = reverse(NbdReplyType);
const ERRNO_NAMES = reverse(NbdErrno);

function named(m: Map<number, string>, prefix: string, v: number): string {
  const n = m.get(v);
  return n === undefined ? `${prefix}unknown(0x${v.toString(16)})` : prefix + n;
}

export const optName = (opt: number): string => named(OPT_NAMES, 'NBD_OPT_', opt);
export const repName = (rep: number): string => named(REP_NAMES, 'NBD_REP_', rep);
export const infoName = (info: number): string => named(INFO_NAMES, 'NBD_INFO_', info);
export const cmdName = (cmd: number): string => named(CMD_NAMES, 'NBD_CMD_', cmd);
export const replyTypeName = (t: number): string => named(REPLY_TYPE_NAMES, 'NBD_REPLY_TYPE_', t);
export const errnoName = (e: number): string => named(ERRNO_NAMES, '', e);
export const cmdFlagNames = (f: number): string => flagNames(NbdCmdFlag, f);
export const transmissionFlagNames = (f: number): string => flagNames(NbdTransmissionFlag, f);
export const handshakeFlagNames = (f: number): string => flagNames(NbdHandshakeFlag, f);
