// PERSISTENT RESERVE OUT (SPC-4 §6.16, rules in §5.13.11): REGISTER,
// RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT AND ABORT, REGISTER AND IGNORE
// EXISTING KEY. REGISTER AND MOVE is not offered (INVALID FIELD IN CDB).
//
// Basic parameter list (24 bytes, §6.16.3 table 174):
//   0-7   RESERVATION KEY            8-15  SERVICE ACTION RESERVATION KEY
//   16-19 obsolete                   20    SPEC_I_PT (3) ALL_TG_PT (2) APTPL (0)
//   21    reserved                   22-23 obsolete
//   24-27 TRANSPORTID PARAMETER DATA LENGTH, then TransportIDs (SPEC_I_PT=1 only)

import type { CommandContext, CommandOutcome, CommandSpec, FieldPointer } from './command.js';
import type { NexusIdentity } from './types.js';
import type { SenseReason } from './sense-reasons.js';
import {
  ALL_TARGET_PORTS,
  MAX_REGISTRATIONS,
  isAllRegistrants,
  isRegistrantsOnly,
  isValidPrType,
  prTargetMatches,
  reservationStateOf,
  type Registration,
  type ReservationState,
} from './pr-state.js';
import { parseTransportId } from './pr-transport-id.js';

export const PrOutAction = {
  REGISTER: 0x00,
  RESERVE: 0x01,
  RELEASE: 0x02,
  CLEAR: 0x03,
  PREEMPT: 0x04,
  PREEMPT_AND_ABORT: 0x05,
  REGISTER_AND_IGNORE_EXISTING_KEY: 0x06,
} as const;

const BASIC_LENGTH = 24;
const SPEC_I_PT = 0x08;
const ALL_TG_PT = 0x04;

const CONFLICT: CommandOutcome = { kind: 'reservation-conflict' };
const GOOD: CommandOutcome = { kind: 'good' };

function check(reason: SenseReason, field?: FieldPointer): CommandOutcome {
  return field ? { kind: 'check', reason, field } : { kind: 'check', reason };
}

/** A PERSISTENT RESERVE OUT command, decoded and validated. */
interface ProutRequest {
  st: ReservationState;
  id: NexusIdentity;
  sa: number;
  scope: number;
  type: number;
  key: bigint;
  sark: bigint;
  specIPt: boolean;
  allTgPt: boolean;
  data: Buffer;
}

function persistentReserveOut(ctx: CommandContext): CommandOutcome {
  const st = reservationStateOf(ctx);
  if (!st) return check('INTERNAL_TARGET_FAILURE');
  const { cdb } = ctx;
  const sa = cdb[1] & 0x1f;
  if (sa > PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY) return check('INVALID_FIELD_IN_CDB', { inCdb: true, byte: 1, bit: 4 });
  const scope = cdb[2] >> 4;
  const type = cdb[2] & 0x0f;
  const paramLen = cdb.readUInt32BE(5);
  const data = ctx.dataOut;
  if (paramLen < BASIC_LENGTH || data.length < BASIC_LENGTH) return check('PARAMETER_LIST_LENGTH_ERROR');
  const flags = data[20];
  const specIPt = (flags & SPEC_I_PT) !== 0;
  // §6.16.3: SPEC_I_PT is only valid for REGISTER.
  if (specIPt && sa !== PrOutAction.REGISTER) {
    return check('INVALID_FIELD_IN_PARAMETER_LIST', { inCdb: false, byte: 20, bit: 3 });
  }
  // §6.16.3: without SPEC_I_PT the parameter list is exactly 24 bytes.
  if (!specIPt && paramLen !== BASIC_LENGTH) return check('PARAMETER_LIST_LENGTH_ERROR');
  const needsType =
    sa === PrOutAction.RESERVE || sa === PrOutAction.RELEASE || sa === PrOutAction.PREEMPT || sa === PrOutAction.PREEMPT_AND_ABORT;
  if (needsType) {
    // Only LU_SCOPE exists (§6.16.2); the type must be one of table 172.
    if (scope !== 0) return check('INVALID_FIELD_IN_CDB', { inCdb: true, byte: 2, bit: 7 });
    if (!isValidPrType(type)) return check('INVALID_FIELD_IN_CDB', { inCdb: true, byte: 2, bit: 3 });
  }
  // SPC-2 §5.5.1: a RESERVE(6) held by another nexus blocks PERSISTENT RESERVE OUT.
  if (st.legacyHolder !== null && st.legacyHolder !== ctx.nexus.id) return CONFLICT;

  // ALL_TG_PT is valid only for the register actions and ignored otherwise;
  // APTPL (bit 0) is accepted and ignored: nothing persists across a restart
  // and REPORT CAPABILITIES says so (PTPL_C = 0).
  const req: ProutRequest = {
    st,
    id: ctx.nexus.identity,
    sa,
    scope,
    type,
    key: data.readBigUInt64BE(0),
    sark: data.readBigUInt64BE(8),
    specIPt,
    allTgPt: (flags & ALL_TG_PT) !== 0,
    data: data.subarray(0, Math.min(paramLen, data.length)),
  };
  switch (sa) {
    case PrOutAction.REGISTER:
      return register(req, false);
    case PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY:
      return register(req, true);
    case PrOutAction.RESERVE:
      return reserve(req);
    case PrOutAction.RELEASE:
      return release(req);
    case PrOutAction.CLEAR:
      return clear(req);
    case PrOutAction.PREEMPT:
      return preempt(req, false);
    default:
      return preempt(req, true);
  }
}

/** §5.13.7 / §5.13.11.2: REGISTER and REGISTER AND IGNORE EXISTING KEY. */
function register(req: ProutRequest, ignoreKey: boolean): CommandOutcome {
  const { st, id, key, sark } = req;
  const reg = st.findRegistration(id);
  if (reg) {
    // §6.16.3: SPEC_I_PT from an already registered I_T nexus.
    if (req.specIPt) return check('INVALID_FIELD_IN_CDB');
    if (!ignoreKey && key !== reg.key) return CONFLICT;
    if (sark === 0n) {
      unregister(st, reg);
    } else {
      reg.key = sark;
    }
    st.bumpGeneration();
    return GOOD;
  }
  // Unregistered I_T nexus: a non-zero RESERVATION KEY is a conflict (table 169).
  if (!ignoreKey && key !== 0n) return CONFLICT;
  // Unregistering a nexus that is not registered: nothing to do.
  if (sark === 0n) return GOOD;
  const targetPortId = req.allTgPt ? ALL_TARGET_PORTS : id.targetPortId;
  const self: Registration = {
    key: sark,
    initiatorPortId: id.initiatorPortId,
    targetPortId,
    protocolId: id.protocolId,
    relativeTargetPortId: id.relativeTargetPortId,
  };
  const added = [self];
  if (req.specIPt) {
    const more = specifiedPorts(req, self);
    if (!Array.isArray(more)) return more;
    added.push(...more);
  }
  if (st.registrations.length + added.length > MAX_REGISTRATIONS) return check('INSUFFICIENT_REGISTRATION_RESOURCES');
  st.registrations.push(...added);
  st.bumpGeneration();
  return GOOD;
}

/**
 * §5.13.7 SPEC_I_PT: the TransportIDs after the basic list name more
 * initiator ports to register with the same key on the same target port(s).
 * All or nothing: any bad or already registered TransportID fails the command.
 */
function specifiedPorts(req: ProutRequest, self: Registration): Registration[] | CommandOutcome {
  const { data, st } = req;
  if (data.length < BASIC_LENGTH + 4) return check('PARAMETER_LIST_LENGTH_ERROR');
  const tidLen = data.readUInt32BE(BASIC_LENGTH);
  const end = BASIC_LENGTH + 4 + tidLen;
  if (end > data.length) return check('PARAMETER_LIST_LENGTH_ERROR');
  const out: Registration[] = [];
  let off = BASIC_LENGTH + 4;
  while (off < end) {
    const parsed = parseTransportId(data.subarray(0, end), off);
    if (!parsed.ok) return check('INVALID_FIELD_IN_PARAMETER_LIST', { inCdb: false, byte: parsed.at });
    const candidate: Registration = {
      key: self.key,
      initiatorPortId: parsed.tid.initiatorPortId,
      targetPortId: self.targetPortId,
      protocolId: parsed.tid.protocolId,
      relativeTargetPortId: self.relativeTargetPortId,
    };
    const sameAs = (r: Registration): boolean =>
      r.initiatorPortId.toLowerCase() === candidate.initiatorPortId.toLowerCase() && r.targetPortId === candidate.targetPortId;
    // The sending port itself, or a port named twice: register it once.
    if (!sameAs(self) && !out.some(sameAs)) {
      const probe = { initiatorPortId: candidate.initiatorPortId, targetPortId: req.id.targetPortId };
      if (st.registrations.some((r) => sameAs(r) || prTargetMatches(r, probe))) {
        return check('INVALID_FIELD_IN_PARAMETER_LIST', { inCdb: false, byte: off });
      }
      out.push(candidate);
    }
    off += parsed.length;
  }
  return out;
}

/**
 * §5.13.11.2.3: removing the holder's registration releases a non
 * all-registrants reservation; for registrants-only types every other
 * registrant gets RESERVATIONS RELEASED.
 */
function unregister(st: ReservationState, reg: Registration): void {
  const type = st.reservation?.type ?? 0;
  if (st.removeRegistrations([reg]) && isRegistrantsOnly(type)) {
    st.notify(st.registrations, 'UA_RESERVATIONS_RELEASED');
  }
}

/** Registered nexus whose key matches, or the outcome that refuses the command. */
function registeredCaller(req: ProutRequest): Registration | CommandOutcome {
  const reg = req.st.findRegistration(req.id);
  if (!reg || reg.key !== req.key) return CONFLICT;
  return reg;
}

function isOutcome(x: Registration | CommandOutcome): x is CommandOutcome {
  return 'kind' in x;
}

/** §5.13.9 RESERVE: the generation does not change. */
function reserve(req: ProutRequest): CommandOutcome {
  const { st } = req;
  const reg = registeredCaller(req);
  if (isOutcome(reg)) return reg;
  // An SPC-2 reservation (even our own) and a persistent one do not mix.
  if (st.legacyHolder !== null) return CONFLICT;
  const res = st.reservation;
  if (res) {
    // The holder asking again for the same type and scope: nothing changes.
    if (st.isHolder(reg) && res.type === req.type && res.scope === req.scope) return GOOD;
    return CONFLICT;
  }
  st.reservation = { type: req.type, scope: req.scope, holder: isAllRegistrants(req.type) ? null : reg };
  return GOOD;
}

/** §5.13.11.3 RELEASE. */
function release(req: ProutRequest): CommandOutcome {
  const { st } = req;
  const reg = registeredCaller(req);
  if (isOutcome(reg)) return reg;
  const res = st.reservation;
  // No reservation, or the caller does not hold it: GOOD, nothing changes.
  if (!res || !st.isHolder(reg)) return GOOD;
  if (res.type !== req.type || res.scope !== req.scope) return check('INVALID_RELEASE_OF_PERSISTENT_RESERVATION');
  st.reservation = null;
  // §5.13.11.3: releasing a registrants-only or all-registrants reservation
  // tells every other registrant.
  if (isRegistrantsOnly(res.type) || isAllRegistrants(res.type)) {
    st.notify(
      st.registrations.filter((r) => r !== reg),
      'UA_RESERVATIONS_RELEASED',
    );
  }
  return GOOD;
}

/** §5.13.11.6 CLEAR: every registration and the reservation go. */
function clear(req: ProutRequest): CommandOutcome {
  const { st } = req;
  const reg = registeredCaller(req);
  if (isOutcome(reg)) return reg;
  const others = st.registrations.filter((r) => r !== reg);
  st.registrations.length = 0;
  st.reservation = null;
  st.bumpGeneration();
  st.notify(others, 'UA_RESERVATIONS_PREEMPTED');
  return GOOD;
}

/** §5.13.11.4 PREEMPT and §5.13.11.5 PREEMPT AND ABORT. */
function preempt(req: ProutRequest, abort: boolean): CommandOutcome {
  const { st, sark } = req;
  const reg = registeredCaller(req);
  if (isOutcome(reg)) return reg;
  const res = st.reservation;
  const matching = st.registrations.filter((r) => r.key === sark);
  // The preempting nexus keeps its own registration even when its key matches.
  const victimsByKey = matching.filter((r) => r !== reg);
  let victims: Registration[];
  let released: Registration[] = [];

  if (res && isAllRegistrants(res.type) && sark === 0n) {
    // §5.13.11.4.4: all registrants reservation, key 0: everyone else goes and
    // the preempting nexus gets a new reservation of the requested type.
    victims = st.registrations.filter((r) => r !== reg);
    st.removeRegistrations(victims);
    st.reservation = newReservation(req, reg);
  } else if (res && !isAllRegistrants(res.type) && res.holder !== null && sark === res.holder.key) {
    // §5.13.11.4.3: preempting the holder: its key's registrations go and the
    // preempting nexus holds a reservation of the requested type and scope.
    victims = victimsByKey;
    const changed = res.type !== req.type || res.scope !== req.scope;
    st.removeRegistrations(victims);
    st.reservation = newReservation(req, reg);
    if (changed) released = st.registrations.filter((r) => r !== reg);
  } else {
    // §5.13.11.4.2 / .4.3 / .4.4: only registrations are removed.
    if (sark === 0n) return check('INVALID_FIELD_IN_PARAMETER_LIST', { inCdb: false, byte: 8 });
    if (matching.length === 0) return CONFLICT;
    victims = victimsByKey;
    const type = res?.type ?? 0;
    if (st.removeRegistrations(victims) && isRegistrantsOnly(type)) released = [...st.registrations];
  }
  st.bumpGeneration();
  st.notify(victims, 'UA_REGISTRATIONS_PREEMPTED');
  st.notify(released, 'UA_RESERVATIONS_RELEASED');
  if (abort && victims.length > 0 && st.onAbortNexusTasks) {
    const own = req.id.initiatorPortId.toLowerCase();
    const ports = [...new Set(victims.map((v) => v.initiatorPortId))].filter((p) => p.toLowerCase() !== own);
    if (ports.length > 0) st.onAbortNexusTasks(ports);
  }
  return GOOD;
}

function newReservation(req: ProutRequest, reg: Registration): { type: number; scope: number; holder: Registration | null } {
  return { type: req.type, scope: req.scope, holder: isAllRegistrants(req.type) ? null : reg };
}

const NAMES: Record<number, string> = {
  [PrOutAction.REGISTER]: 'PERSISTENT RESERVE OUT (REGISTER)',
  [PrOutAction.RESERVE]: 'PERSISTENT RESERVE OUT (RESERVE)',
  [PrOutAction.RELEASE]: 'PERSISTENT RESERVE OUT (RELEASE)',
  [PrOutAction.CLEAR]: 'PERSISTENT RESERVE OUT (CLEAR)',
  [PrOutAction.PREEMPT]: 'PERSISTENT RESERVE OUT (PREEMPT)',
  [PrOutAction.PREEMPT_AND_ABORT]: 'PERSISTENT RESERVE OUT (PREEMPT AND ABORT)',
  [PrOutAction.REGISTER_AND_IGNORE_EXISTING_KEY]: 'PERSISTENT RESERVE OUT (REGISTER AND IGNORE EXISTING KEY)',
};

/**
 * One spec per service action; they share the handler, which reads the
 * service action from the CDB. Not exempt from reservations: conflicts()
 * refuses it only under another nexus's RESERVE(6) (SPC-2); persistent
 * reservation rules are applied by the handler (§5.13.11).
 */
export const prOutCommands: CommandSpec[] = Object.values(PrOutAction).map((sa) => ({
  opcode: 0x5f,
  serviceAction: sa,
  name: NAMES[sa],
  cdbLength: 10,
  usage: [0x5f, 0x1f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00],
  direction: 'write' as const,
  transferLength: (cdb: Buffer) => cdb.readUInt32BE(5),
  handler: persistentReserveOut,
}));
