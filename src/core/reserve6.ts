// RESERVE(6) and RELEASE(6) (SPC-2 §7.21, §7.17): the old whole-LU
// reservation, held by one I_T nexus until it releases, the nexus goes away
// (logout, connection loss) or a LUN/target reset happens.
//
// With persistent reservations present, SPC-4 §5.13.3 (CRH = 1, reported in
// REPORT CAPABILITIES) applies: a RESERVE or RELEASE from a persistent
// reservation holder, or from any registrant under a registrants-only or
// all-registrants reservation, completes with GOOD and changes nothing;
// anything else is processed as SPC-2 says, where the persistent reservation
// counts as a reservation held by someone else.

import type { CommandContext, CommandOutcome, CommandSpec } from './command.js';
import { isAllRegistrants, isRegistrantsOnly, reservationStateOf, type ReservationState } from './pr-state.js';

/** §5.13.3 a)/b): the caller is covered by the persistent reservation. */
function coveredByPersistentReservation(st: ReservationState, ctx: CommandContext): boolean {
  const res = st.reservation;
  if (!res) return false;
  const reg = st.findRegistration(ctx.nexus.identity);
  if (!reg) return false;
  return st.isHolder(reg) || isRegistrantsOnly(res.type) || isAllRegistrants(res.type);
}

function reserve6(ctx: CommandContext): CommandOutcome {
  const st = reservationStateOf(ctx);
  if (!st) return { kind: 'check', reason: 'INTERNAL_TARGET_FAILURE' };
  if (st.reservation) {
    return coveredByPersistentReservation(st, ctx) ? { kind: 'good' } : { kind: 'reservation-conflict' };
  }
  // SPC-2 §7.21: reserving again from the holder is GOOD; from anyone else a conflict.
  if (st.legacyHolder !== null && st.legacyHolder !== ctx.nexus.id) return { kind: 'reservation-conflict' };
  st.legacyHolder = ctx.nexus.id;
  return { kind: 'good' };
}

function release6(ctx: CommandContext): CommandOutcome {
  const st = reservationStateOf(ctx);
  if (!st) return { kind: 'check', reason: 'INTERNAL_TARGET_FAILURE' };
  // SPC-2 §7.17: a RELEASE from a nexus that holds no reservation is GOOD
  // and releases nothing; §5.13.3 makes the same true under a persistent one.
  if (st.legacyHolder === ctx.nexus.id) st.legacyHolder = null;
  return { kind: 'good' };
}

export const reserve6Commands: CommandSpec[] = [
  {
    opcode: 0x16,
    name: 'RESERVE(6)',
    cdbLength: 6,
    usage: [0x16, 0x00, 0x00, 0x00, 0x00, 0x00],
    direction: 'none',
    transferLength: () => 0,
    // conflicts() refuses it under another nexus's RESERVE(6); the handler
    // applies §5.13.3 under a persistent reservation.
    handler: reserve6,
  },
  {
    opcode: 0x17,
    name: 'RELEASE(6)',
    cdbLength: 6,
    usage: [0x17, 0x00, 0x00, 0x00, 0x00, 0x00],
    direction: 'none',
    transferLength: () => 0,
    reservationExempt: true,
    handler: release6,
  },
];
