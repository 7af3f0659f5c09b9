// CDBs the iSCSI initiator builds to reach a remote LU with block requests,
// and the READ CAPACITY(16) parameter data it reads back. (Our own block
// fabrics, NBD and FUSE, do not build CDBs: they use the core's block door.)

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

/** READ CAPACITY(16): SERVICE ACTION IN(16) 0x9e / 0x10, allocation length 32 (SBC-3 §5.16). */
export function readCapacity16(): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x10;
  cdb.writeUInt32BE(32, 10);
  return cdb;
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
