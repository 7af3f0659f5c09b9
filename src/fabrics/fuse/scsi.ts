// The FUSE fabric's translation table: file reads, writes and fsyncs become
// SBC-3 CDBs for ScsiCore.submit() (ARCHITECTURE.md "One door into the core"),
// and a failed command's status and sense become the errno the kernel hands
// back to the program that did the I/O. Pure, so the table is unit-tested.

import { parseSense } from '../../core/sense.js';
import { ScsiStatus, type ScsiResponse } from '../../core/types.js';
import { parseReadCapacity16 } from '../../protocols/scsi/block-cdbs.js';

// The CDB builders live with the other SCSI codecs; re-exported for this fabric's modules.
export { modeSense6, readCapacity16, rw16, synchronizeCache16, testUnitReady } from '../../protocols/scsi/block-cdbs.js';

/** Linux errno values (asm-generic/errno-base.h); fuse-native wants them negated. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  ENOTCONN: 107,
} as const;

// Sense keys (SPC-4 §4.5.6, table 27).
const SK_NOT_READY = 0x2;
const SK_MEDIUM_ERROR = 0x3;
const SK_HARDWARE_ERROR = 0x4;
const SK_ILLEGAL_REQUEST = 0x5;
export const SK_UNIT_ATTENTION = 0x6;
const SK_DATA_PROTECT = 0x7;
const SK_ABORTED_COMMAND = 0xb;

/** Sense key/ASC/ASCQ of a response, when it carries readable sense. */
export function responseSense(res: ScsiResponse): { key: number; asc: number; ascq: number } | undefined {
  if (!res.sense) return undefined;
  const p = parseSense(res.sense);
  return p ? { key: p.key, asc: p.asc, ascq: p.ascq } : undefined;
}

/** True for outcomes worth resubmitting: a unit attention, BUSY, TASK SET FULL. */
export function isRetryable(res: ScsiResponse): boolean {
  if (res.status === ScsiStatus.BUSY || res.status === ScsiStatus.TASK_SET_FULL) return true;
  return res.status === ScsiStatus.CHECK_CONDITION && responseSense(res)?.key === SK_UNIT_ATTENTION;
}

/** CAPACITY DATA HAS CHANGED (2A/09): the file's size must be re-read. */
export function isCapacityChanged(res: ScsiResponse): boolean {
  const s = responseSense(res);
  return res.status === ScsiStatus.CHECK_CONDITION && s?.key === SK_UNIT_ATTENTION && s.asc === 0x2a && s.ascq === 0x09;
}

/**
 * The errno for a SCSI outcome that is not GOOD (positive value).
 * - RESERVATION CONFLICT: another nexus holds a reservation: EACCES.
 * - DATA PROTECT: SPACE ALLOCATION FAILED WRITE PROTECT (27/07, SBC-3
 *   §4.7.3.6) is a full thin pool: ENOSPC; any other write protection
 *   (27/xx: the LU or this mapping is read-only): EROFS.
 * - ILLEGAL REQUEST LBA OUT OF RANGE (21/00) on a write: ENOSPC (the file
 *   cannot grow); any other illegal request: EINVAL.
 * - Medium, hardware, not ready, aborted and everything else: EIO.
 */
export function outcomeToErrno(res: ScsiResponse, isWrite: boolean): number {
  if (res.aborted) return Errno.EIO;
  switch (res.status) {
    case ScsiStatus.GOOD:
    case ScsiStatus.CONDITION_MET:
      return 0;
    case ScsiStatus.RESERVATION_CONFLICT:
      return Errno.EACCES;
    case ScsiStatus.BUSY:
    case ScsiStatus.TASK_SET_FULL:
      return Errno.EAGAIN;
    case ScsiStatus.CHECK_CONDITION:
      break;
    default:
      return Errno.EIO;
  }
  const s = responseSense(res);
  if (!s) return Errno.EIO;
  switch (s.key) {
    case SK_DATA_PROTECT:
      return s.asc === 0x27 && s.ascq === 0x07 ? Errno.ENOSPC : Errno.EROFS;
    case SK_ILLEGAL_REQUEST:
      return s.asc === 0x21 && s.ascq === 0x00 && isWrite ? Errno.ENOSPC : Errno.EINVAL;
    case SK_NOT_READY:
    case SK_MEDIUM_ERROR:
    case SK_HARDWARE_ERROR:
    case SK_ABORTED_COMMAND:
    default:
      return Errno.EIO;
  }
}

// --- CDB builders (SBC-3 §5) ----------------------------------------------------

/** Size in bytes and logical block size from READ CAPACITY(16) parameter data. */
export function parseCapacity(data: Buffer): { size: number; blockSize: number } {
  const { blocks, blockSize } = parseReadCapacity16(data);
  return { size: Number(blocks * BigInt(blockSize)), blockSize };
}
