// GET LBA STATUS (SBC-3 §5.6): provisioning status of the blocks from
// STARTING LOGICAL BLOCK ADDRESS on, from the backstore's real allocation.

import type { CommandContext, CommandHandler, CommandOutcome, CommandSpec } from './command.js';
import type { Extent } from './types.js';
import { extentsOf } from './block-ops.js';
import { backstoreFailure, byteOffset, CONTROL_USAGE, lbaOutOfRange } from './sbc-common.js';
import { SA_GET_LBA_STATUS, SERVICE_ACTION_IN_16 } from './sbc-capacity.js';

/** SBC-3 table 50 PROVISIONING STATUS. */
export const ProvisioningStatus = { MAPPED: 0, DEALLOCATED: 1, ANCHORED: 2 } as const;

export interface LbaStatusDescriptor {
  lba: bigint;
  blocks: bigint;
  status: number;
}

/** How far one command looks ahead, in bytes (bounds the work per command). */
const SCAN_WINDOW_BYTES = 1024 * 1024 * 1024;
const MAX_DESCRIPTOR_BLOCKS = 0xffffffffn;

/**
 * Turn byte extents into block descriptors. A block that holds any data is
 * mapped; a block is deallocated only when it lies wholly in a hole. Adjacent
 * runs with the same status are merged.
 */
export function extentsToDescriptors(extents: Extent[], startLba: bigint, blockSize: number): LbaStatusDescriptor[] {
  const out: LbaStatusDescriptor[] = [];
  const push = (from: bigint, to: bigint, status: number): void => {
    if (to <= from) return;
    const last = out[out.length - 1];
    if (last && last.status === status && last.lba + last.blocks === from) last.blocks += to - from;
    else out.push({ lba: from, blocks: to - from, status });
  };
  if (extents.length === 0) return out;
  const base = BigInt(extents[0].offset);
  const bs = BigInt(blockSize);
  // Block numbers relative to the first extent, which starts at startLba.
  let cur = 0n;
  for (const e of extents) {
    const start = BigInt(e.offset) - base;
    const end = start + BigInt(e.length);
    if (e.hole) {
      const to = end / bs;
      push(startLba + cur, startLba + to, ProvisioningStatus.DEALLOCATED);
      if (to > cur) cur = to;
    } else {
      const to = (end + bs - 1n) / bs;
      push(startLba + cur, startLba + to, ProvisioningStatus.MAPPED);
      if (to > cur) cur = to;
    }
  }
  return out;
}

async function describe(ctx: CommandContext, lba: bigint): Promise<LbaStatusDescriptor[] | CommandOutcome> {
  const dev = ctx.device;
  const store = dev.backstore;
  const remaining = dev.blockCount - lba;
  const windowBlocks = BigInt(Math.floor(SCAN_WINDOW_BYTES / dev.blockSize));
  const blocks = remaining < windowBlocks ? remaining : windowBlocks;
  if (!dev.thin || !store.caps.canExtents) {
    return [{ lba, blocks: remaining, status: ProvisioningStatus.MAPPED }];
  }
  try {
    const extents = await extentsOf(dev, byteOffset(ctx, lba), Number(blocks) * dev.blockSize);
    const list = extentsToDescriptors(extents, lba, dev.blockSize);
    return list.length > 0 ? list : [{ lba, blocks, status: ProvisioningStatus.MAPPED }];
  } catch (err) {
    return backstoreFailure(err, 'read', lba);
  }
}

const getLbaStatus: CommandHandler = async (ctx) => {
  const lba = ctx.cdb.readBigUInt64BE(2);
  const alloc = ctx.cdb.readUInt32BE(10);
  // §5.6: a STARTING LBA beyond the last block is LBA OUT OF RANGE.
  if (lba >= ctx.device.blockCount) return lbaOutOfRange();
  const list = await describe(ctx, lba);
  if (!Array.isArray(list)) return list;
  // Only as many descriptors as the allocation length can hold (at least one
  // is built so a short allocation still gets a consistent header).
  const fit = Math.max(1, Math.floor((alloc - 8) / 16));
  const descriptors: LbaStatusDescriptor[] = [];
  for (const d of list) {
    if (descriptors.length >= fit) break;
    // NUMBER OF LOGICAL BLOCKS is 32 bits: split a longer run.
    let at = d.lba;
    let left = d.blocks;
    while (left > 0n && descriptors.length < fit) {
      const n = left > MAX_DESCRIPTOR_BLOCKS ? MAX_DESCRIPTOR_BLOCKS : left;
      descriptors.push({ lba: at, blocks: n, status: d.status });
      at += n;
      left -= n;
    }
  }
  const data = Buffer.alloc(8 + 16 * descriptors.length);
  data.writeUInt32BE(4 + 16 * descriptors.length, 0);
  descriptors.forEach((d, i) => {
    const at = 8 + 16 * i;
    data.writeBigUInt64BE(d.lba, at);
    data.writeUInt32BE(Number(d.blocks), at + 8);
    data[at + 12] = d.status & 0x0f;
  });
  return { kind: 'good', data: alloc < data.length ? data.subarray(0, alloc) : data };
};

export const lbaStatusCommands: CommandSpec[] = [
  {
    opcode: SERVICE_ACTION_IN_16,
    serviceAction: SA_GET_LBA_STATUS,
    name: 'GET LBA STATUS',
    cdbLength: 16,
    usage: [SERVICE_ACTION_IN_16, 0x1f, ...Array<number>(12).fill(0xff), 0x00, CONTROL_USAGE],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt32BE(10),
    handler: getLbaStatus,
  },
];
