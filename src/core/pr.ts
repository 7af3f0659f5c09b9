// Reservations (SPC-4 §5.13 persistent reservations, SPC-2 RESERVE(6) and
// RELEASE(6)): the public door. device.ts creates one ReservationState per
// logical unit; the dispatch table takes prCommands.
//
// State and conflict rules: pr-state.ts. PERSISTENT RESERVE IN: pr-in.ts.
// PERSISTENT RESERVE OUT: pr-out.ts. RESERVE(6)/RELEASE(6): reserve6.ts.
// iSCSI TransportIDs: pr-transport-id.ts.

import type { CommandSpec } from './command.js';
import { prInCommands } from './pr-in.js';
import { prOutCommands } from './pr-out.js';
import { reserve6Commands } from './reserve6.js';

export {
  ReservationState,
  PrType,
  prTargetMatches,
  accessClass,
  ALL_TARGET_PORTS,
  MAX_REGISTRATIONS,
  type ReservationEvents,
  type PrNexusTarget,
  type Registration,
  type PersistentReservation,
} from './pr-state.js';

/** PERSISTENT RESERVE IN/OUT, RESERVE(6) and RELEASE(6), for the dispatch table. */
export const prCommands: CommandSpec[] = [...prInCommands, ...prOutCommands, ...reserve6Commands];
