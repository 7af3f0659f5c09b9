// The connections of one MC/S session (RFC 7143 §4.2.2.x, §6.3): which one a
// new command goes to (least loaded, ties in turn), CID allocation, and the
// plain-JSON view `lunkit sessions --initiator` prints. Picking is pure so it
// is tested without sockets.

import { IscsiInitiatorError } from './errors.js';

/** Life cycle of a connection inside a session. */
export type ConnectionState =
  /** Full feature phase, takes new commands. */
  | 'active'
  /** Being removed (Logout reason 1): no new commands, its tasks finish. */
  | 'draining'
  /** Died unexpectedly; its tasks wait for connection recovery (ERL 2). */
  | 'failed'
  /** Gone for good (logged out, or recovered and replaced). */
  | 'closed';

/** What the picker needs to know about a connection. */
export interface Pickable {
  state: ConnectionState;
  /** Tasks allegiant to it and not finished. */
  inFlight: number;
}

/**
 * The index of the active connection with the fewest tasks in flight, or -1
 * if none is active. Ties go to the first one at or after `cursor` (so equal
 * loads rotate instead of piling onto connection 0).
 */
export function pickLeastLoaded(conns: readonly Pickable[], cursor = 0): number {
  const n = conns.length;
  let best = -1;
  for (let k = 0; k < n; k++) {
    const i = (cursor + k) % n;
    const c = conns[i];
    if (c.state !== 'active') continue;
    if (best === -1 || c.inFlight < conns[best].inFlight) best = i;
  }
  return best;
}

/**
 * How far (in load units, see commandLoad) the connection that took the
 * last command may run ahead of the least-loaded one and still take the
 * next. Small commands then go out in runs on one connection: the commands
 * a batch of completions starts leave in one writev, the target reads them
 * with one read and answers with one writev, and no command waits at the
 * target for a lower CmdSN still unread on another socket (§3.2.2.1
 * ordering is session-wide). Alternating every 4 KiB read over the sockets
 * doubled the target's syscalls per command with 4 connections (0.20 ->
 * 0.40 under strace) and held 1.6-5% of the commands for a lower CmdSN.
 * Commands larger than the slack (1 MiB reads and writes) still alternate
 * as plain least-loaded picking would.
 */
export const STICKY_SLACK = 64 * 1024;

/** What one command weighs in the picker: its data bytes plus a fixed cost, so commands without data count too. */
export function commandLoad(dataBytes: number): number {
  return dataBytes + 512;
}

/** What the sticky picker needs to know about a connection. */
export interface LoadPickable extends Pickable {
  /** Sum of commandLoad() over its tasks in flight. */
  load: number;
}

/**
 * The connection for the next command: `last` (the one that took the
 * previous command) while it is active and at most `slack` above the least
 * loaded active one, else the least loaded by `load` (ties: fewer tasks,
 * then the first at or after `cursor`). -1 if none is active.
 */
export function pickSticky(conns: readonly LoadPickable[], last: number, cursor = 0, slack = STICKY_SLACK): number {
  const n = conns.length;
  let best = -1;
  for (let k = 0; k < n; k++) {
    const i = (cursor + k) % n;
    const c = conns[i];
    if (c.state !== 'active') continue;
    if (best === -1) {
      best = i;
      continue;
    }
    const b = conns[best];
    if (c.load < b.load || (c.load === b.load && c.inFlight < b.inFlight)) best = i;
  }
  if (best === -1) return -1;
  const l = last >= 0 && last < n ? conns[last] : undefined;
  if (l !== undefined && l.state === 'active' && l.load <= conns[best].load + slack) return last;
  return best;
}

/** The lowest CID (16 bits, §11.12.7) not used by `inUse`, starting the search at `from`. */
export function allocateCid(inUse: ReadonlySet<number>, from: number): number {
  for (let k = 0; k < 0x10000; k++) {
    const cid = (from + k) & 0xffff;
    if (!inUse.has(cid)) return cid;
  }
  throw new IscsiInitiatorError('ERR_ISCSI_MAX_CONNECTIONS', 'no free connection ID');
}

/** One connection as `session.connections` and `session.info()` show it. */
export interface ConnectionInfo {
  cid: number;
  state: ConnectionState;
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteAddress: string;
  remotePort: number;
  /** SCSI tasks allegiant to this connection and not finished. */
  inFlight: number;
  /** Next StatSN expected on it (§4.2.2.2: StatSN is per connection). */
  expStatSN: number;
  headerDigest: boolean;
  dataDigest: boolean;
}

/** `session.info()`: plain JSON for the CLI and the control socket. */
export interface SessionInfo {
  targetName: string | undefined;
  portal: string;
  tsih: number;
  /** ISID as 12 hex digits. */
  isid: string;
  sessionType: 'Normal' | 'Discovery';
  errorRecoveryLevel: number;
  state: 'open' | 'recovering' | 'closed';
  /** Session reinstatements (ERL 0 recovery) so far. */
  reinstatements: number;
  /** Connection recoveries (ERL 2) so far. */
  connectionRecoveries: number;
  inFlight: number;
  cmdSN: number;
  expCmdSN: number;
  maxCmdSN: number;
  connections: ConnectionInfo[];
  params: Record<string, string | number | boolean>;
}
