// What NBD clients can make the server hold (docs/security.md). The daemon
// fills these from `limits.nbd` (daemon/limits-schema.ts); absent fields keep
// the defaults.

import { withDefaults } from '../../util/with-defaults.js';

export interface NbdLimits {
  /** Connections over all listeners, handshake included. */
  maxConnections: number;
  /** Connections from one source address (Unix socket clients count as one address). */
  maxConnectionsPerAddress: number;
  /** Seconds from accept to the end of option haggling (nbdkit --timeout). */
  handshakeTimeout: number;
  /** Seconds without a request in transmission before the connection is closed (0: never). */
  idleTimeout: number;
  /** Options one client may send during the handshake. */
  maxOptions: number;
  /** Queued, unsent output bytes above which the connection stops reading. */
  sendHighWaterBytes: number;
  /** Payload bytes (write data received plus read replies not yet sent) one connection may hold. */
  inFlightBytes: number;
}

export const DEFAULT_NBD_LIMITS: Readonly<NbdLimits> = Object.freeze({
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
  handshakeTimeout: 30,
  idleTimeout: 0,
  maxOptions: 64,
  sendHighWaterBytes: 4 << 20,
  inFlightBytes: 128 << 20,
});

export function nbdLimits(partial?: Partial<NbdLimits>): NbdLimits {
  return withDefaults(DEFAULT_NBD_LIMITS, partial);
}
