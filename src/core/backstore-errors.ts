// One mapping from backstore (Node fs) errors to SCSI sense reasons, and one
// to NBD errnos (STYLE.md §7). Backstores throw Node errors that keep their
// `code`; the core never inspects messages.

import type { SenseReason } from './sense-reasons.js';
import { NbdErrno } from '../protocols/nbd/constants.js';

export type BackstoreOp = 'read' | 'write' | 'flush' | 'unmap';

/** The Node error code of an error (EIO, ENOSPC...), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * SBC-3 §4.11 / SPC-4 annex: a failed read is a MEDIUM ERROR (03/11/00
 * UNRECOVERED READ ERROR), a failed write or flush a MEDIUM ERROR (03/0C/00
 * WRITE ERROR); a full thin pool is DATA PROTECT SPACE ALLOCATION FAILED
 * WRITE PROTECT (07/27/07); a read-only file system or a refused open is
 * DATA PROTECT WRITE PROTECTED (07/27/00). Anything else is a target fault
 * (04/44/00 INTERNAL TARGET FAILURE).
 */
export function errnoToSense(err: unknown, op: BackstoreOp): SenseReason {
  switch (errorCode(err)) {
    case 'EIO':
    case 'ENXIO':
    case 'EBADMSG':
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

// The NBD errno values live with the NBD wire constants; re-exported for callers of errnoToNbd.
export { NbdErrno };

/** Map a backstore error to the errno an NBD server sends (EIO for the unknown). */
export function errnoToNbd(err: unknown): number {
  switch (errorCode(err)) {
    case 'EPERM':
    case 'EACCES':
    case 'EROFS':
      return NbdErrno.EPERM;
    case 'ENOSPC':
    case 'EDQUOT':
      return NbdErrno.ENOSPC;
    case 'ENOMEM':
      return NbdErrno.ENOMEM;
    case 'EINVAL':
      return NbdErrno.EINVAL;
    case 'EOVERFLOW':
      return NbdErrno.EOVERFLOW;
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      return NbdErrno.ENOTSUP;
    default:
      return NbdErrno.EIO;
  }
}
