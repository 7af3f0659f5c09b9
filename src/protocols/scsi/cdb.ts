// Small pure helpers for CDB fields shared by the target core and the
// initiator (SPC-4 §4.2). No allocation, no state.

/** CONTROL byte (SPC-4 §4.2.6) is the last byte of a fixed-length CDB. */
export const CONTROL_NACA = 0x04;
export const CONTROL_LINK = 0x01;

/** Length of a CDB by its group code (SPC-4 §4.2.5.1); 0 for vendor/variable groups. */
export function cdbLengthOf(opcode: number): number {
  switch (opcode >> 5) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 0;
  }
}

/** ALLOCATION LENGTH at byte 4 (one byte: INQUIRY uses 3..4, see below). */
export function u8(cdb: Buffer, off: number): number {
  return cdb.length > off ? cdb[off] : 0;
}

export function u16(cdb: Buffer, off: number): number {
  return cdb.length >= off + 2 ? cdb.readUInt16BE(off) : 0;
}

export function u32(cdb: Buffer, off: number): number {
  return cdb.length >= off + 4 ? cdb.readUInt32BE(off) : 0;
}

export function u64(cdb: Buffer, off: number): bigint {
  return cdb.length >= off + 8 ? cdb.readBigUInt64BE(off) : 0n;
}

/**
 * First CDB byte/bit that is set but not allowed by a usage map (SPC-4
 * §6.35.3 CDB USAGE DATA). Returns undefined when the CDB fits the map.
 * Byte 0 (the opcode) is not checked.
 */
export function findReservedBit(cdb: Buffer, usage: readonly number[], length: number): { byte: number; bit: number } | undefined {
  const n = Math.min(length, cdb.length, usage.length);
  for (let i = 1; i < n; i++) {
    const bad = cdb[i] & ~usage[i] & 0xff;
    if (bad !== 0) return { byte: i, bit: 31 - Math.clz32(bad) };
  }
  return undefined;
}

/** Pad or cut an ASCII string to a fixed width (SPC-4 §4.4.1: left aligned, space padded). */
export function asciiField(text: string, width: number): Buffer {
  const out = Buffer.alloc(width, 0x20);
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  out.write(clean.slice(0, width), 0, 'latin1');
  return out;
}
