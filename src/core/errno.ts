// The one mapping between SCSI outcomes and errno values (STYLE.md §7,
// ARCHITECTURE.md "one map turns a reason into an errno"). It sits beside the
// sense-reason table and serves every direction:
//   - a backstore's thrown Node error (EIO, ENOSPC, EROFS...) -> sense reason
//     (errnoToSense), for the SCSI path and the block nexus alike;
//   - a sense reason or status -> Linux errno (reasonToErrno), for the block
//     fabrics (FUSE hands it to the kernel, NBD narrows it to its wire set
//     with protocols/nbd nbdErrnoOf);
//   - remote sense bytes (key/ASC/ASCQ from an initiator-backed backstore)
//     -> the reason in our table (reasonForSense), so a remote failure is
//     reported with the same sense a local one would get.

import { SenseKey, SenseReasons, type SenseReason } from './sense-reasons.js';
import { LunkitError, isLunkitErrorCode, type LunkitErrorCode } from '../protocols/errors.js';

export type BackstoreOp = 'read' | 'write' | 'flush' | 'unmap';

/** Linux errno values (asm-generic/errno-base.h, errno.h). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  ENOSYS: 38,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  EREMOTEIO: 121,
} as const;

/** Errno names by value, for messages. */
const ERRNO_NAMES = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/**
 * What a block operation can end with besides success: a sense reason from
 * the one table, one of the SAM statuses that carry no sense, or
 * NOT_SUPPORTED (a request the LU cannot serve as asked, e.g. a fast zero
 * that would have to write every block: NBD's ENOTSUP).
 */
export type BlockFailure = SenseReason | 'RESERVATION_CONFLICT' | 'BUSY' | 'TASK_SET_FULL' | 'ABORTED' | 'NOT_SUPPORTED';

/** The Node error code of an error (EIO, ENOSPC...), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * A backstore failure that already knows its sense reason (a remote LUN's
 * CHECK CONDITION, an injected fault). `code` stays the errno name so code
 * that branches on Node error codes keeps working.
 */
export class BackstoreIoError extends LunkitError {
  constructor(
    code: LunkitErrorCode,
    message: string,
    readonly senseReason: SenseReason,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'BackstoreIoError';
  }
}

/** Errors that came from an fdatasync inside a write (io-guard.ts latches on them). */
const syncFailures = new WeakSet<object>();

/**
 * Marks `err` as a failed sync (fdatasync, fsync) and returns it. A
 * backstore that syncs inside write() (write-through, FUA, metadata
 * ordering) throws its sync errors through this, so the LU latches as it
 * does for a failed flush: the kernel may have dropped dirty pages.
 */
export function markSyncFailure<E>(err: E): E {
  if (typeof err === 'object' && err !== null) syncFailures.add(err);
  return err;
}

export function isSyncFailure(err: unknown): boolean {
  return typeof err === 'object' && err !== null && syncFailures.has(err);
}

/**
 * SBC-3 §4.11 / SPC-4 annex: a failed read is a MEDIUM ERROR (03/11/00
 * UNRECOVERED READ ERROR), a failed write or flush a MEDIUM ERROR (03/0C/00
 * WRITE ERROR); a full thin pool is DATA PROTECT SPACE ALLOCATION FAILED
 * WRITE PROTECT (07/27/07); a read-only file system or a refused open is
 * DATA PROTECT WRITE PROTECTED (07/27/00). Anything else is a target fault
 * (04/44/00 INTERNAL TARGET FAILURE). An error that names its reason
 * (BackstoreIoError) keeps it.
 */
export function errnoToSense(err: unknown, op: BackstoreOp): SenseReason {
  if (err instanceof BackstoreIoError) return err.senseReason;
  switch (errorCode(err)) {
    case 'EIO':
    case 'ENXIO':
    case 'EBADMSG':
    case 'EREMOTEIO':
      return op === 'read' ? 'MEDIUM_ERROR_READ' : 'MEDIUM_ERROR_WRITE';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'SPACE_ALLOCATION_FAILED';
    case 'EROFS':
    case 'EPERM':
    case 'EACCES':
      return 'WRITE_PROTECTED';
    default:
      return 'INTERNAL_TARGET_FAILURE';
  }
}

/**
 * The Linux errno for a failed block operation (positive). proto.md "Error
 * values" and what the kernel expects of a file:
 * - write protection: EROFS; a full thin pool: ENOSPC;
 * - LBA OUT OF RANGE on a write: ENOSPC (no room past the end), any other
 *   illegal request: EINVAL;
 * - RESERVATION CONFLICT: EACCES; BUSY / TASK SET FULL: EAGAIN;
 * - medium, hardware, not ready, aborted and anything else: EIO.
 */
export function reasonToErrno(failure: BlockFailure, isWrite: boolean): number {
  switch (failure) {
    case 'RESERVATION_CONFLICT':
      return Errno.EACCES;
    case 'BUSY':
    case 'TASK_SET_FULL':
      return Errno.EAGAIN;
    case 'ABORTED':
      return Errno.EIO;
    case 'NOT_SUPPORTED':
      return Errno.EOPNOTSUPP;
    case 'SPACE_ALLOCATION_FAILED':
      return Errno.ENOSPC;
    case 'LBA_OUT_OF_RANGE':
      return isWrite ? Errno.ENOSPC : Errno.EINVAL;
    default:
      break;
  }
  const key = SenseReasons[failure].key;
  if (key === SenseKey.DATA_PROTECT) return Errno.EROFS;
  if (key === SenseKey.ILLEGAL_REQUEST) return Errno.EINVAL;
  return Errno.EIO;
}

/** key/ASC/ASCQ -> reason, built once from the table. */
const BY_CODES = new Map<number, SenseReason>();
for (const [reason, d] of Object.entries(SenseReasons) as Array<[SenseReason, { key: number; asc: number; ascq: number }]>) {
  const k = (d.key << 16) | (d.asc << 8) | d.ascq;
  // MEDIUM_ERROR_READ/_WRITE share nothing; first entry wins for true duplicates.
  if (!BY_CODES.has(k)) BY_CODES.set(k, reason);
}

/**
 * The reason in our table for sense codes read off the wire (a remote
 * target's CHECK CONDITION). Codes we do not list fall back by sense key to
 * the closest reason, so the errno and the sense we report stay in family.
 */
export function reasonForSense(key: number, asc: number, ascq: number, op: BackstoreOp): SenseReason {
  const exact = BY_CODES.get(((key & 0x0f) << 16) | ((asc & 0xff) << 8) | (ascq & 0xff));
  if (exact) return exact;
  switch (key & 0x0f) {
    case SenseKey.DATA_PROTECT:
      return 'WRITE_PROTECTED';
    case SenseKey.ILLEGAL_REQUEST:
      return 'INVALID_FIELD_IN_CDB';
    case SenseKey.NOT_READY:
      return 'NOT_READY_CAUSE_NOT_REPORTABLE';
    case SenseKey.MEDIUM_ERROR:
      return op === 'read' ? 'MEDIUM_ERROR_READ' : 'MEDIUM_ERROR_WRITE';
    case SenseKey.ABORTED_COMMAND:
      return 'COMMAND_ABORTED_NO_ASC';
    case SenseKey.MISCOMPARE:
      return 'MISCOMPARE_DURING_VERIFY';
    default:
      return 'LOGICAL_UNIT_COMMUNICATION_FAILURE';
  }
}

/** The errno name (for a Node-style `code`) of a reason: what a backstore throws for it. */
export function errnoCodeOf(reason: SenseReason, op: BackstoreOp): LunkitErrorCode {
  const name = errnoName(reasonToErrno(reason, op !== 'read'));
  return isLunkitErrorCode(name) ? name : 'EIO';
}
