// An export's transmission flags (proto.md "Transmission flags"), derived
// from the LU's geometry as the core's block door reports it, whose caps are
// the backstore's declared capabilities (STYLE.md §3): never probed.

import type { BlockGeometry } from '../../core/index.js';
import { NbdTransmissionFlag } from '../../protocols/nbd/index.js';

/** What option haggling agreed that changes the transmission flags. */
export interface TransmissionFlagOptions {
  /** Structured replies (or extended headers) are in force: DF can be honoured. */
  structuredReplies?: boolean;
}

/**
 * - FLUSH when the backstore has something to flush (caps.canFlush); FUA
 *   only when it honours forced unit access (caps.canFua); CACHE always (a
 *   range check, the page cache is our cache).
 * - On a writable export: WRITE_ZEROES (the core zeroes any LU, by
 *   deallocating, zeroing in place or writing), FAST_ZERO with it (a zero
 *   request that cannot be fast fails at once with ENOTSUP, which proto.md
 *   allows), TRIM on a thin LU (the core deallocates, or writes zeroes when
 *   the backstore cannot). Read-only: READ_ONLY and none of those.
 * - DF only with structured replies (proto.md: MUST be clear otherwise); a
 *   READ reply is always one OFFSET_DATA chunk, so DF costs nothing.
 * - CAN_MULTI_CONN from caps.canMultiConn: every connection to an export is
 *   a nexus onto the same core device object in this one process, and the
 *   fabric keeps no per-connection cache, so FLUSH and FUA cover every
 *   connection's writes exactly when the backstore's own flush does (a file,
 *   a ramdisk: yes; an NBD backstore: only if its upstream said so).
 */
export function deriveTransmissionFlags(geo: BlockGeometry, exportReadOnly: boolean, opts: TransmissionFlagOptions = {}): number {
  const F = NbdTransmissionFlag;
  const caps = geo.caps;
  let flags = F.HAS_FLAGS | F.SEND_CACHE;
  if (caps.canFlush) flags |= F.SEND_FLUSH;
  if (caps.canMultiConn) flags |= F.CAN_MULTI_CONN;
  if (opts.structuredReplies) flags |= F.SEND_DF;
  if (exportReadOnly || geo.writeProtected) return flags | F.READ_ONLY;
  if (caps.canFua) flags |= F.SEND_FUA;
  flags |= F.SEND_WRITE_ZEROES | F.SEND_FAST_ZERO;
  if (geo.thin) flags |= F.SEND_TRIM;
  return flags;
}
