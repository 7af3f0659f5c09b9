// The server that accepted a connection, as the connection sees it: the SCSI
// core, the session registry, target lookup and SendTargets, per-portal
// timing, counters. An interface (IscsiTargetServer builds one) so that the
// connection, login and full feature code need neither the server class nor
// sockets in unit tests.

import type { FabricOps } from '../../core/types.js';
import type { DiscoveryAuth, IscsiCore, IscsiLogger, IscsiTargetConfig, TpgConfig } from './config.js';
import type { IscsiSession, SessionRegistry } from './session.js';
import type { IscsiFabricStats } from './stats.js';
import type { IscsiLimits } from './limits.js';

export interface ResolvedTarget {
  target: IscsiTargetConfig;
  tpg: TpgConfig;
}

/** A refused new session: the Login status to answer with (RFC 7143 §11.13.5) and why. */
export interface SessionRefusal {
  status: { statusClass: number; statusDetail: number };
  why: string;
}

/**
 * What the login phase asks the server before letting a login go on
 * (IscsiTargetServer: the per-initiator session cap, CHAP throttling, and the
 * rate-limited log of failed logins). `remote` is the connection's "address:port".
 */
export interface LoginGate {
  /** A new normal session of `initiator` (ISID `isid`) over the cap, or undefined. Reinstating the same ISID does not count. */
  refuseSession(initiator: string, isid: number, remote: string): SessionRefusal | undefined;
  /** Milliseconds to wait before checking this CHAP response (auth-throttle.ts); takes the address's next slot. */
  chapDelayMs(initiator: string, remote: string): number;
  /** The outcome of a CHAP response check. */
  chapResult(initiator: string, remote: string, ok: boolean): void;
  /** Log a failed login, at most a line or two per interval whatever the rate. */
  loginFailed(fields: Record<string, unknown>): void;
}

export interface AcceptingServer {
  readonly core: IscsiCore;
  readonly log: IscsiLogger;
  readonly sessions: SessionRegistry;
  /** Discovery session authentication in force now (it may change live). */
  discoveryAuth(): DiscoveryAuth | undefined;
  readonly fabric: FabricOps;
  /** Fabric counters and events (stats.ts). */
  readonly stats: IscsiFabricStats;
  /**
   * The target and the TPG that serves it on this portal. 'not-found': no such
   * target, or it has no enabled TPG on this portal.
   */
  resolveTarget(name: string, portalKey: string): ResolvedTarget | 'not-found';
  /** SendTargets answer (RFC 7143 §12.3, Appendix C) as key/value pairs. */
  sendTargets(initiator: string, which: string, portalKey: string): Array<[string, string]>;
  /** Login timeout in seconds for connections on this portal. */
  loginTimeoutFor(portalKey: string): number;
  /** Target-initiated NOP-In timing for a session, in seconds. */
  nopTimingFor(session: IscsiSession): { interval: number; timeout: number };
  /** Budgets in force now (limits.ts); setLimits() may replace them while connections run. */
  limits(): IscsiLimits;
  /** Admission checks during login; absent (unit tests): none. */
  readonly loginGate?: LoginGate;
}
