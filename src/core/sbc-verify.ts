// VERIFY 10/12/16 (SBC-3 §5.33-5.35, BYTCHK as widened by SBC-4 §5.36).
//
// BYTCHK 00b: medium verification only: the blocks are read, a read error is
//   a MEDIUM ERROR, nothing is transferred.
// BYTCHK 01b: the Data-Out buffer holds every block; it is compared with the
//   medium. A mismatch is MISCOMPARE / MISCOMPARE DURING VERIFY OPERATION
//   with INFORMATION = offset of the first differing byte in the Data-Out
//   buffer.
// BYTCHK 11b: the Data-Out buffer holds one block, compared with every block.
// BYTCHK 10b is reserved.

import type { CommandContext, CommandHandler, CommandOutcome, CommandSpec } from './command.js';
import { check, decoderFor, firstDifference, GOOD, invalidCdbField, type LbaDecoder } from './sbc-common.js';
import { checkTransfer, readBlocks, rwUsage } from './sbc-rw.js';

/** Medium verification reads in pieces of this many bytes at most. */
const VERIFY_CHUNK_BYTES = 1024 * 1024;

function bytchkOf(cdb: Buffer): number {
  return (cdb[1] >> 1) & 0x03;
}

async function verifyMedium(ctx: CommandContext, lba: bigint, blocks: number): Promise<CommandOutcome> {
  const per = Math.max(1, Math.floor(VERIFY_CHUNK_BYTES / ctx.device.blockSize));
  for (let done = 0; done < blocks; done += per) {
    const n = Math.min(per, blocks - done);
    const data = await readBlocks(ctx, lba + BigInt(done), n);
    if (!Buffer.isBuffer(data)) return data;
  }
  return GOOD;
}

function verifyHandler(decode: LbaDecoder, cdbLength: 10 | 12 | 16): CommandHandler {
  return async (ctx) => {
    const { lba, blocks } = decode(ctx.cdb);
    const bytchk = bytchkOf(ctx.cdb);
    if (bytchk === 2) return invalidCdbField(1, 2);
    const bad = checkTransfer(ctx, lba, blocks, cdbLength);
    if (bad) return bad;
    if (blocks === 0) return GOOD;
    if (bytchk === 0) return verifyMedium(ctx, lba, blocks);

    const bs = ctx.device.blockSize;
    const want = bytchk === 1 ? blocks * bs : bs;
    // The compare needs all of the Data-Out buffer; a short one cannot be verified.
    if (ctx.dataOut.length < want) return check('INVALID_FIELD_IN_INFORMATION_UNIT');
    const medium = await readBlocks(ctx, lba, blocks);
    if (!Buffer.isBuffer(medium)) return medium;
    if (bytchk === 1) {
      const at = firstDifference(medium, ctx.dataOut.subarray(0, want));
      return at < 0 ? GOOD : check('MISCOMPARE_DURING_VERIFY', undefined, at);
    }
    const pattern = ctx.dataOut.subarray(0, bs);
    for (let i = 0; i < blocks; i++) {
      const at = firstDifference(medium.subarray(i * bs, (i + 1) * bs), pattern);
      if (at >= 0) return check('MISCOMPARE_DURING_VERIFY', undefined, at);
    }
    return GOOD;
  };
}

function verifySpec(opcode: number, cdbLength: 10 | 12 | 16): CommandSpec {
  const decode = decoderFor(cdbLength);
  return {
    opcode,
    name: `VERIFY(${cdbLength})`,
    cdbLength,
    // DPO 0x10, BYTCHK 0x06.
    usage: rwUsage(opcode, 0x16, cdbLength),
    direction: 'write',
    transferLength: (cdb, blockSize) => {
      const { blocks } = decode(cdb);
      switch (bytchkOf(cdb)) {
        case 1:
          return blocks * blockSize;
        case 3:
          return blocks > 0 ? blockSize : 0;
        default:
          return 0;
      }
    },
    blockData: true,
    handler: verifyHandler(decode, cdbLength),
  };
}

export const verifyCommands: CommandSpec[] = [verifySpec(0x2f, 10), verifySpec(0xaf, 12), verifySpec(0x8f, 16)];
