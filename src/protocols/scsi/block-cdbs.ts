// CDBs that block-level fabrics and initiators build (NBD, FUSE and the iSCSI
// initiator all turn block requests into these), the READ CAPACITY(16)
// parameter data they read back, and the sense codes they branch on. One
// builder per command, shared by every caller that is not the core itself.

import { LunkitError } from '../errors.js';

/** READ(16) 0x88 / WRITE(16) 0x8a: LBA(8) at byte 2, transfer length(4) at byte 10, FUA bit 3 of byte 1 (SBC-3 §5.14, §5.36). */
export function rw16(write: boolean, lba: bigint | number, blocks: number, fua = false): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = write ? 0x8a : 0x88;
  if (fua) cdb[1] = 0x08;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

/** SYNCHRONIZE CACHE(16) 0x91 over the whole LU (LBA 0, 0 blocks = to the end, SBC-3 §5.26). */
export function synchronizeCache16(): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x91;
  return cdb;
}

/** PRE-FETCH(16) 0x90 (SBC-3 §5.9). */
export function prefetch16(lba: bigint | number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x90;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

/**
 * WRITE SAME(16) 0x93 (SBC-3 §5.42): UNMAP is bit 3 of byte 1; NDOB (bit 0)
 * means no data-out buffer (zeroes), otherwise the data-out is one block.
 */
export function writeSame16(lba: bigint | number, blocks: number, unmap: boolean, ndob = false): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x93;
  cdb[1] = (unmap ? 0x08 : 0) | (ndob ? 0x01 : 0);
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

/** TEST UNIT READY; a new nexus sends one to consume its POWER ON/RESET unit attention. */
export function testUnitReady(): Buffer {
  return Buffer.alloc(6);
}

/** READ CAPACITY(16): SERVICE ACTION IN(16) 0x9e / 0x10, allocation length 32 (SBC-3 §5.16). */
export function readCapacity16(): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x10;
  cdb.writeUInt32BE(32, 10);
  return cdb;
}

/** MODE SENSE(6) with DBD, all pages (SPC-4 §7.5.5); callers read the header's WP bit. */
export function modeSense6(): Buffer {
  return Buffer.from([0x1a, 0x08, 0x3f, 0x00, 0xff, 0x00]);
}

export interface Capacity16 {
  /** Number of logical blocks (RETURNED LOGICAL BLOCK ADDRESS + 1). */
  blocks: bigint;
  blockSize: number;
  /** LBPME: logical block provisioning (thin) enabled. */
  thin: boolean;
  /** LBPRZ: unmapped blocks read as zeroes. */
  unmapReadsZero: boolean;
}

/** READ CAPACITY(16) parameter data (SBC-3 §5.16.2). */
export function parseReadCapacity16(data: Buffer): Capacity16 {
  if (data.length < 16) throw new LunkitError('ERR_SCSI_DATA_MALFORMED', `READ CAPACITY(16) returned ${data.length} bytes`);
  return {
    blocks: data.readBigUInt64BE(0) + 1n,
    blockSize: data.readUInt32BE(8),
    thin: (data[14] & 0x80) !== 0,
    unmapReadsZero: (data[14] & 0x40) !== 0,
  };
}

/** Key/ASC/ASCQ of fixed (70h/71h) or descriptor (72h/73h) sense data (SPC-4 §4.5); undefined if unreadable. */
export function senseCodes(sense: Buffer | undefined): { key: number; asc: number; ascq: number } | undefined {
  if (!sense || sense.length < 4) return undefined;
  const code = sense[0] & 0x7f;
  if ((code === 0x70 || code === 0x71) && sense.length >= 14) return { key: sense[2] & 0x0f, asc: sense[12], ascq: sense[13] };
  if (code === 0x72 || code === 0x73) return { key: sense[1] & 0x0f, asc: sense[2], ascq: sense[3] };
  return undefined;
}
