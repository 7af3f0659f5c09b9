// The NBD fabric's translation table: NBD requests become SCSI CDBs submitted
// through the core (ARCHITECTURE.md "One door into the core"), and CHECK
// CONDITION sense comes back as an NBD errno (proto.md "Error values").
// Everything here is pure so the mapping can be tested without sockets.

import { NbdErrno, NbdTransmissionFlag } from '../../protocols/nbd/index.js';
import { senseCodes } from '../../protocols/scsi/block-cdbs.js';

// The CDB builders live with the other SCSI codecs; re-exported for this fabric's modules.
export { modeSense6, parseReadCapacity16, prefetch16, readCapacity16, rw16, senseCodes, synchronizeCache16, testUnitReady, writeSame16 } from '../../protocols/scsi/block-cdbs.js';

// --- What the fabric learned about an export's LU (READ CAPACITY(16), MODE SENSE) --

export interface ExportGeometry {
  /** Logical block size in bytes (READ CAPACITY(16) bytes 8-11). */
  blockSize: number;
  /** Size in bytes (blocks x blockSize). */
  size: bigint;
  /** LBPME: the LU is thin-provisioned and accepts UNMAP (SBC-3 §5.16.2). */
  thin: boolean;
  /** LBPRZ: unmapped blocks read back as zeroes. */
  unmapReadsZero: boolean;
  /** MODE SENSE device-specific parameter WP bit: the LU itself is write protected. */
  writeProtected: boolean;
}

/** What option haggling agreed that changes the transmission flags. */
export interface TransmissionFlagOptions {
  /** Structured replies (or extended headers) are in force: DF can be honoured. */
  structuredReplies?: boolean;
}

/**
 * Transmission flags for an export (proto.md "Transmission flags"). FLUSH and
 * FUA map to SYNCHRONIZE CACHE and the FUA bit of WRITE(16), and CACHE to
 * PRE-FETCH(16), which the core always accepts; TRIM only when the LU is thin
 * (UNMAP would fail otherwise); writes of any kind are not offered on a
 * read-only export. FAST_ZERO goes with WRITE_ZEROES: a zero request that
 * cannot be fast fails at once with ENOTSUP, which proto.md allows.
 *
 * SEND_DF only with structured replies (proto.md: MUST be clear otherwise);
 * a READ reply is always one OFFSET_DATA chunk, so DF costs nothing.
 *
 * CAN_MULTI_CONN is always set, and this is why it is safe: every connection
 * to an export is a nexus onto the same core device object in this one
 * process, which owns the one backstore (one file descriptor, one ramdisk
 * buffer, one NBD client). The fabric keeps no per-connection cache: a WRITE
 * is answered only after the backstore write returned, so any connection's
 * later READ sees it, and FLUSH (SYNCHRONIZE CACHE over the whole LU) and FUA
 * reach the backstore's flush, which covers every write it accepted, whichever
 * connection sent it. proto.md asks exactly that: "the effects of FLUSH and FUA
 * MUST be visible across all connections". It stops being safe if a
 * per-connection (per-nexus) write-back cache is ever added in the fabric or
 * the core, if two processes serve the same file, or if a backstore spreads
 * writes over several upstream connections whose flush does not cover the
 * others (an NBD backstore without the upstream's CAN_MULTI_CONN): such a
 * backstore must then make its own flush cover all of them, or this flag has
 * to depend on a capability it declares.
 */
export function deriveTransmissionFlags(geo: ExportGeometry, exportReadOnly: boolean, opts: TransmissionFlagOptions = {}): number {
  const F = NbdTransmissionFlag;
  let flags = F.HAS_FLAGS | F.SEND_FLUSH | F.SEND_CACHE | F.CAN_MULTI_CONN;
  if (opts.structuredReplies) flags |= F.SEND_DF;
  if (exportReadOnly || geo.writeProtected) return flags | F.READ_ONLY;
  flags |= F.SEND_FUA | F.SEND_WRITE_ZEROES | F.SEND_FAST_ZERO;
  if (geo.thin) flags |= F.SEND_TRIM;
  return flags;
}

// --- Sense -> errno ------------------------------------------------------------------

const SK_NOT_READY = 0x2;
const SK_MEDIUM_ERROR = 0x3;
const SK_HARDWARE_ERROR = 0x4;
const SK_ILLEGAL_REQUEST = 0x5;
const SK_DATA_PROTECT = 0x7;

/**
 * The NBD errno for a failed SCSI command. proto.md "Error values": a write
 * or write-zeroes past the end SHOULD fail with ENOSPC, any other bad range
 * or field with EINVAL; write protection is EPERM; a thin pool that cannot
 * allocate is ENOSPC; everything else on the medium is EIO.
 */
export function senseToErrno(sense: Buffer | undefined, isWrite: boolean): number {
  const s = senseCodes(sense);
  if (!s) return NbdErrno.EIO;
  switch (s.key) {
    case SK_ILLEGAL_REQUEST:
      // LBA OUT OF RANGE (21/00) on a write means "no room past the end".
      if (s.asc === 0x21 && s.ascq === 0x00 && isWrite) return NbdErrno.ENOSPC;
      return NbdErrno.EINVAL;
    case SK_DATA_PROTECT:
      // SPACE ALLOCATION FAILED WRITE PROTECT (27/07, SBC-3 §4.7.3.6).
      if (s.asc === 0x27 && s.ascq === 0x07) return NbdErrno.ENOSPC;
      return NbdErrno.EPERM;
    case SK_MEDIUM_ERROR:
    case SK_HARDWARE_ERROR:
    case SK_NOT_READY:
      return NbdErrno.EIO;
    default:
      return NbdErrno.EIO;
  }
}

// --- CDB builders (SBC-3 §5) ------------------------------------------------------------

/** Largest block count one UNMAP block descriptor may carry (our VPD 0xB0 limit). */
export const UNMAP_DESCRIPTOR_BLOCKS = 0x100000;
/** WRITE SAME pieces stay well under the core's 64 MiB MAX WRITE SAME LENGTH. */
export const WRITE_SAME_CHUNK_BYTES = 32 * 1024 * 1024;

/**
 * UNMAP 0x42 (SBC-3 §5.28) and its parameter list: an 8-byte header, then one
 * 16-byte descriptor per piece of at most UNMAP_DESCRIPTOR_BLOCKS blocks.
 */
export function unmap(lba: bigint, blocks: number): { cdb: Buffer; param: Buffer } {
  const pieces: Array<[bigint, number]> = [];
  let at = lba;
  let left = blocks;
  while (left > 0) {
    const n = Math.min(left, UNMAP_DESCRIPTOR_BLOCKS);
    pieces.push([at, n]);
    at += BigInt(n);
    left -= n;
  }
  const param = Buffer.alloc(8 + 16 * pieces.length);
  param.writeUInt16BE(param.length - 2, 0);
  param.writeUInt16BE(16 * pieces.length, 2);
  pieces.forEach(([l, n], i) => {
    param.writeBigUInt64BE(l, 8 + 16 * i);
    param.writeUInt32BE(n, 16 + 16 * i);
  });
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x42;
  cdb.writeUInt16BE(param.length, 7);
  return { cdb, param };
}

