// TFTP wire constants: RFC 1350 (opcodes, error codes), RFC 2347 (OACK,
// error 8), RFC 2348 (blksize), RFC 2349 (timeout, tsize), RFC 7440
// (windowsize). Debug names are generated from the tables so a new entry
// cannot lack a name.

export const TFTP_DEFAULT_PORT = 69;

export const TftpOpcode = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  /** RFC 2347 option acknowledgment. */
  OACK: 6,
} as const;
export type TftpOpcode = (typeof TftpOpcode)[keyof typeof TftpOpcode];

export const TftpErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  /** RFC 2347: the peer refuses the negotiated options. */
  OPTION_REFUSED: 8,
} as const;
export type TftpErrorCode = (typeof TftpErrorCode)[keyof typeof TftpErrorCode];

export const TFTP_OPCODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(TftpOpcode).map(([k, v]) => [v, k]),
);
export const TFTP_ERROR_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(TftpErrorCode).map(([k, v]) => [v, k]),
);

/** RFC 1350 block size, used when blksize is not negotiated. */
export const TFTP_DEFAULT_BLKSIZE = 512;
/** RFC 2348 §"Blocksize Option Specification": valid range 8..65464. */
export const TFTP_MIN_BLKSIZE = 8;
export const TFTP_MAX_BLKSIZE = 65464;
/** 1500-byte Ethernet MTU minus IPv4 (20), UDP (8) and TFTP (4) headers. */
export const TFTP_ETHERNET_BLKSIZE = 1468;
/** RFC 2349 timeout range in seconds. */
export const TFTP_MIN_TIMEOUT = 1;
export const TFTP_MAX_TIMEOUT = 255;
/** RFC 7440 windowsize range. */
export const TFTP_MIN_WINDOWSIZE = 1;
export const TFTP_MAX_WINDOWSIZE = 65535;
/** Header bytes in front of a DATA payload: opcode(2) block(2). */
export const TFTP_DATA_HEADER = 4;
/** A UDP datagram cannot carry more than this many payload bytes. */
export const TFTP_MAX_PACKET = 65535;
/** Cap on option pairs in one request; real clients send at most five. */
export const TFTP_MAX_OPTIONS = 32;

export type TftpMode = 'netascii' | 'octet';
