// COMPARE AND WRITE (SBC-3 §5.2).
//
// The Data-Out buffer holds NUMBER OF LOGICAL BLOCKS blocks of verify data
// followed by as many blocks of write data. Under the LBA range lock (which
// every writer takes), the medium is read and compared with the verify data;
// on a match the write data is written, on a mismatch nothing is written and
// the command ends with MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION and
// INFORMATION = offset of the first differing byte from the start of the
// Data-Out buffer (SBC-3 §5.2).

import type { CommandHandler, CommandSpec } from './command.js';
import {
  backstoreFailure,
  byteOffset,
  check,
  CONTROL_USAGE,
  firstDifference,
  GOOD,
  invalidCdbField,
  lbaOutOfRange,
  MAX_COMPARE_AND_WRITE_BLOCKS,
  outOfRange,
} from './sbc-common.js';
import { readBlocks } from './sbc-rw.js';

const compareAndWrite: CommandHandler = async (ctx) => {
  const cdb = ctx.cdb;
  if ((cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
  const lba = cdb.readBigUInt64BE(2);
  const blocks = cdb[13];
  const bs = ctx.device.blockSize;
  if (blocks > MAX_COMPARE_AND_WRITE_BLOCKS) return invalidCdbField(13);
  // The transport must carry exactly 2 x NUMBER OF LOGICAL BLOCKS blocks. A
  // zero NUMBER with data attached is a request for 256 blocks that the
  // one-byte field could not express: refused like any length above the max.
  const expected = ctx.cmd.expectedLength;
  if (blocks === 0 && expected !== 0) return invalidCdbField(13);
  if (expected !== 2 * blocks * bs) return invalidCdbField(13);
  if (ctx.writeProtected) return check('WRITE_PROTECTED');
  if (outOfRange(ctx, lba, blocks)) return lbaOutOfRange();
  if (blocks === 0) return GOOD;
  if (ctx.dataOut.length < 2 * blocks * bs) return check('INVALID_FIELD_IN_INFORMATION_UNIT');

  const verify = ctx.dataOut.subarray(0, blocks * bs);
  const write = ctx.dataOut.subarray(blocks * bs, 2 * blocks * bs);
  const release = await ctx.device.lockRange(lba, blocks);
  try {
    const medium = await readBlocks(ctx, lba, blocks);
    if (!Buffer.isBuffer(medium)) return medium;
    const at = firstDifference(medium, verify);
    if (at >= 0) return check('MISCOMPARE_DURING_VERIFY', undefined, at);
    const fua = (cdb[1] & 0x08) !== 0 || !ctx.device.writeCacheEnabled;
    try {
      await ctx.device.backstore.write(write, byteOffset(ctx, lba), { fua });
    } catch (err) {
      return backstoreFailure(err, 'write', lba);
    }
  } finally {
    release();
  }
  return GOOD;
};

export const compareAndWriteCommands: CommandSpec[] = [
  {
    opcode: 0x89,
    name: 'COMPARE AND WRITE',
    cdbLength: 16,
    // DPO 0x10, FUA 0x08, FUA_NV 0x02; LBA; reserved 10-12; NUMBER; GROUP.
    usage: [0x89, 0x1a, ...Array<number>(8).fill(0xff), 0, 0, 0, 0xff, 0x1f, CONTROL_USAGE],
    direction: 'write',
    transferLength: (cdb, blockSize) => 2 * cdb[13] * blockSize,
    writes: true,
    handler: compareAndWrite,
  },
];
