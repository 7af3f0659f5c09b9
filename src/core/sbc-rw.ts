// READ 6/10/12/16, WRITE 6/10/12/16, WRITE AND VERIFY 10/12/16 and
// ORWRITE 16 (SBC-3 §5.8, §5.15-5.18, §5.37-5.43).

import type { CommandContext, CommandHandler, CommandOutcome, CommandSpec } from './command.js';
import {
  backstoreFailure,
  byteOffset,
  check,
  CONTROL_USAGE,
  decoderFor,
  firstDifference,
  GOOD,
  invalidCdbField,
  lbaOutOfRange,
  MAX_TRANSFER_BYTES,
  outOfRange,
  type LbaDecoder,
} from './sbc-common.js';

/** Position of the TRANSFER LENGTH field, for the sense-key specific field pointer. */
export function lengthByte(cdbLength: 6 | 10 | 12 | 16): number {
  return cdbLength === 6 ? 4 : cdbLength === 10 ? 7 : cdbLength === 12 ? 6 : 10;
}

/** Usage map byte-for-byte for the LBA + length + group layouts of 10/12/16-byte CDBs. */
export function rwUsage(opcode: number, byte1: number, cdbLength: 10 | 12 | 16): number[] {
  switch (cdbLength) {
    case 10:
      return [opcode, byte1, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL_USAGE];
    case 12:
      return [opcode, byte1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, CONTROL_USAGE];
    case 16:
      return [opcode, byte1, ...Array<number>(12).fill(0xff), 0x1f, CONTROL_USAGE];
  }
}

/**
 * Checks shared by every block-addressed command, in the order SBC-3 lists
 * them: protection field (we have no protection information, so RDPROTECT/
 * WRPROTECT/VRPROTECT must be 0), LBA range, MAXIMUM TRANSFER LENGTH.
 */
export function checkTransfer(
  ctx: CommandContext,
  lba: bigint,
  blocks: number,
  cdbLength: 6 | 10 | 12 | 16,
): CommandOutcome | undefined {
  if (cdbLength !== 6 && (ctx.cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
  if (outOfRange(ctx, lba, blocks)) return lbaOutOfRange();
  if (blocks * ctx.device.blockSize > MAX_TRANSFER_BYTES) return invalidCdbField(lengthByte(cdbLength));
  return undefined;
}

/**
 * checkTransfer from the CDB alone, for ScsiCore.prepare(): a WRITE the
 * handler would refuse is refused before its data is collected.
 */
function prepareTransfer(decode: LbaDecoder, cdbLength: 6 | 10 | 12 | 16): NonNullable<CommandSpec['prepare']> {
  return (cdb, device) => {
    if (cdbLength !== 6 && (cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
    const { lba, blocks } = decode(cdb);
    if (lba + BigInt(blocks) > device.blockCount) return lbaOutOfRange();
    if (blocks * device.blockSize > MAX_TRANSFER_BYTES) return invalidCdbField(lengthByte(cdbLength));
    return undefined;
  };
}

/**
 * Read blocks, or a CHECK CONDITION. The data lands in `into` when it is large
 * enough (a view of it is returned), else in a fresh buffer.
 */
export async function readBlocks(
  ctx: CommandContext,
  lba: bigint,
  blocks: number,
  into?: Buffer,
): Promise<Buffer | CommandOutcome> {
  const n = blocks * ctx.device.blockSize;
  const buf = into !== undefined && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
  try {
    await ctx.device.backstore.read(buf, byteOffset(ctx, lba));
  } catch (err) {
    return backstoreFailure(err, 'read', lba);
  }
  return buf;
}

/** FUA in the CDB (not in 6-byte CDBs), or the write cache is off (caching mode page WCE=0). */
export function wantsFua(ctx: CommandContext, cdbLength: number): boolean {
  return (cdbLength !== 6 && (ctx.cdb[1] & 0x08) !== 0) || !ctx.device.writeCacheEnabled;
}

/**
 * The whole blocks of Data-Out that arrived, at most `blocks` of them: with
 * an Expected Data Transfer Length below the CDB's, only what was sent is
 * written (libiscsi write10_residuals; the engine reports the overflow).
 */
function wholeBlocks(ctx: CommandContext, blocks: number): number {
  return Math.min(blocks, Math.floor(ctx.dataOut.length / ctx.device.blockSize));
}

function readHandler(decode: LbaDecoder, cdbLength: 6 | 10 | 12 | 16): CommandHandler {
  return async (ctx) => {
    const { lba, blocks } = decode(ctx.cdb);
    const bad = checkTransfer(ctx, lba, blocks, cdbLength);
    if (bad) return bad;
    if (blocks === 0) return GOOD;
    // The fabric's Data-In memory, when it offers some (ScsiCommand.dataInBuffer).
    const data = await readBlocks(ctx, lba, blocks, ctx.cmd.dataInBuffer);
    if (!Buffer.isBuffer(data)) return data;
    return { kind: 'good', data };
  };
}

/** Write the arrived blocks under the range lock. */
export async function writeLocked(ctx: CommandContext, lba: bigint, data: Buffer, fua: boolean): Promise<CommandOutcome> {
  const release = await ctx.device.lockRange(lba, data.length / ctx.device.blockSize);
  try {
    await ctx.device.backstore.write(data, byteOffset(ctx, lba), { fua });
  } catch (err) {
    return backstoreFailure(err, 'write', lba);
  } finally {
    release();
  }
  return GOOD;
}

function writeHandler(decode: LbaDecoder, cdbLength: 6 | 10 | 12 | 16): CommandHandler {
  return async (ctx) => {
    const { lba, blocks } = decode(ctx.cdb);
    if (cdbLength !== 6 && (ctx.cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
    if (ctx.writeProtected) return check('WRITE_PROTECTED');
    const bad = checkTransfer(ctx, lba, blocks, cdbLength);
    if (bad) return bad;
    const n = wholeBlocks(ctx, blocks);
    if (n === 0) return GOOD;
    return writeLocked(ctx, lba, ctx.dataOut.subarray(0, n * ctx.device.blockSize), wantsFua(ctx, cdbLength));
  };
}

/**
 * WRITE AND VERIFY (SBC-3 §5.39-5.41): write, then verify. With BYTCHK=1 the
 * blocks are read back and compared with the Data-Out buffer; BYTCHK=0 asks
 * only for a medium verification, which the completed write already is.
 */
function writeVerifyHandler(decode: LbaDecoder, cdbLength: 10 | 12 | 16): CommandHandler {
  return async (ctx) => {
    const { lba, blocks } = decode(ctx.cdb);
    if ((ctx.cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
    const bytchk = (ctx.cdb[1] >> 1) & 0x03;
    // SBC-4 widened BYTCHK to two bits; 10b is reserved and 11b is for VERIFY only.
    if (bytchk > 1) return invalidCdbField(1, 2);
    if (ctx.writeProtected) return check('WRITE_PROTECTED');
    const bad = checkTransfer(ctx, lba, blocks, cdbLength);
    if (bad) return bad;
    const n = wholeBlocks(ctx, blocks);
    if (n === 0) return GOOD;
    const data = ctx.dataOut.subarray(0, n * ctx.device.blockSize);
    const release = await ctx.device.lockRange(lba, n);
    try {
      await ctx.device.backstore.write(data, byteOffset(ctx, lba), { fua: !ctx.device.writeCacheEnabled });
    } catch (err) {
      release();
      return backstoreFailure(err, 'write', lba);
    }
    try {
      if (bytchk === 1) {
        const back = await readBlocks(ctx, lba, n);
        if (!Buffer.isBuffer(back)) return back;
        const at = firstDifference(back, data);
        if (at >= 0) return check('MISCOMPARE_DURING_VERIFY', undefined, at);
      }
    } finally {
      release();
    }
    return GOOD;
  };
}

/** ORWRITE (SBC-3 §5.8): new = old OR data-out, atomically under the range lock. */
const orWriteHandler: CommandHandler = async (ctx) => {
  const decode = decoderFor(16);
  const { lba, blocks } = decode(ctx.cdb);
  if ((ctx.cdb[1] & 0xe0) !== 0) return invalidCdbField(1, 7);
  if (ctx.writeProtected) return check('WRITE_PROTECTED');
  const bad = checkTransfer(ctx, lba, blocks, 16);
  if (bad) return bad;
  const n = wholeBlocks(ctx, blocks);
  if (n === 0) return GOOD;
  const release = await ctx.device.lockRange(lba, n);
  try {
    const old = await readBlocks(ctx, lba, n);
    if (!Buffer.isBuffer(old)) return old;
    const src = ctx.dataOut;
    for (let i = 0; i < old.length; i++) old[i] |= src[i];
    try {
      await ctx.device.backstore.write(old, byteOffset(ctx, lba), { fua: wantsFua(ctx, 16) });
    } catch (err) {
      return backstoreFailure(err, 'write', lba);
    }
  } finally {
    release();
  }
  return GOOD;
};

function blockTransferLength(decode: LbaDecoder): (cdb: Buffer, blockSize: number) => number {
  return (cdb, blockSize) => decode(cdb).blocks * blockSize;
}

// DPO 0x10, FUA 0x08, RARC 0x04 (reads), FUA_NV 0x02 (obsolete, accepted and ignored).
const READ_FLAGS = 0x1e;
const WRITE_FLAGS = 0x1a;
// DPO 0x10, BYTCHK 0x02.
const WRITE_VERIFY_FLAGS = 0x12;

function readSpec(opcode: number, cdbLength: 10 | 12 | 16): CommandSpec {
  const decode = decoderFor(cdbLength);
  return {
    opcode,
    name: `READ(${cdbLength})`,
    cdbLength,
    usage: rwUsage(opcode, READ_FLAGS, cdbLength),
    direction: 'read',
    transferLength: blockTransferLength(decode),
    handler: readHandler(decode, cdbLength),
  };
}

function writeSpec(opcode: number, cdbLength: 10 | 12 | 16): CommandSpec {
  const decode = decoderFor(cdbLength);
  return {
    opcode,
    name: `WRITE(${cdbLength})`,
    cdbLength,
    usage: rwUsage(opcode, WRITE_FLAGS, cdbLength),
    direction: 'write',
    transferLength: blockTransferLength(decode),
    blockData: true,
    writes: true,
    prepare: prepareTransfer(decode, cdbLength),
    handler: writeHandler(decode, cdbLength),
  };
}

function writeVerifySpec(opcode: number, cdbLength: 10 | 12 | 16): CommandSpec {
  const decode = decoderFor(cdbLength);
  return {
    opcode,
    name: `WRITE AND VERIFY(${cdbLength})`,
    cdbLength,
    usage: rwUsage(opcode, WRITE_VERIFY_FLAGS, cdbLength),
    direction: 'write',
    transferLength: blockTransferLength(decode),
    blockData: true,
    writes: true,
    prepare: prepareTransfer(decode, cdbLength),
    handler: writeVerifyHandler(decode, cdbLength),
  };
}

export const rwCommands: CommandSpec[] = [
  {
    opcode: 0x08,
    name: 'READ(6)',
    cdbLength: 6,
    usage: [0x08, 0x1f, 0xff, 0xff, 0xff, CONTROL_USAGE],
    direction: 'read',
    transferLength: blockTransferLength(decoderFor(6)),
    handler: readHandler(decoderFor(6), 6),
  },
  readSpec(0x28, 10),
  readSpec(0xa8, 12),
  readSpec(0x88, 16),
  {
    opcode: 0x0a,
    name: 'WRITE(6)',
    cdbLength: 6,
    usage: [0x0a, 0x1f, 0xff, 0xff, 0xff, CONTROL_USAGE],
    direction: 'write',
    transferLength: blockTransferLength(decoderFor(6)),
    blockData: true,
    writes: true,
    prepare: prepareTransfer(decoderFor(6), 6),
    handler: writeHandler(decoderFor(6), 6),
  },
  writeSpec(0x2a, 10),
  writeSpec(0xaa, 12),
  writeSpec(0x8a, 16),
  writeVerifySpec(0x2e, 10),
  writeVerifySpec(0xae, 12),
  writeVerifySpec(0x8e, 16),
  {
    opcode: 0x8b,
    name: 'ORWRITE(16)',
    cdbLength: 16,
    usage: rwUsage(0x8b, WRITE_FLAGS, 16),
    direction: 'write',
    transferLength: blockTransferLength(decoderFor(16)),
    blockData: true,
    writes: true,
    prepare: prepareTransfer(decoderFor(16), 16),
    handler: orWriteHandler,
  },
];
