// MODE SENSE(6)/(10) and MODE SELECT(6)/(10) (SPC-4 §6.11-§6.14, mode pages
// §7.5 and SBC-3 §6.4). Pages: read-write error recovery (01h), caching
// (08h), control (0Ah), informational exceptions control (1Ch). Only WCE,
// D_SENSE and SWP are changeable; MODE SELECT checks every other byte
// against the current value and the changeable mask.

import { ScsiOpcode, ModePage } from '../protocols/scsi/opcodes.js';
import type { CommandContext, CommandOutcome, CommandSpec, FieldPointer } from './command.js';
import { scsiDeviceOf, type ModeState, type ScsiDevice } from './device.js';
import { errnoToSense } from './errno.js';
import type { SenseReason } from './sense-reasons.js';

interface ModePageDef {
  code: number;
  /** PAGE LENGTH (bytes after the two-byte header). */
  length: number;
  /** Page bytes (with header) for these parameter values. */
  build(s: Readonly<ModeState>): Buffer;
  /** Changeable bit mask, same layout. */
  changeable: Buffer;
  /** Take the changeable values from a page sent by MODE SELECT. */
  apply(s: ModeState, p: Buffer): void;
}

function blank(code: number, length: number): Buffer {
  const b = Buffer.alloc(2 + length);
  b[0] = code;
  b[1] = length;
  return b;
}

function mask(code: number, length: number, bits: Record<number, number>): Buffer {
  const b = Buffer.alloc(2 + length);
  b[0] = code;
  b[1] = length;
  for (const [i, v] of Object.entries(bits)) b[Number(i)] = v;
  return b;
}

const PAGES: readonly ModePageDef[] = [
  {
    // SBC-3 §6.4.7 read-write error recovery: nothing to recover in software.
    code: ModePage.READ_WRITE_ERROR_RECOVERY,
    length: 0x0a,
    build: () => blank(ModePage.READ_WRITE_ERROR_RECOVERY, 0x0a),
    changeable: mask(ModePage.READ_WRITE_ERROR_RECOVERY, 0x0a, {}),
    apply: () => undefined,
  },
  {
    // SBC-3 §6.4.5 caching: WCE (byte 2 bit 2) is changeable; RCD=0 (read cache on).
    code: ModePage.CACHING,
    length: 0x12,
    build: (s) => {
      const p = blank(ModePage.CACHING, 0x12);
      if (s.wce) p[2] |= 0x04;
      return p;
    },
    changeable: mask(ModePage.CACHING, 0x12, { 2: 0x04 }),
    apply: (s, p) => {
      s.wce = (p[2] & 0x04) !== 0;
    },
  },
  {
    // SPC-4 §7.5.8 control: TST 000b, QUEUE ALGORITHM MODIFIER 1 (unrestricted
    // reordering), QERR 00b, TAS 0, BUSY TIMEOUT PERIOD unlimited. D_SENSE
    // (byte 2 bit 2) and SWP (byte 4 bit 3) are changeable.
    code: ModePage.CONTROL,
    length: 0x0a,
    build: (s) => {
      const p = blank(ModePage.CONTROL, 0x0a);
      if (s.dSense) p[2] |= 0x04;
      p[3] = 0x10;
      if (s.swp) p[4] |= 0x08;
      p.writeUInt16BE(0xffff, 8);
      return p;
    },
    changeable: mask(ModePage.CONTROL, 0x0a, { 2: 0x04, 4: 0x08 }),
    apply: (s, p) => {
      s.dSense = (p[2] & 0x04) !== 0;
      s.swp = (p[4] & 0x08) !== 0;
    },
  },
  {
    // SPC-4 §7.5.11 informational exceptions control: DEXCPT=1 (none reported).
    code: ModePage.INFORMATIONAL_EXCEPTIONS,
    length: 0x0a,
    build: () => {
      const p = blank(ModePage.INFORMATIONAL_EXCEPTIONS, 0x0a);
      p[2] = 0x08;
      return p;
    },
    changeable: mask(ModePage.INFORMATIONAL_EXCEPTIONS, 0x0a, {}),
    apply: () => undefined,
  },
];

const PAGE_BY_CODE = new Map<number, ModePageDef>(PAGES.map((p) => [p.code, p]));

/** Mode pages reported by MODE SENSE, ascending page code. */
export const SUPPORTED_MODE_PAGES: readonly number[] = PAGES.map((p) => p.code);

function invalidCdb(byte: number, bit?: number): CommandOutcome {
  const field: FieldPointer = { inCdb: true, byte };
  if (bit !== undefined) field.bit = bit;
  return { kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field };
}

function invalidParam(byte: number, bit?: number): CommandOutcome {
  const field: FieldPointer = { inCdb: false, byte };
  if (bit !== undefined) field.bit = bit;
  return { kind: 'check', reason: 'INVALID_FIELD_IN_PARAMETER_LIST', field };
}

// PAGE CONTROL (SPC-4 §6.11.1): 00b current, 01b changeable, 10b default, 11b saved.
const PC_CHANGEABLE = 1;
const PC_DEFAULT = 2;
const PC_SAVED = 3;

function pageFor(def: ModePageDef, pc: number, dev: ScsiDevice): Buffer {
  if (pc === PC_CHANGEABLE) return def.changeable;
  return def.build(pc === PC_DEFAULT ? dev.modeDefaults : dev.mode);
}

function modeSense(ctx: CommandContext): CommandOutcome {
  const cdb = ctx.cdb;
  const ten = cdb[0] === ScsiOpcode.MODE_SENSE_10;
  const dev = scsiDeviceOf(ctx.device);
  const dbd = (cdb[1] & 0x08) !== 0;
  const llbaa = ten && (cdb[1] & 0x10) !== 0;
  const pc = cdb[2] >> 6;
  const pageCode = cdb[2] & 0x3f;
  const subpage = cdb[3];
  // SPC-4 §6.11.1: saved values are not supported -> SAVING PARAMETERS NOT SUPPORTED.
  if (pc === PC_SAVED) {
    return { kind: 'check', reason: 'SAVING_PARAMETERS_NOT_SUPPORTED', field: { inCdb: true, byte: 2, bit: 7 } };
  }
  // No subpages: only 00h, or FFh ("all subpages", which here means the page itself).
  if (subpage !== 0x00 && subpage !== 0xff) return invalidCdb(3);

  const pages: Buffer[] = [];
  if (pageCode === ModePage.ALL_PAGES) {
    for (const def of PAGES) pages.push(pageFor(def, pc, dev));
  } else {
    const def = PAGE_BY_CODE.get(pageCode);
    if (!def) return invalidCdb(2, 5);
    pages.push(pageFor(def, pc, dev));
  }

  const hdrLen = ten ? 8 : 4;
  const bdLen = dbd ? 0 : llbaa ? 16 : 8;
  let total = hdrLen + bdLen;
  for (const p of pages) total += p.length;
  const out = Buffer.alloc(total);

  // Device-specific parameter (SBC-3 §6.4.1): WP bit 7, DPOFUA bit 4.
  const dsp = (ctx.writeProtected ? 0x80 : 0) | 0x10;
  if (ten) {
    out.writeUInt16BE(total - 2, 0);
    out[3] = dsp;
    if (llbaa && !dbd) out[4] = 0x01; // LONGLBA
    out.writeUInt16BE(bdLen, 6);
  } else {
    out[0] = total - 1;
    out[2] = dsp;
    out[3] = bdLen;
  }
  let off = hdrLen;
  if (bdLen === 8) {
    // Short LBA block descriptor (SBC-3 §6.4.2.2).
    const blocks = dev.blockCount;
    out.writeUInt32BE(blocks > 0xffffffffn ? 0xffffffff : Number(blocks), off);
    out.writeUIntBE(dev.blockSize, off + 5, 3);
  } else if (bdLen === 16) {
    // Long LBA block descriptor (SBC-3 §6.4.2.3).
    out.writeBigUInt64BE(dev.blockCount, off);
    out.writeUInt32BE(dev.blockSize, off + 12);
  }
  off += bdLen;
  for (const p of pages) {
    p.copy(out, off);
    off += p.length;
  }
  return { kind: 'good', data: out };
}

async function modeSelect(ctx: CommandContext): Promise<CommandOutcome> {
  const cdb = ctx.cdb;
  const ten = cdb[0] === ScsiOpcode.MODE_SELECT_10;
  const dev = scsiDeviceOf(ctx.device);
  // SP=1: we cannot save pages (SPC-4 §6.9: ILLEGAL REQUEST, INVALID FIELD IN CDB).
  if (cdb[1] & 0x01) return invalidCdb(1, 0);
  const paramLen = ten ? cdb.readUInt16BE(7) : cdb[4];
  if (paramLen === 0) return { kind: 'good' };
  const buf = ctx.dataOut;
  const hdrLen = ten ? 8 : 4;
  if (buf.length < hdrLen || buf.length < paramLen) return { kind: 'check', reason: 'PARAMETER_LIST_LENGTH_ERROR' };

  // Mode parameter header: MEDIUM TYPE must be 00h for a direct-access device.
  const mediumTypeAt = ten ? 2 : 1;
  if (buf[mediumTypeAt] !== 0) return invalidParam(mediumTypeAt);
  const bdl = ten ? buf.readUInt16BE(6) : buf[3];
  const longLba = ten && (buf[4] & 0x01) !== 0;
  const descLen = longLba ? 16 : 8;
  if (bdl !== 0 && bdl !== descLen) return invalidParam(ten ? 7 : 3);
  if (hdrLen + bdl > paramLen) return { kind: 'check', reason: 'PARAMETER_LIST_LENGTH_ERROR' };
  if (bdl !== 0) {
    const d = hdrLen;
    const blockLen = longLba ? buf.readUInt32BE(d + 12) : buf.readUIntBE(d + 5, 3);
    // Changing the block length would be a FORMAT; only the current one is accepted.
    if (blockLen !== 0 && blockLen !== dev.blockSize) return invalidParam(longLba ? d + 12 : d + 5);
  }

  const next: ModeState = { ...dev.mode };
  let off = hdrLen + bdl;
  while (off < paramLen) {
    if (off + 2 > paramLen) return { kind: 'check', reason: 'PARAMETER_LIST_LENGTH_ERROR' };
    const b0 = buf[off];
    if (b0 & 0x40) return invalidParam(off, 6); // SPF: we have no subpages
    const def = PAGE_BY_CODE.get(b0 & 0x3f);
    if (!def) return invalidParam(off, 5);
    const plen = buf[off + 1];
    if (plen !== def.length) return invalidParam(off + 1);
    if (off + 2 + plen > paramLen) return { kind: 'check', reason: 'PARAMETER_LIST_LENGTH_ERROR' };
    const cur = def.build(dev.mode);
    const ch = def.changeable;
    for (let i = 2; i < 2 + plen; i++) {
      const bad = (buf[off + i] ^ cur[i]) & ~ch[i] & 0xff;
      if (bad !== 0) return invalidParam(off + i, 31 - Math.clz32(bad));
    }
    def.apply(next, buf.subarray(off, off + 2 + plen));
    off += 2 + plen;
  }

  const old = dev.mode;
  const changed = old.wce !== next.wce || old.dSense !== next.dSense || old.swp !== next.swp;
  if (!changed) return { kind: 'good' };
  const flushNeeded = old.wce && !next.wce;
  old.wce = next.wce;
  old.dSense = next.dSense;
  old.swp = next.swp;
  // SPC-4 §5.14 / §7.5.1: other I_T nexuses learn of the change by unit attention.
  dev.queueUnitAttentionAll('UA_MODE_PARAMETERS_CHANGED', ctx.nexus);
  if (flushNeeded && dev.backstore.caps.canFlush) {
    // Turning the write cache off: what it held must reach the medium now.
    try {
      await dev.backstore.flush();
    } catch (err) {
      const reason: SenseReason = errnoToSense(err, 'flush');
      return { kind: 'check', reason };
    }
  }
  return { kind: 'good' };
}

export const modeCommands: CommandSpec[] = [
  {
    opcode: ScsiOpcode.MODE_SENSE_6,
    name: 'MODE SENSE(6)',
    cdbLength: 6,
    usage: [ScsiOpcode.MODE_SENSE_6, 0x08, 0xff, 0xff, 0xff, 0x00],
    direction: 'read',
    transferLength: (cdb) => cdb[4],
    nominalTimeout: 1,
    handler: modeSense,
  },
  {
    opcode: ScsiOpcode.MODE_SENSE_10,
    name: 'MODE SENSE(10)',
    cdbLength: 10,
    usage: [ScsiOpcode.MODE_SENSE_10, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt16BE(7),
    nominalTimeout: 1,
    handler: modeSense,
  },
  {
    opcode: ScsiOpcode.MODE_SELECT_6,
    name: 'MODE SELECT(6)',
    cdbLength: 6,
    usage: [ScsiOpcode.MODE_SELECT_6, 0x11, 0x00, 0x00, 0xff, 0x00],
    direction: 'write',
    transferLength: (cdb) => cdb[4],
    nominalTimeout: 1,
    handler: modeSelect,
  },
  {
    opcode: ScsiOpcode.MODE_SELECT_10,
    name: 'MODE SELECT(10)',
    cdbLength: 10,
    usage: [ScsiOpcode.MODE_SELECT_10, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00],
    direction: 'write',
    transferLength: (cdb) => cdb.readUInt16BE(7),
    nominalTimeout: 1,
    handler: modeSelect,
  },
];
