// WRITE SAME 10/16 (SBC-3 §5.44-5.46, NDOB from SBC-4 §5.49).
//
// One block of Data-Out (or none with NDOB=1, meaning zeroes) is written to
// NUMBER OF LOGICAL BLOCKS blocks; 0 blocks means "to the end of the medium"
// (we publish WSNZ=0). With UNMAP=1 on a thin LU, a zero block deallocates
// the range (LBPRZ: it reads back as zeroes); non-zero data is written.
// ANCHOR=1 requires UNMAP=1 and leaves the blocks anchored: zeroed but
// allocated.

import type { CommandHandler, CommandOutcome, CommandSpec } from './command.js';
import { writePattern, zeroBytes } from './block-ops.js';
import {
  ANCHOR_SUPPORTED,
  backstoreFailure,
  byteOffset,
  check,
  CONTROL_USAGE,
  GOOD,
  invalidCdbField,
  isAllZero,
  lbaOutOfRange,
  MAX_WRITE_SAME_BYTES,
} from './sbc-common.js';

interface WriteSameFields {
  lba: bigint;
  blocks: number;
  anchor: boolean;
  unmap: boolean;
  ndob: boolean;
  lengthByte: number;
}

function fields10(cdb: Buffer): WriteSameFields {
  return {
    lba: BigInt(cdb.readUInt32BE(2)),
    blocks: cdb.readUInt16BE(7),
    anchor: (cdb[1] & 0x10) !== 0,
    unmap: (cdb[1] & 0x08) !== 0,
    ndob: false,
    lengthByte: 7,
  };
}

function fields16(cdb: Buffer): WriteSameFields {
  return {
    lba: cdb.readBigUInt64BE(2),
    blocks: cdb.readUInt32BE(10),
    anchor: (cdb[1] & 0x10) !== 0,
    unmap: (cdb[1] & 0x08) !== 0,
    ndob: (cdb[1] & 0x01) !== 0,
    lengthByte: 10,
  };
}

function writeSameHandler(decode: (cdb: Buffer) => WriteSameFields): CommandHandler {
  return async (ctx): Promise<CommandOutcome> => {
    const f = decode(ctx.cdb);
    const bs = ctx.device.blockSize;
    if ((ctx.cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
    // SBC-3 §5.45: ANCHOR without UNMAP is an invalid field; so is ANCHOR when ANC_SUP=0.
    if (f.anchor && (!f.unmap || !ANCHOR_SUPPORTED)) return invalidCdbField(1, 4);
    // UNMAP on a fully provisioned LU: LBPWS/LBPWS10 are 0, so refuse the bit.
    if (f.unmap && !ctx.device.thin) return invalidCdbField(1, 3);
    if (ctx.writeProtected) return check('WRITE_PROTECTED');

    const capacity = ctx.device.blockCount;
    // Also covers NUMBER 0 ("to the end") starting past the last block.
    if (f.lba >= capacity) return lbaOutOfRange();
    // NUMBER OF LOGICAL BLOCKS 0: from LBA to the last block (WSNZ=0).
    const count = f.blocks === 0 ? capacity - f.lba : BigInt(f.blocks);
    if (f.lba + count > capacity) return lbaOutOfRange();
    if (count * BigInt(bs) > BigInt(MAX_WRITE_SAME_BYTES)) return invalidCdbField(f.lengthByte);
    const blocks = Number(count);

    // The data: NDOB means a zero block. Otherwise exactly one block must have
    // been sent; a WRITE SAME(10) that sends none while asking to UNMAP is
    // taken as NDOB (libiscsi writesame10_unmap_unaligned does this).
    let pattern: Buffer | undefined;
    if (!f.ndob) {
      const sent = ctx.cmd.expectedLength;
      if (!(sent === 0 && f.unmap)) {
        if (sent !== bs || ctx.dataOut.length < bs) return invalidCdbField(f.lengthByte);
        pattern = ctx.dataOut.subarray(0, bs);
      }
    }
    // UNMAP=1 on a thin LU deallocates whatever the data block holds: SBC-3
    // leaves the choice to the device server, LIO and tgt deallocate, and
    // initiators (libiscsi's writesame*_unmap_until_end sends 0xFF blocks)
    // expect LBPRZ zeroes back. ANCHOR keeps the blocks allocated but zeroed.
    const zero = pattern === undefined || isAllZero(pattern) || (f.unmap && ctx.device.thin);
    const fua = !ctx.device.writeCacheEnabled;

    const release = await ctx.device.lockRange(f.lba, blocks);
    try {
      if (zero) {
        // ANCHOR: keep the blocks allocated; UNMAP alone: deallocate.
        await zeroBytes(ctx.device, byteOffset(ctx, f.lba), blocks * bs, f.unmap && !f.anchor, fua);
      } else {
        await writePattern(ctx.device, byteOffset(ctx, f.lba), blocks, pattern as Buffer, fua);
      }
    } catch (err) {
      return backstoreFailure(err, zero && f.unmap ? 'unmap' : 'write', f.lba);
    } finally {
      release();
    }
    return GOOD;
  };
}

export const writeSameCommands: CommandSpec[] = [
  {
    opcode: 0x41,
    name: 'WRITE SAME(10)',
    cdbLength: 10,
    // ANCHOR 0x10, UNMAP 0x08.
    usage: [0x41, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL_USAGE],
    direction: 'write',
    transferLength: (_cdb, blockSize) => blockSize,
    writes: true,
    handler: writeSameHandler(fields10),
  },
  {
    opcode: 0x93,
    name: 'WRITE SAME(16)',
    cdbLength: 16,
    // ANCHOR 0x10, UNMAP 0x08, NDOB 0x01.
    usage: [0x93, 0x19, ...Array<number>(12).fill(0xff), 0x1f, CONTROL_USAGE],
    direction: 'write',
    transferLength: (cdb, blockSize) => ((cdb[1] & 0x01) !== 0 ? 0 : blockSize),
    writes: true,
    handler: writeSameHandler(fields16),
  },
];
