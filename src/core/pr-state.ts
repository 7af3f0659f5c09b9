// Reservation state of one logical unit: SPC-4 persistent reservations
// (§5.13) and SPC-2 RESERVE(6)/RELEASE(6), plus the conflict rules the engine
// asks before running a command (SPC-4 §5.13.1 table 54). The command
// handlers live in pr-in.ts, pr-out.ts and reserve6.ts; pr.ts is the door.
//
// Registrations belong to an I_T nexus identity (initiator port id + target
// port id), not to a session object, so they survive a reconnect with the
// same ISID. An SPC-2 reservation belongs to the nexus object itself and ends
// with it (nexus loss, logout) or with a LUN/target reset.

import type { CommandContext, CommandSpec, ReservationHooks } from './command.js';
import type { NexusHandle, NexusIdentity } from './types.js';
import type { SenseReason } from './sense-reasons.js';
import { ANY_ISID_SUFFIX } from './pr-transport-id.js';

import { PrType } from '../protocols/scsi/status.js';

// PERSISTENT RESERVE OUT TYPE codes (SPC-4 §6.16.3 table 172), shared with the initiator.
export { PrType };

export function isValidPrType(type: number): boolean {
  return type === 1 || type === 3 || (type >= 5 && type <= 8);
}
/** All registrants types: every registrant is a reservation holder (SPC-4 §5.13.10). */
export function isAllRegistrants(type: number): boolean {
  return type === 7 || type === 8;
}
export function isRegistrantsOnly(type: number): boolean {
  return type === 5 || type === 6;
}
function isExclusiveAccess(type: number): boolean {
  return type === 3 || type === 6 || type === 8;
}

/** Wildcard target port id of an ALL_TG_PT registration. */
export const ALL_TARGET_PORTS = '*';

/**
 * Whom a unit attention or an abort is for: an I_T nexus, where
 * targetPortId '*' means every target port (ALL_TG_PT registration) and an
 * initiatorPortId ending in ",i,*" means every port of that initiator name
 * (TransportID format 00b). prTargetMatches() applies these wildcards.
 */
export interface PrNexusTarget {
  initiatorPortId: string;
  targetPortId: string;
}

export function prTargetMatches(target: PrNexusTarget, id: Pick<NexusIdentity, 'initiatorPortId' | 'targetPortId'>): boolean {
  if (target.targetPortId !== ALL_TARGET_PORTS && target.targetPortId !== id.targetPortId) return false;
  const want = target.initiatorPortId.toLowerCase();
  const have = id.initiatorPortId.toLowerCase();
  if (want.endsWith(ANY_ISID_SUFFIX)) {
    const name = want.slice(0, -ANY_ISID_SUFFIX.length);
    return have === name || have.startsWith(name + ',i,');
  }
  return want === have;
}

export interface Registration extends PrNexusTarget {
  /** Reservation key (8 bytes, never zero). */
  key: bigint;
  /** SCSI transport protocol identifier of the initiator port (5 = iSCSI). */
  protocolId: number;
  /** Relative target port identifier of the registering nexus (READ FULL STATUS). */
  relativeTargetPortId: number;
}

export interface PersistentReservation {
  type: number;
  /** Always 0 (LU_SCOPE); kept to report it and compare on RELEASE. */
  scope: number;
  /** The holder's registration; null for all registrants types. */
  holder: Registration | null;
}

/** How ReservationState tells the device about other nexuses (device.ts wires it). */
export interface ReservationEvents {
  /** Queue a unit attention (RESERVATIONS PREEMPTED/RELEASED, REGISTRATIONS PREEMPTED) for the nexus(es). */
  unitAttention(target: PrNexusTarget, reason: SenseReason): void;
}

/** Upper bound on registrations per LU (INSUFFICIENT REGISTRATION RESOURCES beyond it). */
export const MAX_REGISTRATIONS = 256;

export class ReservationState implements ReservationHooks {
  /** PRgeneration (SPC-4 §6.15.2): bumped by REGISTER, CLEAR, PREEMPT; 32-bit wrap. */
  generation = 0;
  /** In registration order (READ KEYS order). */
  readonly registrations: Registration[] = [];
  reservation: PersistentReservation | null = null;
  /** Nexus holding an SPC-2 RESERVE(6), by NexusHandle.id. */
  legacyHolder: number | null = null;
  /**
   * PREEMPT AND ABORT: abort every task of these initiator ports on this LU
   * (SPC-4 §5.13.11.4.5). device.ts sets it; the list never holds the
   * preempting nexus's own port.
   */
  onAbortNexusTasks?: (initiatorPortIds: string[]) => void;

  constructor(private readonly events?: ReservationEvents) {}

  // -- lookups --------------------------------------------------------------

  findRegistration(id: NexusIdentity): Registration | undefined {
    // An exact registration wins over a wildcard (ALL_TG_PT / any-ISID) one.
    let wildcard: Registration | undefined;
    for (const reg of this.registrations) {
      if (!prTargetMatches(reg, id)) continue;
      if (reg.targetPortId !== ALL_TARGET_PORTS && !reg.initiatorPortId.endsWith(ANY_ISID_SUFFIX)) return reg;
      wildcard ??= reg;
    }
    return wildcard;
  }

  /** Is this registration a persistent reservation holder (SPC-4 §5.13.10)? */
  isHolder(reg: Registration | undefined): boolean {
    const res = this.reservation;
    if (!res || !reg) return false;
    return isAllRegistrants(res.type) ? true : res.holder === reg;
  }

  bumpGeneration(): void {
    this.generation = (this.generation + 1) >>> 0;
  }

  notify(regs: Iterable<Registration>, reason: SenseReason): void {
    if (!this.events) return;
    for (const reg of regs) {
      this.events.unitAttention({ initiatorPortId: reg.initiatorPortId, targetPortId: reg.targetPortId }, reason);
    }
  }

  /**
   * Remove registrations and apply what follows for the reservation:
   * a non all-registrants reservation ends with its holder's registration,
   * an all-registrants one with the last registration (SPC-4 §5.13.11.2.3).
   * Returns true when the reservation was released as a consequence.
   */
  removeRegistrations(victims: Registration[]): boolean {
    if (victims.length === 0) return false;
    const gone = new Set(victims);
    for (let i = this.registrations.length - 1; i >= 0; i--) {
      if (gone.has(this.registrations[i])) this.registrations.splice(i, 1);
    }
    const res = this.reservation;
    if (!res) return false;
    if (isAllRegistrants(res.type) ? this.registrations.length === 0 : res.holder !== null && gone.has(res.holder)) {
      this.reservation = null;
      return true;
    }
    return false;
  }

  // -- ReservationHooks -----------------------------------------------------

  conflicts(nexus: NexusHandle, spec: CommandSpec, cdb: Buffer): boolean {
    const opcode = cdb.length > 0 ? cdb[0] : spec.opcode;
    if (this.legacyHolder !== null && this.legacyHolder !== nexus.id) {
      return !spc2Exempt(opcode, cdb);
    }
    return this.persistentConflict(nexus, accessClass(opcode, cdb));
  }

  /**
   * The same rules for a block operation (the block nexus): reads are 'read'
   * (READ), writes, trims, zeroes and flushes 'write' (WRITE, UNMAP, WRITE
   * SAME, SYNCHRONIZE CACHE). None of them is exempt from RESERVE(6).
   */
  accessConflicts(nexus: NexusHandle, access: 'read' | 'write'): boolean {
    if (this.legacyHolder !== null && this.legacyHolder !== nexus.id) return true;
    return this.persistentConflict(nexus, access);
  }

  /** SPC-4 §5.13.1 table 54 for a command of this access class. */
  private persistentConflict(nexus: NexusHandle, access: AccessClass): boolean {
    const res = this.reservation;
    if (!res) return false;
    if (access === 'none') return false;
    const reg = this.findRegistration(nexus.identity);
    if (this.isHolder(reg)) return false;
    // Registrants only / all registrants: a registered nexus has full access (table 54).
    if (reg && (isRegistrantsOnly(res.type) || isAllRegistrants(res.type))) return false;
    if (access === 'write') return true;
    return isExclusiveAccess(res.type);
  }

  nexusLost(nexus: NexusHandle): void {
    if (this.legacyHolder === nexus.id) this.legacyHolder = null;
  }

  reset(): void {
    // SPC-2 §5.5.1: a LUN reset or target reset releases RESERVE(6); PR state stays (SPC-4 §5.13.2).
    this.legacyHolder = null;
  }
}

/** The LU's reservation state, downcast from the DeviceView's ReservationHooks. */
export function reservationStateOf(ctx: CommandContext): ReservationState | undefined {
  const r = ctx.device.reservations;
  return r instanceof ReservationState ? r : undefined;
}

// ---------------------------------------------------------------------------
// SPC-4 §5.13.1 table 54: what a command does to the medium, as far as
// reservations are concerned.
//   none:  allowed under every reservation type
//   read:  conflicts under the exclusive access types (from a non-holder)
//   write: conflicts under every type (from a non-holder)
// Registrants-only / all-registrants reservations let every registered nexus
// in; unknown commands count as 'write'.

type AccessClass = 'none' | 'read' | 'write';

const OP = {
  TEST_UNIT_READY: 0x00,
  REQUEST_SENSE: 0x03,
  READ6: 0x08,
  INQUIRY: 0x12,
  RESERVE6: 0x16,
  RELEASE6: 0x17,
  MODE_SENSE6: 0x1a,
  RECEIVE_DIAGNOSTIC_RESULTS: 0x1c,
  PREVENT_ALLOW_MEDIUM_REMOVAL: 0x1e,
  READ_CAPACITY10: 0x25,
  READ10: 0x28,
  VERIFY10: 0x2f,
  PRE_FETCH10: 0x34,
  READ_DEFECT_DATA10: 0x37,
  READ_BUFFER: 0x3c,
  READ_LONG10: 0x3e,
  LOG_SENSE: 0x4d,
  RESERVE10: 0x56,
  RELEASE10: 0x57,
  MODE_SENSE10: 0x5a,
  PERSISTENT_RESERVE_IN: 0x5e,
  PERSISTENT_RESERVE_OUT: 0x5f,
  VARIABLE_LENGTH: 0x7f,
  READ_ATTRIBUTE: 0x8c,
  READ16: 0x88,
  VERIFY16: 0x8f,
  PRE_FETCH16: 0x90,
  SERVICE_ACTION_IN16: 0x9e,
  REPORT_LUNS: 0xa0,
  SECURITY_PROTOCOL_IN: 0xa2,
  MAINTENANCE_IN: 0xa3,
  READ12: 0xa8,
  SERVICE_ACTION_IN12: 0xab,
  VERIFY12: 0xaf,
  READ_DEFECT_DATA12: 0xb7,
} as const;

const ALWAYS_ALLOWED = new Set<number>([
  OP.TEST_UNIT_READY,
  OP.REQUEST_SENSE,
  OP.INQUIRY,
  OP.READ_CAPACITY10,
  OP.LOG_SENSE,
  OP.REPORT_LUNS,
  // The PR commands apply their own rules (§5.13.11); RESERVE/RELEASE(6)
  // under a persistent reservation follow §5.13.3 in reserve6.ts.
  OP.PERSISTENT_RESERVE_IN,
  OP.PERSISTENT_RESERVE_OUT,
  OP.RESERVE6,
  OP.RELEASE6,
  OP.RESERVE10,
  OP.RELEASE10,
]);

const READ_CLASS = new Set<number>([
  OP.READ6,
  OP.READ10,
  OP.READ12,
  OP.READ16,
  OP.VERIFY10,
  OP.VERIFY12,
  OP.VERIFY16,
  OP.PRE_FETCH10,
  OP.PRE_FETCH16,
  OP.READ_DEFECT_DATA10,
  OP.READ_DEFECT_DATA12,
  OP.READ_LONG10,
  OP.MODE_SENSE6,
  OP.MODE_SENSE10,
  OP.READ_BUFFER,
  OP.RECEIVE_DIAGNOSTIC_RESULTS,
  OP.READ_ATTRIBUTE,
  OP.SECURITY_PROTOCOL_IN,
]);

/** MAINTENANCE IN service actions that only report: REPORT IDENTIFYING INFORMATION, TPGS, RSOC, RSTMF, priority, timestamp. */
const MAINTENANCE_IN_REPORTS = new Set<number>([0x05, 0x0a, 0x0c, 0x0d, 0x0e, 0x0f]);

export function accessClass(opcode: number, cdb: Buffer): AccessClass {
  if (ALWAYS_ALLOWED.has(opcode)) return 'none';
  if (READ_CLASS.has(opcode)) return 'read';
  const sa = cdb.length > 1 ? cdb[1] & 0x1f : 0;
  switch (opcode) {
    case OP.PREVENT_ALLOW_MEDIUM_REMOVAL:
      // PREVENT field 0 (allow removal) never conflicts; preventing does.
      return cdb.length > 4 && (cdb[4] & 0x03) === 0 ? 'none' : 'write';
    case OP.SERVICE_ACTION_IN16:
      if (sa === 0x10) return 'none'; // READ CAPACITY(16)
      if (sa === 0x11 || sa === 0x12) return 'read'; // READ LONG(16), GET LBA STATUS
      return 'write';
    case OP.MAINTENANCE_IN:
      return MAINTENANCE_IN_REPORTS.has(sa) ? 'none' : 'write';
    case OP.SERVICE_ACTION_IN12:
      return sa === 0x01 ? 'none' : 'write'; // READ MEDIA SERIAL NUMBER
    case OP.VARIABLE_LENGTH: {
      const vsa = cdb.length >= 10 ? cdb.readUInt16BE(8) : 0;
      return vsa === 0x0009 || vsa === 0x000a ? 'read' : 'write'; // READ(32), VERIFY(32)
    }
    default:
      return 'write';
  }
}

/**
 * SPC-2 §5.5.1 / §7.21: under a RESERVE(6) held by another nexus only these
 * run; everything else gets RESERVATION CONFLICT. PERSISTENT RESERVE IN only
 * reads state and stays available so tools can inspect a reserved LU.
 */
function spc2Exempt(opcode: number, cdb: Buffer): boolean {
  switch (opcode) {
    case OP.INQUIRY:
    case OP.REQUEST_SENSE:
    case OP.REPORT_LUNS:
    case OP.RELEASE6:
    case OP.RELEASE10:
    case OP.PERSISTENT_RESERVE_IN:
      return true;
    case OP.PREVENT_ALLOW_MEDIUM_REMOVAL:
      return cdb.length > 4 && (cdb[4] & 0x03) === 0;
    default:
      return false;
  }
}
