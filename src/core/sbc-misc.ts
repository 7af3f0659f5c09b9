// PRE-FETCH 10/16 (SBC-3 §5.9-5.10), SYNCHRONIZE CACHE 10/16 (§5.22-5.23),
// START STOP UNIT (§5.25), PREVENT ALLOW MEDIUM REMOVAL (SPC-4 §6.13 / SBC-3
// §5.11) and READ DEFECT DATA 10/12 (§5.12-5.13).

import type { CommandContext, CommandHandler, CommandOutcome, CommandSpec } from './command.js';
import type { BackstoreOps } from './types.js';
import { flushBackstore } from './block-ops.js';
import {
  backstoreFailure,
  check,
  CONTROL_USAGE,
  GOOD,
  invalidCdbField,
  lbaOutOfRange,
  PREFETCH_CACHE_BYTES,
  type LbaAndLength,
  lbaLen10,
  lbaLen16,
} from './sbc-common.js';

/**
 * "NUMBER OF LOGICAL BLOCKS 0 means to the end of the medium" (PRE-FETCH,
 * SYNCHRONIZE CACHE): the range to act on, or LBA OUT OF RANGE.
 */
function rangeToEnd(ctx: CommandContext, f: LbaAndLength): bigint | CommandOutcome {
  const capacity = ctx.device.blockCount;
  if (f.blocks === 0) return f.lba >= capacity ? lbaOutOfRange() : capacity - f.lba;
  return f.lba + BigInt(f.blocks) > capacity ? lbaOutOfRange() : BigInt(f.blocks);
}

// ---------------------------------------------------------------------------
// PRE-FETCH: the page cache is our cache. We do not read ahead; we answer
// CONDITION MET when the range would fit PREFETCH_CACHE_BYTES and GOOD when
// it would not (§5.9: GOOD means "the cache cannot hold all the blocks").

function prefetchHandler(decode: (cdb: Buffer) => LbaAndLength): CommandHandler {
  return (ctx) => {
    const blocks = rangeToEnd(ctx, decode(ctx.cdb));
    if (typeof blocks !== 'bigint') return blocks;
    const fits = blocks * BigInt(ctx.device.blockSize) <= BigInt(PREFETCH_CACHE_BYTES);
    return fits ? { kind: 'good', conditionMet: true } : GOOD;
  };
}

// ---------------------------------------------------------------------------
// SYNCHRONIZE CACHE: the range is checked, then the whole backstore is
// flushed (fdatasync has no range; flushing more is allowed by §5.22).

function syncCacheHandler(decode: (cdb: Buffer) => LbaAndLength): CommandHandler {
  return async (ctx) => {
    const blocks = rangeToEnd(ctx, decode(ctx.cdb));
    if (typeof blocks !== 'bigint') return blocks;
    try {
      await flushBackstore(ctx.device);
    } catch (err) {
      return backstoreFailure(err, 'flush');
    }
    return GOOD;
  };
}

// ---------------------------------------------------------------------------
// PREVENT ALLOW MEDIUM REMOVAL is tracked per I_T nexus: removal is prevented
// while any nexus holds a prevent (SPC-4 §6.13). Keyed by backstore, which is
// the one object a device keeps for its lifetime.

const prevented = new WeakMap<BackstoreOps, Set<number>>();

/** true when some nexus prevents medium removal on this device. */
export function mediumRemovalPrevented(backstore: BackstoreOps): boolean {
  return (prevented.get(backstore)?.size ?? 0) > 0;
}

/**
 * Forget prevents: of one nexus (nexus loss, I_T NEXUS RESET) or of all
 * (LOGICAL UNIT RESET, target reset: SPC-4 §6.13 says a reset clears them).
 */
export function clearMediumRemovalPrevention(backstore: BackstoreOps, nexusId?: number): void {
  if (nexusId === undefined) prevented.delete(backstore);
  else prevented.get(backstore)?.delete(nexusId);
}

const preventAllow: CommandHandler = (ctx) => {
  const prevent = ctx.cdb[4] & 0x03;
  // 10b and 11b are obsolete (changer controls); refuse them.
  if (prevent > 1) return invalidCdbField(4, 1);
  const store = ctx.device.backstore;
  let set = prevented.get(store);
  if (prevent === 1) {
    if (!set) prevented.set(store, (set = new Set()));
    set.add(ctx.nexus.id);
  } else {
    set?.delete(ctx.nexus.id);
  }
  return GOOD;
};

// ---------------------------------------------------------------------------
// START STOP UNIT: the medium is not removable and always ready, so START,
// STOP and power conditions are accepted. Stopping flushes the cache unless
// NO_FLUSH is set (§5.25); ejecting is refused while removal is prevented.

const startStopUnit: CommandHandler = async (ctx): Promise<CommandOutcome> => {
  const b4 = ctx.cdb[4];
  const powerCondition = b4 >> 4;
  const noFlush = (b4 & 0x04) !== 0;
  const loej = (b4 & 0x02) !== 0;
  const start = (b4 & 0x01) !== 0;
  if (powerCondition === 0 && loej && !start && mediumRemovalPrevented(ctx.device.backstore)) {
    return check('MEDIUM_REMOVAL_PREVENTED');
  }
  if (powerCondition === 0 && !start && !noFlush) {
    try {
      await flushBackstore(ctx.device);
    } catch (err) {
      return backstoreFailure(err, 'flush');
    }
  }
  return GOOD;
};

// ---------------------------------------------------------------------------
// READ DEFECT DATA: a virtual medium has no defects. The lists are returned
// empty, valid as requested, in the format asked for.

const readDefectData10: CommandHandler = (ctx) => {
  const req = ctx.cdb[2];
  const alloc = ctx.cdb.readUInt16BE(7);
  const data = Buffer.alloc(4);
  // Byte 1: PLISTV (bit 4), GLISTV (bit 3), DEFECT LIST FORMAT (2-0); length 0.
  data[1] = req & 0x1f;
  return { kind: 'good', data: data.subarray(0, Math.min(alloc, data.length)) };
};

const readDefectData12: CommandHandler = (ctx) => {
  const req = ctx.cdb[1];
  const alloc = ctx.cdb.readUInt32BE(6);
  const data = Buffer.alloc(8);
  // Byte 1 flags and format as above; GENERATION CODE 0; DEFECT LIST LENGTH 0.
  data[1] = req & 0x1f;
  return { kind: 'good', data: data.subarray(0, Math.min(alloc, data.length)) };
};

export const miscCommands: CommandSpec[] = [
  {
    opcode: 0x34,
    name: 'PRE-FETCH(10)',
    cdbLength: 10,
    // IMMED 0x02.
    usage: [0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL_USAGE],
    direction: 'none',
    transferLength: () => 0,
    handler: prefetchHandler(lbaLen10),
  },
  {
    opcode: 0x90,
    name: 'PRE-FETCH(16)',
    cdbLength: 16,
    usage: [0x90, 0x02, ...Array<number>(12).fill(0xff), 0x1f, CONTROL_USAGE],
    direction: 'none',
    transferLength: () => 0,
    handler: prefetchHandler(lbaLen16),
  },
  {
    opcode: 0x35,
    name: 'SYNCHRONIZE CACHE(10)',
    cdbLength: 10,
    // SYNC_NV 0x04 (obsolete), IMMED 0x02.
    usage: [0x35, 0x06, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, CONTROL_USAGE],
    direction: 'none',
    transferLength: () => 0,
    handler: syncCacheHandler(lbaLen10),
  },
  {
    opcode: 0x91,
    name: 'SYNCHRONIZE CACHE(16)',
    cdbLength: 16,
    usage: [0x91, 0x06, ...Array<number>(12).fill(0xff), 0x1f, CONTROL_USAGE],
    direction: 'none',
    transferLength: () => 0,
    handler: syncCacheHandler(lbaLen16),
  },
  {
    opcode: 0x1b,
    name: 'START STOP UNIT',
    cdbLength: 6,
    // IMMED; POWER CONDITION MODIFIER; POWER CONDITION, NO_FLUSH, LOEJ, START.
    usage: [0x1b, 0x01, 0x00, 0x0f, 0xf7, CONTROL_USAGE],
    direction: 'none',
    transferLength: () => 0,
    handler: startStopUnit,
  },
  {
    opcode: 0x1e,
    name: 'PREVENT ALLOW MEDIUM REMOVAL',
    cdbLength: 6,
    usage: [0x1e, 0x00, 0x00, 0x00, 0x03, CONTROL_USAGE],
    direction: 'none',
    transferLength: () => 0,
    // SPC-4 §5.13 table: PREVENT=0 (allow) is allowed under any reservation.
    reservationExempt: (cdb) => (cdb[4] & 0x03) === 0,
    handler: preventAllow,
  },
  {
    opcode: 0x37,
    name: 'READ DEFECT DATA(10)',
    cdbLength: 10,
    // REQ_PLIST 0x10, REQ_GLIST 0x08, DEFECT LIST FORMAT 0x07 in byte 2.
    usage: [0x37, 0x00, 0x1f, 0, 0, 0, 0, 0xff, 0xff, CONTROL_USAGE],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt16BE(7),
    handler: readDefectData10,
  },
  {
    opcode: 0xb7,
    name: 'READ DEFECT DATA(12)',
    cdbLength: 12,
    usage: [0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, CONTROL_USAGE],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt32BE(6),
    handler: readDefectData12,
  },
];
