// PERSISTENT RESERVE IN (SPC-4 §6.15): READ KEYS, READ RESERVATION,
// REPORT CAPABILITIES, READ FULL STATUS.
//
// The parameter data is built whole and cut to the ALLOCATION LENGTH; the
// length fields keep describing the whole data (§6.15.2: "not altered based
// on the allocation length"), which libiscsi's READ KEYS truncate test checks.

import type { CommandContext, CommandOutcome, CommandSpec } from './command.js';
import { isAllRegistrants, reservationStateOf, ALL_TARGET_PORTS, type ReservationState } from './pr-state.js';
import { encodeTransportId } from './pr-transport-id.js';

export const PrInAction = {
  READ_KEYS: 0x00,
  READ_RESERVATION: 0x01,
  REPORT_CAPABILITIES: 0x02,
  READ_FULL_STATUS: 0x03,
} as const;

/** REPORT CAPABILITIES byte 2 (SPC-4 §6.15.4 table 165). */
const CAP_CRH = 0x10; // RESERVE/RELEASE(6) follow §5.13.3 (reserve6.ts)
const CAP_SIP_C = 0x08; // SPEC_I_PT supported
const CAP_ATP_C = 0x04; // ALL_TG_PT supported
// PTPL_C (0x01) stays 0: registrations do not survive a restart of lunkit.
/** Byte 3: TYPE MASK valid. ALLOW COMMANDS 000b (no information) and PTPL_A 0. */
const CAP_TMV = 0x80;
/** PERSISTENT RESERVATION TYPE MASK: WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX (byte 4); EX_AC_AR (byte 5). */
const TYPE_MASK = 0xea01;

function header(gen: number, additional: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  buf.writeUInt32BE(gen, 0);
  buf.writeUInt32BE(additional, 4);
  return buf;
}

/** §6.15.2 READ KEYS: one key per registration, in registration order. */
function readKeys(st: ReservationState): Buffer {
  const n = st.registrations.length;
  const buf = header(st.generation, n * 8, 8 + n * 8);
  st.registrations.forEach((reg, i) => buf.writeBigUInt64BE(reg.key, 8 + i * 8));
  return buf;
}

/** §6.15.3 READ RESERVATION: header only when no reservation, else one 16-byte descriptor. */
function readReservation(st: ReservationState): Buffer {
  const res = st.reservation;
  if (!res) return header(st.generation, 0, 8);
  const buf = header(st.generation, 16, 24);
  // All registrants types report a reservation key of zero (§6.15.3.3).
  const key = res.holder && !isAllRegistrants(res.type) ? res.holder.key : 0n;
  buf.writeBigUInt64BE(key, 8);
  buf[21] = ((res.scope & 0x0f) << 4) | (res.type & 0x0f);
  return buf;
}

/** §6.15.4 REPORT CAPABILITIES: fixed 8 bytes. */
function reportCapabilities(): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt16BE(8, 0);
  buf[2] = CAP_CRH | CAP_SIP_C | CAP_ATP_C;
  buf[3] = CAP_TMV;
  buf.writeUInt16BE(TYPE_MASK, 4);
  return buf;
}

/** §6.15.5 READ FULL STATUS: one descriptor per registration with its TransportID. */
function readFullStatus(st: ReservationState): Buffer {
  const parts: Buffer[] = [];
  const res = st.reservation;
  for (const reg of st.registrations) {
    const tid = encodeTransportId(reg.protocolId, reg.initiatorPortId);
    const d = Buffer.alloc(24 + tid.length);
    d.writeBigUInt64BE(reg.key, 0);
    const allTgPt = reg.targetPortId === ALL_TARGET_PORTS;
    const holder = st.isHolder(reg);
    d[12] = (allTgPt ? 0x02 : 0) | (holder ? 0x01 : 0);
    if (holder && res) d[13] = ((res.scope & 0x0f) << 4) | (res.type & 0x0f);
    // RELATIVE TARGET PORT IDENTIFIER is meaningless for ALL_TG_PT registrations.
    d.writeUInt16BE(allTgPt ? 0 : reg.relativeTargetPortId & 0xffff, 18);
    d.writeUInt32BE(tid.length, 20);
    tid.copy(d, 24);
    parts.push(d);
  }
  const body = Buffer.concat(parts);
  const buf = header(st.generation, body.length, 8 + body.length);
  body.copy(buf, 8);
  return buf;
}

function persistentReserveIn(ctx: CommandContext): CommandOutcome {
  const st = reservationStateOf(ctx);
  if (!st) return { kind: 'check', reason: 'INTERNAL_TARGET_FAILURE' };
  const sa = ctx.cdb[1] & 0x1f;
  const alloc = ctx.cdb.readUInt16BE(7);
  let data: Buffer;
  switch (sa) {
    case PrInAction.READ_KEYS:
      data = readKeys(st);
      break;
    case PrInAction.READ_RESERVATION:
      data = readReservation(st);
      break;
    case PrInAction.REPORT_CAPABILITIES:
      data = reportCapabilities();
      break;
    case PrInAction.READ_FULL_STATUS:
      data = readFullStatus(st);
      break;
    default:
      return { kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { inCdb: true, byte: 1, bit: 4 } };
  }
  return { kind: 'good', data: data.length > alloc ? data.subarray(0, alloc) : data };
}

const NAMES: Record<number, string> = {
  [PrInAction.READ_KEYS]: 'PERSISTENT RESERVE IN (READ KEYS)',
  [PrInAction.READ_RESERVATION]: 'PERSISTENT RESERVE IN (READ RESERVATION)',
  [PrInAction.REPORT_CAPABILITIES]: 'PERSISTENT RESERVE IN (REPORT CAPABILITIES)',
  [PrInAction.READ_FULL_STATUS]: 'PERSISTENT RESERVE IN (READ FULL STATUS)',
};

/**
 * One spec per service action (REPORT SUPPORTED OPERATION CODES lists them
 * one by one); every spec shares the handler, which reads the service action
 * from the CDB itself and rejects unknown ones.
 */
export const prInCommands: CommandSpec[] = Object.values(PrInAction).map((sa) => ({
  opcode: 0x5e,
  serviceAction: sa,
  name: NAMES[sa],
  cdbLength: 10,
  usage: [0x5e, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00],
  direction: 'read' as const,
  transferLength: (cdb: Buffer) => cdb.readUInt16BE(7),
  // Allowed under every reservation (SPC-4 table 54).
  reservationExempt: true,
  handler: persistentReserveIn,
}));
