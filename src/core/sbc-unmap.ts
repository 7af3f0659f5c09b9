// UNMAP (SBC-3 §5.28).
//
// Parameter list: UNMAP DATA LENGTH (2 bytes), UNMAP BLOCK DESCRIPTOR DATA
// LENGTH (2), 4 reserved, then 16-byte descriptors: LBA (8), NUMBER OF
// LOGICAL BLOCKS (4), 4 reserved. Every descriptor is checked before any
// block is deallocated, so a bad list changes nothing.

import type { CommandContext, CommandHandler, CommandOutcome, CommandSpec } from './command.js';
import { deallocateBytes } from './block-ops.js';
import {
  ANCHOR_SUPPORTED,
  backstoreFailure,
  byteOffset,
  check,
  CONTROL_USAGE,
  GOOD,
  invalidCdbField,
  invalidParamField,
  lbaOutOfRange,
  MAX_UNMAP_DESCRIPTORS,
  MAX_UNMAP_LBA_COUNT,
  outOfRange,
} from './sbc-common.js';

export interface UnmapDescriptor {
  lba: bigint;
  blocks: number;
}

/**
 * Parse and validate an UNMAP parameter list against a capacity. Returns the
 * descriptors (zero-length ones dropped) or the CHECK CONDITION to report.
 */
export function parseUnmapList(data: Buffer, ctx: CommandContext): UnmapDescriptor[] | CommandOutcome {
  // SBC-3 §5.28.1: a list too short to hold its own header.
  if (data.length < 8) return check('PARAMETER_LIST_LENGTH_ERROR');
  const declared = data.readUInt16BE(2);
  // A descriptor length beyond what was transferred is cut to what arrived,
  // and an incomplete last descriptor is ignored (SBC-3 §5.28.2).
  const usable = Math.min(declared, data.length - 8);
  const count = Math.floor(usable / 16);
  if (count > MAX_UNMAP_DESCRIPTORS) return invalidParamField(2);
  const out: UnmapDescriptor[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = 8 + i * 16;
    const lba = data.readBigUInt64BE(at);
    const blocks = data.readUInt32BE(at + 8);
    if (outOfRange(ctx, lba, blocks)) return lbaOutOfRange();
    total += blocks;
    if (total > MAX_UNMAP_LBA_COUNT) return invalidParamField(at + 8);
    if (blocks > 0) out.push({ lba, blocks });
  }
  return out;
}

const unmapHandler: CommandHandler = async (ctx): Promise<CommandOutcome> => {
  const anchor = (ctx.cdb[1] & 0x01) !== 0;
  if (anchor && !ANCHOR_SUPPORTED) return invalidCdbField(1, 0);
  // A fully provisioned LU publishes LBPU=0 and refuses UNMAP.
  if (!ctx.device.thin) return invalidCdbField(0);
  if (ctx.writeProtected) return check('WRITE_PROTECTED');
  const paramLen = ctx.cdb.readUInt16BE(7);
  // SBC-3 §5.28.1: PARAMETER LIST LENGTH 0 is not an error; nothing happens.
  if (paramLen === 0) return GOOD;
  const list = parseUnmapList(ctx.dataOut, ctx);
  if (!Array.isArray(list)) return list;
  for (const d of list) {
    const release = await ctx.device.lockRange(d.lba, d.blocks);
    try {
      await deallocateBytes(ctx.device, byteOffset(ctx, d.lba), d.blocks * ctx.device.blockSize, anchor);
    } catch (err) {
      return backstoreFailure(err, 'unmap', d.lba);
    } finally {
      release();
    }
  }
  return GOOD;
};

export const unmapCommands: CommandSpec[] = [
  {
    opcode: 0x42,
    name: 'UNMAP',
    cdbLength: 10,
    // ANCHOR 0x01; GROUP NUMBER; PARAMETER LIST LENGTH.
    usage: [0x42, 0x01, 0, 0, 0, 0, 0x1f, 0xff, 0xff, CONTROL_USAGE],
    direction: 'write',
    transferLength: (cdb) => cdb.readUInt16BE(7),
    writes: true,
    handler: unmapHandler,
  },
];
