// WRITE ATOMIC(16) (SBC-4 §5.48).
//
// CDB: byte 1 WRPROTECT (7-5), DPO (4), FUA (3); bytes 2-9 LBA; bytes 10-11
// ATOMIC BOUNDARY; bytes 12-13 TRANSFER LENGTH (blocks); byte 14 GROUP
// NUMBER. The whole transfer is written under the LBA range lock, which every
// writer takes, so no other write (or COMPARE AND WRITE) can interleave with
// it and a reader that also locks sees either none or all of it. A command
// whose data does not fully arrive writes nothing rather than a part.

import type { CommandHandler, CommandSpec } from './command.js';
import {
  check,
  CONTROL_USAGE,
  GOOD,
  invalidCdbField,
  lbaOutOfRange,
  outOfRange,
  sbcBlockLimits,
} from './sbc-common.js';
import { wantsFua, writeLocked } from './sbc-rw.js';

const LENGTH_BYTE = 12;
const BOUNDARY_BYTE = 10;

function atomicBlocks(cdb: Buffer): number {
  return cdb.readUInt16BE(LENGTH_BYTE);
}

const writeAtomic16: CommandHandler = async (ctx) => {
  const cdb = ctx.cdb;
  // No protection information: WRPROTECT must be 0.
  if ((cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
  const limits = sbcBlockLimits(ctx.device.blockSize);
  // SBC-4 §5.48: a non-zero ATOMIC BOUNDARY needs MAXIMUM ATOMIC TRANSFER
  // LENGTH WITH ATOMIC BOUNDARY support, which we do not report.
  if (cdb.readUInt16BE(BOUNDARY_BYTE) !== 0 && limits.maxAtomicTransferLengthWithBoundary === 0) {
    return invalidCdbField(BOUNDARY_BYTE);
  }
  if (ctx.writeProtected) return check('WRITE_PROTECTED');
  const lba = cdb.readBigUInt64BE(2);
  const blocks = atomicBlocks(cdb);
  if (outOfRange(ctx, lba, blocks)) return lbaOutOfRange();
  // SBC-4 §5.48: TRANSFER LENGTH above MAXIMUM ATOMIC TRANSFER LENGTH, or not
  // a multiple of the granularity, or an LBA off the alignment: INVALID FIELD.
  if (blocks > limits.maxAtomicTransferLength) return invalidCdbField(LENGTH_BYTE);
  const gran = limits.atomicTransferLengthGranularity;
  if (gran > 1 && blocks % gran !== 0) return invalidCdbField(LENGTH_BYTE);
  const align = limits.atomicAlignment;
  if (align > 1 && lba % BigInt(align) !== 0n) return invalidCdbField(2);
  // A TRANSFER LENGTH of zero writes nothing and is not an error.
  if (blocks === 0) return GOOD;
  const bytes = blocks * ctx.device.blockSize;
  // Less Data-Out than the CDB asks for (Expected Data Transfer Length too
  // short): writing part of an atomic write is not allowed, so refuse it all.
  if (ctx.dataOut.length < bytes) return invalidCdbField(LENGTH_BYTE);

  // The range lock keeps every other writer out for the whole transfer.
  return writeLocked(ctx, lba, ctx.dataOut.subarray(0, bytes), wantsFua(ctx, 16));
};

export const atomicCommands: CommandSpec[] = [
  {
    opcode: 0x9c,
    name: 'WRITE ATOMIC(16)',
    cdbLength: 16,
    // DPO 0x10, FUA 0x08; LBA; ATOMIC BOUNDARY unsupported (0); TRANSFER
    // LENGTH; GROUP NUMBER.
    usage: [0x9c, 0x18, ...Array<number>(8).fill(0xff), 0x00, 0x00, 0xff, 0xff, 0x1f, CONTROL_USAGE],
    direction: 'write',
    transferLength: (cdb, blockSize) => atomicBlocks(cdb) * blockSize,
    blockData: true,
    writes: true,
    handler: writeAtomic16,
  },
];
