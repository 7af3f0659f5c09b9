// What one iSCSI client (or all of them) can make the target hold: the budgets
// of docs/security.md. The daemon fills them from the `limits.iscsi` section
// (daemon/limits-schema.ts); absent fields keep these defaults. A limit exists
// because a peer on the network can grow the thing it bounds.

import { withDefaults } from '../../util/with-defaults.js';

export interface IscsiLimits {
  /** Connections over all portals, in any phase (login included). */
  maxConnections: number;
  /** Connections from one source address. */
  maxConnectionsPerAddress: number;
  /** Sessions one initiator name may have open at once (normal sessions). */
  maxSessionsPerInitiator: number;
  /** Queued, unsent output bytes above which the connection stops reading. */
  sendHighWaterBytes: number;
  /** Write data (immediate, unsolicited, solicited) one session may hold. */
  sessionWriteBytes: number;
  /** Write data all sessions together may hold. */
  totalWriteBytes: number;
  /** Immediate commands in flight per session; more get Reject 0x06 (RFC 7143 §11.17.1). */
  maxImmediateCommands: number;
  /** ERL >= 1: status and Data-In bytes kept unacknowledged per connection; over it, the connection is dropped. */
  retainedBytesPerConnection: number;
  /** Caps on what DefaultTime2Wait / DefaultTime2Retain can be negotiated to (seconds). */
  maxDefaultTime2Wait: number;
  maxDefaultTime2Retain: number;
  /** Seconds a discovery session may stay idle before it is dropped (0: never). */
  discoveryIdleTimeout: number;
  /** First delay after a failed authentication from an initiator/address (ms); doubles per failure. */
  authFailureDelayMs: number;
  /** Ceiling of that delay (ms). */
  authFailureMaxDelayMs: number;
}

export const DEFAULT_ISCSI_LIMITS: Readonly<IscsiLimits> = Object.freeze({
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
  maxSessionsPerInitiator: 64,
  sendHighWaterBytes: 4 << 20,
  sessionWriteBytes: 256 << 20,
  totalWriteBytes: 1024 << 20,
  maxImmediateCommands: 64,
  retainedBytesPerConnection: 256 << 20,
  maxDefaultTime2Wait: 60,
  maxDefaultTime2Retain: 120,
  discoveryIdleTimeout: 60,
  authFailureDelayMs: 500,
  authFailureMaxDelayMs: 30_000,
});

/** Defaults, overridden by the fields `partial` sets. */
export function iscsiLimits(partial?: Partial<IscsiLimits>): IscsiLimits {
  return withDefaults(DEFAULT_ISCSI_LIMITS, partial);
}
