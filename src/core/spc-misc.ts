// TEST UNIT READY (SPC-4 §6.47), REQUEST SENSE (§6.39), REPORT LUNS (§6.33),
// REPORT SUPPORTED OPERATION CODES (§6.35) and REPORT SUPPORTED TASK
// MANAGEMENT FUNCTIONS (§6.36).

import { ScsiOpcode, MaintenanceIn } from '../protocols/scsi/opcodes.js';
import { encodeLun } from '../protocols/iscsi/lun.js';
import type { CommandContext, CommandOutcome, CommandSpec } from './command.js';
import type { LunMap } from './types.js';
import { scsiDeviceOf } from './device.js';
import { buildSense } from './sense.js';
import type { SenseReason } from './sense-reasons.js';

function invalidCdb(byte: number, bit?: number): CommandOutcome {
  return bit === undefined
    ? { kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { inCdb: true, byte } }
    : { kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { inCdb: true, byte, bit } };
}

// ---------------------------------------------------------------------------
// TEST UNIT READY: the engine has already reported unit attentions; a mapped
// LU with a backstore is ready.

function testUnitReady(): CommandOutcome {
  return { kind: 'good' };
}

// ---------------------------------------------------------------------------
// REQUEST SENSE: with autosense every CHECK CONDITION already carried its
// sense data, so the only thing left to report is a pending unit attention
// (SPC-4 §5.14: REQUEST SENSE reports and clears it); otherwise NO SENSE.

/** Sense data for REQUEST SENSE; DESC bit selects descriptor format. */
export function requestSenseData(cdb: Buffer, reason: SenseReason): Buffer {
  return buildSense(reason, { descriptor: (cdb[1] & 0x01) !== 0 });
}

function requestSense(ctx: CommandContext): CommandOutcome {
  const dev = scsiDeviceOf(ctx.device);
  const pending = dev.ua.queueFor(ctx.nexus.id).take();
  return { kind: 'good', data: requestSenseData(ctx.cdb, pending ?? 'NO_SENSE') };
}

// ---------------------------------------------------------------------------
// REPORT LUNS

/**
 * REPORT LUNS data for a nexus's LUN map, or an INVALID FIELD outcome.
 * SELECT REPORT 00h/02h: every LU (LUN 0 reported even when unmapped, so an
 * initiator always finds something to probe); 01h: well-known LUs (none).
 */
export function reportLuns(cdb: Buffer, luns: LunMap): CommandOutcome {
  const select = cdb[2];
  if (select !== 0x00 && select !== 0x01 && select !== 0x02) return invalidCdb(2);
  // SPC-4 §6.33: an ALLOCATION LENGTH below 16 is an INVALID FIELD IN CDB.
  const alloc = cdb.readUInt32BE(6);
  if (alloc < 16) return invalidCdb(6);
  let list: number[] = select === 0x01 ? [] : luns.list();
  if (select !== 0x01 && list.length === 0) list = [0];
  const out = Buffer.alloc(8 + 8 * list.length);
  out.writeUInt32BE(8 * list.length, 0);
  let off = 8;
  for (const lun of list) {
    encodeLun(lun, out, off);
    off += 8;
  }
  return { kind: 'good', data: out };
}

function reportLunsHandler(ctx: CommandContext): CommandOutcome {
  return reportLuns(ctx.cdb, ctx.nexus.identity.luns);
}

// ---------------------------------------------------------------------------
// REPORT SUPPORTED OPERATION CODES

/** Default nominal command timeout (seconds) for commands that do not name one. */
const DEFAULT_TIMEOUT = 30;

function timeoutsDescriptor(spec: CommandSpec, out: Buffer, off: number): void {
  // Command timeouts descriptor (SPC-4 §6.35.4): DESCRIPTOR LENGTH 0Ah.
  out.writeUInt16BE(0x0a, off);
  const nominal = spec.nominalTimeout ?? DEFAULT_TIMEOUT;
  out.writeUInt32BE(nominal, off + 4);
  out.writeUInt32BE(nominal * 2, off + 8);
}

function hasServiceActions(commands: readonly CommandSpec[], opcode: number): boolean {
  return commands.some((c) => c.opcode === opcode && c.serviceAction !== undefined);
}

function sortedCommands(commands: readonly CommandSpec[]): CommandSpec[] {
  return [...commands].sort((a, b) => a.opcode - b.opcode || (a.serviceAction ?? 0) - (b.serviceAction ?? 0));
}

function allCommandsData(commands: readonly CommandSpec[], rctd: boolean): Buffer {
  const list = sortedCommands(commands);
  const descLen = rctd ? 20 : 8;
  const out = Buffer.alloc(4 + descLen * list.length);
  out.writeUInt32BE(descLen * list.length, 0);
  let off = 4;
  for (const c of list) {
    out[off] = c.opcode;
    out.writeUInt16BE(c.serviceAction ?? 0, off + 2);
    out[off + 5] = (rctd ? 0x02 : 0) | (c.serviceAction !== undefined ? 0x01 : 0); // CTDP, SERVACTV
    out.writeUInt16BE(c.cdbLength, off + 6);
    if (rctd) timeoutsDescriptor(c, out, off + 8);
    off += descLen;
  }
  return out;
}

function oneCommandData(spec: CommandSpec | undefined, rctd: boolean): Buffer {
  if (!spec) {
    // SUPPORT 001b: not supported; no CDB usage data.
    const out = Buffer.alloc(4);
    out[1] = 0x01;
    return out;
  }
  const n = spec.cdbLength;
  const out = Buffer.alloc(4 + n + (rctd ? 12 : 0));
  out[1] = (rctd ? 0x80 : 0) | 0x03; // CTDP, SUPPORT 011b: supported as the standard says
  out.writeUInt16BE(n, 2);
  for (let i = 0; i < n; i++) out[4 + i] = spec.usage[i] ?? 0;
  out[4] = spec.opcode;
  if (spec.serviceAction !== undefined && spec.opcode !== ScsiOpcode.VARIABLE_LENGTH) {
    // The usage byte of the SERVICE ACTION field shows the service action itself.
    out[5] = (out[5] & 0xe0) | (spec.serviceAction & 0x1f);
  }
  if (rctd) timeoutsDescriptor(spec, out, 4 + n);
  return out;
}

function reportSupportedOpcodes(ctx: CommandContext): CommandOutcome {
  const cdb = ctx.cdb;
  const commands = scsiDeviceOf(ctx.device).info.commands;
  const rctd = (cdb[2] & 0x80) !== 0;
  const options = cdb[2] & 0x07;
  const opcode = cdb[3];
  const sa = cdb.readUInt16BE(4);
  switch (options) {
    case 0:
      return { kind: 'good', data: allCommandsData(commands, rctd) };
    case 1: {
      // Opcode only: an opcode with service actions is an error here.
      if (hasServiceActions(commands, opcode)) return invalidCdb(3);
      return { kind: 'good', data: oneCommandData(commands.find((c) => c.opcode === opcode), rctd) };
    }
    case 2: {
      // Opcode and service action: an opcode without service actions is an error.
      const known = commands.some((c) => c.opcode === opcode);
      if (known && !hasServiceActions(commands, opcode)) return invalidCdb(3);
      const spec = commands.find((c) => c.opcode === opcode && c.serviceAction === sa);
      return { kind: 'good', data: oneCommandData(spec, rctd) };
    }
    case 3: {
      // Opcode, and the service action when the opcode has them (SPC-4 r37 table 243).
      const withSa = hasServiceActions(commands, opcode);
      const spec = commands.find((c) => c.opcode === opcode && (!withSa || c.serviceAction === sa));
      return { kind: 'good', data: oneCommandData(spec, rctd) };
    }
    default:
      return invalidCdb(2, 2);
  }
}

// ---------------------------------------------------------------------------
// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS

function reportSupportedTmfs(ctx: CommandContext): CommandOutcome {
  const repd = (ctx.cdb[2] & 0x80) !== 0;
  const out = Buffer.alloc(repd ? 16 : 4);
  // ATS, ATSS, CTSS, LURS, QTS, TRS (no CLEAR ACA, no WAKEUP).
  out[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x04 | 0x02;
  // QUAS (query asynchronous event), QTSS (query task set), ITNRS (I_T nexus reset).
  out[1] = 0x04 | 0x02 | 0x01;
  if (repd) out[3] = 0x0c; // ADDITIONAL DATA LENGTH of the extended format
  return { kind: 'good', data: out };
}

// ---------------------------------------------------------------------------

const maintenanceInUsage = (sa: number): number[] => [ScsiOpcode.MAINTENANCE_IN, sa, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0];

export const spcMiscCommands: CommandSpec[] = [
  {
    opcode: ScsiOpcode.TEST_UNIT_READY,
    name: 'TEST UNIT READY',
    cdbLength: 6,
    usage: [ScsiOpcode.TEST_UNIT_READY, 0, 0, 0, 0, 0],
    direction: 'none',
    transferLength: () => 0,
    nominalTimeout: 1,
    handler: testUnitReady,
  },
  {
    opcode: ScsiOpcode.REQUEST_SENSE,
    name: 'REQUEST SENSE',
    cdbLength: 6,
    usage: [ScsiOpcode.REQUEST_SENSE, 0x01, 0, 0, 0xff, 0],
    direction: 'read',
    transferLength: (cdb) => cdb[4],
    allowedWithUnitAttention: true,
    reservationExempt: true,
    nominalTimeout: 1,
    handler: requestSense,
  },
  {
    opcode: ScsiOpcode.REPORT_LUNS,
    name: 'REPORT LUNS',
    cdbLength: 12,
    usage: [ScsiOpcode.REPORT_LUNS, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt32BE(6),
    allowedWithUnitAttention: true,
    reservationExempt: true,
    nominalTimeout: 1,
    handler: reportLunsHandler,
  },
  {
    opcode: ScsiOpcode.MAINTENANCE_IN,
    serviceAction: MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES,
    name: 'REPORT SUPPORTED OPERATION CODES',
    cdbLength: 12,
    usage: [ScsiOpcode.MAINTENANCE_IN, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt32BE(6),
    nominalTimeout: 1,
    handler: reportSupportedOpcodes,
  },
  {
    opcode: ScsiOpcode.MAINTENANCE_IN,
    serviceAction: MaintenanceIn.REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS,
    name: 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS',
    cdbLength: 12,
    usage: (() => {
      const u = maintenanceInUsage(0x0d);
      u[2] = 0x80;
      return u;
    })(),
    direction: 'read',
    transferLength: (cdb) => cdb.readUInt32BE(6),
    nominalTimeout: 1,
    handler: reportSupportedTmfs,
  },
];
