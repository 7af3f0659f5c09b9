// Statistics of the iSCSI target fabric (issue 6): logins and logouts,
// Rejects by reason (RFC 7143 §11.17.1), header and data digest errors
// (§13.1), bytes and PDUs per connection and session. Events go out on
// lunkit:iscsi:* diagnostics channels (core/stats.ts StatsEvent).
//
// Cost: bytes come from the socket's own bytesRead/bytesWritten, read only
// when a snapshot is taken; PDU counts are one increment on the connection;
// everything else counts rare events. Counters of closed connections and
// sessions are folded into the server totals so they only ever grow (what a
// Prometheus counter needs).

import { publishEvent, statsChannel } from '../../core/stats.js';
import { rejectReasonName } from '../../protocols/iscsi/constants.js';
import type { IscsiTargetConfig } from './config.js';
import type { SessionParams } from './session-params.js';

function isidHex(isid: number): string {
  return isid.toString(16).padStart(12, '0');
}

export const IscsiChannel = {
  LOGIN: 'lunkit:iscsi:login',
  LOGIN_FAILED: 'lunkit:iscsi:login-failed',
  LOGOUT: 'lunkit:iscsi:logout',
  SESSION_CLOSED: 'lunkit:iscsi:session-closed',
  REJECT: 'lunkit:iscsi:reject',
  DIGEST_ERROR: 'lunkit:iscsi:digest-error',
} as const;

const loginChannel = statsChannel(IscsiChannel.LOGIN);
const loginFailedChannel = statsChannel(IscsiChannel.LOGIN_FAILED);
const logoutChannel = statsChannel(IscsiChannel.LOGOUT);
const sessionClosedChannel = statsChannel(IscsiChannel.SESSION_CLOSED);
const rejectChannel = statsChannel(IscsiChannel.REJECT);
const digestChannel = statsChannel(IscsiChannel.DIGEST_ERROR);

/** Transfer counters of one connection, session or the whole server. */
export interface TransferCounters {
  /** Bytes received from / sent to initiators (TCP payload, digests included). */
  bytesIn: number;
  bytesOut: number;
  pdusIn: number;
  pdusOut: number;
}

/** Error counters kept per session and for the server. */
export interface ErrorCounters {
  /** Rejects sent, by reason name (DATA_DIGEST_ERROR, PROTOCOL_ERROR ...). */
  rejects: Record<string, number>;
  headerDigestErrors: number;
  dataDigestErrors: number;
}

/** Mutable counters a session carries (IscsiSession.stats). */
export class SessionCounters implements TransferCounters, ErrorCounters {
  bytesIn = 0;
  bytesOut = 0;
  pdusIn = 0;
  pdusOut = 0;
  rejects: Record<string, number> = {};
  headerDigestErrors = 0;
  dataDigestErrors = 0;
}

/** A session as the counters see it (IscsiSession). */
export interface StatsSession {
  readonly tsih: number;
  readonly isid: number;
  readonly initiatorName: string;
  readonly targetName: string;
  readonly tpgt: number;
  readonly type: 'normal' | 'discovery';
  readonly nexus: { readonly id: number } | undefined;
  readonly loginTime: number;
  readonly params: Pick<SessionParams, 'errorRecoveryLevel' | 'headerDigest' | 'dataDigest' | 'maxConnections'>;
  readonly window: { readonly inFlight: number };
  readonly stats: SessionCounters;
  /** Write data bytes held now (write-budget.ts). */
  readonly writeBytesHeld: number;
  /** Immediate SCSI commands in flight. */
  readonly immediateInFlight: number;
}

/** A connection as the counters see it (IscsiConnection). */
export interface StatsConnection {
  readonly id: number;
  readonly cid: number;
  readonly remote: string;
  readonly local: string;
  readonly stage: string;
  readonly headerDigest: boolean;
  readonly dataDigest: boolean;
  readonly pdusIn: number;
  readonly pdusOut: number;
  readonly socket: { readonly bytesRead: number; readonly bytesWritten: number };
  readonly session: StatsSession | undefined;
  /** ERL >= 1: status and read data kept until acknowledged. */
  readonly retainedBytes: number;
  readonly readPaused: boolean;
  readonly readPauses: { readonly send: number; readonly budget: number };
}

/** Budget usage (issue 17, docs/security.md): what clients make the target hold now. */
export interface HeldCounters {
  /** Write data bytes held (immediate, unsolicited, solicited). */
  writeBytesHeld: number;
  /** Immediate SCSI commands in flight. */
  immediateInFlight: number;
  /** ERL >= 1: bytes kept until ExpStatSN acknowledges them. */
  retainedBytes: number;
  /** Times reading stopped because queued output was over sendHighWaterBytes. */
  readPausesBackpressure: number;
  /** Times reading stopped because write data was over its budget. */
  readPausesBudget: number;
}

export interface IscsiConnectionStats extends TransferCounters {
  retainedBytes: number;
  /** Reading is stopped now (backpressure or budget). */
  readPaused: boolean;
  readPausesBackpressure: number;
  readPausesBudget: number;
  id: number;
  cid: number;
  remote: string;
  local: string;
  stage: string;
  headerDigest: boolean;
  dataDigest: boolean;
}

export interface IscsiSessionStats extends TransferCounters, ErrorCounters, HeldCounters {
  tsih: number;
  /** 12 hex digits. */
  isid: string;
  initiatorName: string;
  targetName: string;
  tpgt: number;
  type: 'normal' | 'discovery';
  /** The core nexus of a normal session (join with CoreStatsSnapshot.nexuses). */
  nexusId: number | null;
  loginTime: number;
  errorRecoveryLevel: number;
  headerDigest: boolean;
  dataDigest: boolean;
  maxConnections: number;
  /** Commands the CmdSN window holds (received, not yet answered). */
  cmdsInFlight: number;
  connections: IscsiConnectionStats[];
}

export interface IscsiTotals extends TransferCounters, ErrorCounters, HeldCounters {
  /** Connections dropped for going over retainedBytesPerConnection. */
  retentionDrops: number;
  loginsOk: number;
  loginsFailed: number;
  logouts: number;
  /** Open now. */
  sessions: number;
  connections: number;
}

/** The object tree of the fabric: targets, TPGs, portals (bound ports), LUNs. */
export interface IscsiTargetTree {
  iqn: string;
  alias: string | null;
  tpgs: Array<{
    tag: number;
    enabled: boolean;
    portals: Array<{ host: string; port: number }>;
    luns: Array<{ lun: number; device: string }>;
    acls: string[];
    generateNodeAcls: boolean;
    authentication: boolean;
  }>;
}

export interface IscsiStatsSnapshot {
  targets: IscsiTargetTree[];
  sessions: IscsiSessionStats[];
  totals: IscsiTotals;
}

function addReject(into: Record<string, number>, name: string): void {
  into[name] = (into[name] ?? 0) + 1;
}

/** Server-wide counters; one per IscsiTargetServer, reached through AcceptingServer.stats. */
export class IscsiFabricStats {
  loginsOk = 0;
  loginsFailed = 0;
  logouts = 0;
  /** Read pauses since start, by reason (connection.ts). */
  readPausesBackpressure = 0;
  readPausesBudget = 0;
  retentionDrops = 0;
  readonly errors = new SessionCounters();
  /** Transfer counters of connections that have closed. */
  private readonly closed = new SessionCounters();

  loginOk(conn: Pick<StatsConnection, 'remote' | 'cid'>, session: StatsSession): void {
    this.loginsOk++;
    publishEvent(
      loginChannel,
      'info',
      () =>
        `login ${session.initiatorName} -> ${session.targetName || '(discovery)'} from ${conn.remote} tsih ${session.tsih}` +
        (session.params.headerDigest || session.params.dataDigest ? ' (digests)' : ''),
      () => ({
        initiator: session.initiatorName,
        target: session.targetName,
        type: session.type,
        tsih: session.tsih,
        isid: isidHex(session.isid),
        remote: conn.remote,
        cid: conn.cid,
        headerDigest: session.params.headerDigest,
        dataDigest: session.params.dataDigest,
      }),
    );
  }

  loginFailed(conn: Pick<StatsConnection, 'remote'>, initiator: string, statusClass: number, statusDetail: number, why: string): void {
    this.loginsFailed++;
    publishEvent(
      loginFailedChannel,
      'warn',
      () => `login failed from ${conn.remote}${initiator ? ` (${initiator})` : ''}: ${why}`,
      () => ({ initiator: initiator || null, remote: conn.remote, statusClass, statusDetail, why }),
    );
  }

  logout(conn: Pick<StatsConnection, 'remote'>, session: StatsSession, reasonCode: number): void {
    this.logouts++;
    publishEvent(
      logoutChannel,
      'info',
      () => `logout ${session.initiatorName} tsih ${session.tsih} from ${conn.remote}`,
      () => ({ initiator: session.initiatorName, target: session.targetName, tsih: session.tsih, remote: conn.remote, reasonCode }),
    );
  }

  sessionClosed(session: StatsSession, reason: string): void {
    publishEvent(
      sessionClosedChannel,
      reason === 'logout' ? 'info' : 'warn',
      () => `session ${session.initiatorName} tsih ${session.tsih} ended: ${reason}`,
      () => ({ initiator: session.initiatorName, target: session.targetName, tsih: session.tsih, reason }),
    );
  }

  reject(conn: Pick<StatsConnection, 'remote' | 'session'>, reason: number): void {
    const name = rejectReasonName(reason);
    addReject(this.errors.rejects, name);
    if (conn.session) addReject(conn.session.stats.rejects, name);
    publishEvent(
      rejectChannel,
      'warn',
      () => `Reject ${name} to ${conn.remote}`,
      () => ({ reason: name, code: reason, remote: conn.remote, tsih: conn.session?.tsih ?? null }),
    );
  }

  digestError(conn: Pick<StatsConnection, 'remote' | 'session'>, kind: 'header' | 'data'): void {
    if (kind === 'header') {
      this.errors.headerDigestErrors++;
      if (conn.session) conn.session.stats.headerDigestErrors++;
    } else {
      this.errors.dataDigestErrors++;
      if (conn.session) conn.session.stats.dataDigestErrors++;
    }
    publishEvent(
      digestChannel,
      'error',
      () => `${kind} digest error from ${conn.remote}`,
      () => ({ kind, remote: conn.remote, tsih: conn.session?.tsih ?? null }),
    );
  }

  /** A connection stopped reading (backpressure or write budget). */
  readPaused(why: 'send' | 'budget'): void {
    if (why === 'send') this.readPausesBackpressure++;
    else this.readPausesBudget++;
  }

  /** A connection was dropped for unacknowledged status over its budget. */
  retentionDrop(): void {
    this.retentionDrops++;
  }

  /** A connection closed: keep its transfer counts in its session's and the server's totals. */
  connectionClosed(conn: StatsConnection): void {
    const t = connectionTransfer(conn);
    addTransfer(this.closed, t);
    if (conn.session) addTransfer(conn.session.stats, t);
  }

  /** Snapshot of sessions and totals from the live objects. */
  snapshot(sessions: readonly StatsSession[], connections: Iterable<StatsConnection>, targets: IscsiTargetTree[]): IscsiStatsSnapshot {
    const live = new Map<StatsSession | undefined, StatsConnection[]>();
    for (const c of connections) {
      if (c.stage === 'closed') continue;
      const list = live.get(c.session);
      if (list) list.push(c);
      else live.set(c.session, [c]);
    }
    const totals: IscsiTotals = {
      loginsOk: this.loginsOk,
      loginsFailed: this.loginsFailed,
      logouts: this.logouts,
      sessions: sessions.length,
      connections: 0,
      bytesIn: this.closed.bytesIn,
      bytesOut: this.closed.bytesOut,
      pdusIn: this.closed.pdusIn,
      pdusOut: this.closed.pdusOut,
      rejects: { ...this.errors.rejects },
      headerDigestErrors: this.errors.headerDigestErrors,
      dataDigestErrors: this.errors.dataDigestErrors,
      writeBytesHeld: 0,
      immediateInFlight: 0,
      retainedBytes: 0,
      readPausesBackpressure: this.readPausesBackpressure,
      readPausesBudget: this.readPausesBudget,
      retentionDrops: this.retentionDrops,
    };
    for (const list of live.values()) {
      for (const c of list) {
        totals.connections++;
        totals.retainedBytes += c.retainedBytes;
        addTransfer(totals, connectionTransfer(c));
      }
    }
    for (const s of sessions) {
      totals.writeBytesHeld += s.writeBytesHeld;
      totals.immediateInFlight += s.immediateInFlight;
    }
    const out: IscsiSessionStats[] = sessions.map((s) => {
      const conns = (live.get(s) ?? []).map(connectionStats);
      const st: IscsiSessionStats = {
        tsih: s.tsih,
        isid: isidHex(s.isid),
        initiatorName: s.initiatorName,
        targetName: s.targetName,
        tpgt: s.tpgt,
        type: s.type,
        nexusId: s.nexus?.id ?? null,
        loginTime: s.loginTime,
        errorRecoveryLevel: s.params.errorRecoveryLevel,
        headerDigest: s.params.headerDigest,
        dataDigest: s.params.dataDigest,
        maxConnections: s.params.maxConnections,
        cmdsInFlight: s.window.inFlight,
        connections: conns,
        bytesIn: s.stats.bytesIn,
        bytesOut: s.stats.bytesOut,
        pdusIn: s.stats.pdusIn,
        pdusOut: s.stats.pdusOut,
        rejects: { ...s.stats.rejects },
        headerDigestErrors: s.stats.headerDigestErrors,
        dataDigestErrors: s.stats.dataDigestErrors,
        writeBytesHeld: s.writeBytesHeld,
        immediateInFlight: s.immediateInFlight,
        retainedBytes: 0,
        readPausesBackpressure: 0,
        readPausesBudget: 0,
      };
      for (const c of conns) {
        addTransfer(st, c);
        st.retainedBytes += c.retainedBytes;
        st.readPausesBackpressure += c.readPausesBackpressure;
        st.readPausesBudget += c.readPausesBudget;
      }
      return st;
    });
    return { targets, sessions: out, totals };
  }
}

function connectionTransfer(c: StatsConnection): TransferCounters {
  return { bytesIn: c.socket.bytesRead, bytesOut: c.socket.bytesWritten, pdusIn: c.pdusIn, pdusOut: c.pdusOut };
}

function connectionStats(c: StatsConnection): IscsiConnectionStats {
  return {
    id: c.id,
    cid: c.cid,
    remote: c.remote,
    local: c.local,
    stage: c.stage,
    headerDigest: c.headerDigest,
    dataDigest: c.dataDigest,
    retainedBytes: c.retainedBytes,
    readPaused: c.readPaused,
    readPausesBackpressure: c.readPauses.send,
    readPausesBudget: c.readPauses.budget,
    ...connectionTransfer(c),
  };
}

function addTransfer(into: TransferCounters, t: TransferCounters): void {
  into.bytesIn += t.bytesIn;
  into.bytesOut += t.bytesOut;
  into.pdusIn += t.pdusIn;
  into.pdusOut += t.pdusOut;
}

/** The fabric's configuration as a plain tree (device handles become their names). */
export function targetTree(cfg: IscsiTargetConfig, bound: Array<{ tag: number; host: string; port: number }>): IscsiTargetTree {
  return {
    iqn: cfg.iqn,
    alias: cfg.alias ?? null,
    tpgs: cfg.tpgs.map((t) => {
      const ports = bound.filter((b) => b.tag === t.tag).map((b) => ({ host: b.host, port: b.port }));
      return {
        tag: t.tag,
        enabled: t.enabled,
        portals: ports.length > 0 ? ports : t.portals.map((p) => ({ host: p.host, port: p.port })),
        luns: t.luns.map((l) => ({ lun: l.lun, device: l.device.name })).sort((a, b) => a.lun - b.lun),
        acls: t.acls.map((a) => a.initiator),
        generateNodeAcls: t.attributes.generateNodeAcls,
        authentication: t.attributes.authentication,
      };
    }),
  };
}
