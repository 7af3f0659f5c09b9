// READ CAPACITY 10 and 16 (SBC-3 §5.16, §5.17).

import type { CommandContext, CommandHandler, CommandSpec } from './command.js';
import { CONTROL_USAGE, invalidCdbField, LOGICAL_BLOCKS_PER_PHYSICAL_EXPONENT } from './sbc-common.js';

export const SERVICE_ACTION_IN_16 = 0x9e;
export const SA_READ_CAPACITY_16 = 0x10;
export const SA_GET_LBA_STATUS = 0x12;

/** LBPRZ: deallocated blocks read as zeroes (reported only for a thin LU). */
export function lbprz(ctx: CommandContext): boolean {
  return ctx.device.thin && ctx.device.backstore.caps.unmapReadsZero;
}

const readCapacity10: CommandHandler = (ctx) => {
  const cdb = ctx.cdb;
  // §5.16: with PMI=0 the (obsolete) LBA field must be zero.
  if ((cdb[8] & 0x01) === 0 && cdb.readUInt32BE(2) !== 0) return invalidCdbField(2);
  const last = ctx.device.blockCount - 1n;
  const data = Buffer.alloc(8);
  // A capacity that does not fit tells the client to use READ CAPACITY(16).
  data.writeUInt32BE(last > 0xfffffffen ? 0xffffffff : Number(last), 0);
  data.writeUInt32BE(ctx.device.blockSize, 4);
  return { kind: 'good', data };
};

const readCapacity16: CommandHandler = (ctx) => {
  const alloc = ctx.cdb.readUInt32BE(10);
  const data = Buffer.alloc(32);
  data.writeBigUInt64BE(ctx.device.blockCount - 1n, 0);
  data.writeUInt32BE(ctx.device.blockSize, 8);
  // Byte 12: P_TYPE/PROT_EN 0 (no protection information).
  // Byte 13: P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT.
  data[13] = LOGICAL_BLOCKS_PER_PHYSICAL_EXPONENT & 0x0f;
  // Byte 14: LBPME (bit 7), LBPRZ (bit 6), LOWEST ALIGNED LBA (0).
  data[14] = (ctx.device.thin ? 0x80 : 0) | (lbprz(ctx) ? 0x40 : 0);
  return { kind: 'good', data: alloc < data.length ? data.subarray(0, alloc) : data };
};

export const capacityCommands: CommandSpec[] = [
  {
    opcode: 0x25,
    name: 'READ CAPACITY(10)',
    cdbLength: 10,
    // Obsolete LBA field and PMI bit are still accepted.
    usage: [0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, CONTROL_USAGE],
    direction: 'read',
    transferLength: () => 8,
    // SPC-4 §5.13 table: READ CAPACITY is allowed under any reservation.
    reservationExempt: true,
    handler: readCapacity10,
  },
  {
    opcode: SERVICE_ACTION_IN_16,
    serviceAction: SA_READ_CAPACITY_16,
    name: 'READ CAPACITY(16)',
    cdbLength: 16,
    usage: [SERVICE_ACTION_IN_16, 0x1f, ...Array<number>(12).fill(0xff), 0x01, CONTROL_USAGE],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt32BE(10),
    reservationExempt: true,
    handler: readCapacity16,
  },
];
