// iSCSI sessions (RFC 7143 §4.4, §6.3.5): identified by the initiator name +
// ISID + target portal group, and by the TSIH the target assigns. A new
// leading login with TSIH 0 and the ISID of a live session reinstates it: the
// old session's tasks are aborted and its connections dropped first.

import type { NexusHandle } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import type { IscsiCore, TpgConfig } from './config.js';
import { CmdSnWindow } from './cmdsn.js';
import type { SessionLunMap } from './acl.js';
import type { SessionParams } from './session-params.js';
import { SessionCounters } from './stats.js';
import { ConnectionRecovery } from './recovery.js';
import type { SessionConnection, TaskTable, TaskWhere } from './hosts.js';
import { SessionWriteBudget, type ServerWriteBudget } from './write-budget.js';

/** A session as plain JSON (the control socket returns it as is). */
export interface SessionInfo {
  tsih: number;
  isid: string;
  initiatorName: string;
  targetName: string;
  tpgt: number;
  type: 'normal' | 'discovery';
  connections: { cid: number; remote: string; local: string }[];
  cmdsInFlight: number;
  expCmdSN: number;
  maxCmdSN: number;
  /** When the leading login completed, ms since the epoch. */
  loginTime: number;
  /** Operational parameters negotiated at login (RFC 7143 §13). */
  params: SessionParams;
  /** LUN numbers the session sees now (empty for discovery sessions). */
  luns: number[];
}

export interface SessionInit {
  tsih: number;
  isid: number;
  initiatorName: string;
  targetName: string;
  tpgt: number;
  tpg: TpgConfig | undefined;
  type: 'normal' | 'discovery';
  params: SessionParams;
  initialCmdSN: number;
  cmdsnDepth: number;
}

/** A queued or delivered request of the session that the CmdSN window orders. */
export type Deliverable = () => void;

export class IscsiSession {
  readonly tsih: number;
  readonly isid: number;
  readonly initiatorName: string;
  readonly targetName: string;
  readonly tpgt: number;
  /** The TPG configuration in force; the server swaps it on live changes. */
  tpg: TpgConfig | undefined;
  readonly type: 'normal' | 'discovery';
  readonly params: SessionParams;
  readonly window: CmdSnWindow<Deliverable>;
  readonly loginTime = Date.now();
  nexus: NexusHandle | undefined;
  /** What the nexus sees (normal sessions); replaced on live changes. */
  luns: SessionLunMap | undefined;
  readonly connections = new Set<SessionConnection>();
  closed = false;
  /** Why the session ended (set by close()). */
  closeReason: string | undefined;
  /** Rejects, digest errors, and transfer counts of its closed connections (stats.ts). */
  readonly stats = new SessionCounters();
  /** Hooks run once when the session ends (abort tasks, close the nexus...). */
  private readonly closers: Array<() => void> = [];
  /** ERL 2 only: tasks of failed connections waiting for TASK REASSIGN (recovery.ts). */
  readonly recovery: ConnectionRecovery | undefined;
  /** Write data this session holds, and its commands waiting for budget (write-budget.ts); set by its first connection. */
  private writeBudgetOf: SessionWriteBudget | undefined;
  /** Immediate SCSI commands received and not yet answered (limits.maxImmediateCommands). */
  immediateInFlight = 0;

  constructor(init: SessionInit) {
    this.tsih = init.tsih;
    this.isid = init.isid;
    this.initiatorName = init.initiatorName;
    this.targetName = init.targetName;
    this.tpgt = init.tpgt;
    this.tpg = init.tpg;
    this.type = init.type;
    this.params = init.params;
    this.window = new CmdSnWindow<Deliverable>(init.initialCmdSN, init.cmdsnDepth);
    if (init.params.errorRecoveryLevel >= 2 && init.type === 'normal') {
      this.recovery = new ConnectionRecovery(init.params.defaultTime2Wait + init.params.defaultTime2Retain, (table) => {
        // §6.2.2: Time2Retain ran out: abort what is left, free it all.
        table.expireRetained();
        this.endIfIdle('connection recovery timed out');
      });
    }
  }

  /** The session's write budget, tied to the server's on first use. */
  writeBudget(server: ServerWriteBudget): SessionWriteBudget {
    this.writeBudgetOf ??= new SessionWriteBudget(server);
    return this.writeBudgetOf;
  }

  /** Write data bytes the session holds now. */
  get writeBytesHeld(): number {
    return this.writeBudgetOf?.ledger.held ?? 0;
  }

  get errorRecoveryLevel(): number {
    return this.params.errorRecoveryLevel;
  }

  /** Where the task with this ITT lives: a live connection, a failed one (ERL 2), or nowhere. */
  findTask(itt: number): TaskWhere {
    for (const c of this.connections) {
      const table = c.fullFeature;
      const task = table?.task(itt);
      if (table && task) return { kind: 'live', table, task };
    }
    return this.recovery?.find(itt) ?? { kind: 'none' };
  }

  /** The task tables of every connection of the session, live and held for recovery (TMFs on a LUN act on all). */
  *allTaskTables(): Iterable<TaskTable> {
    for (const c of this.connections) if (c.fullFeature) yield c.fullFeature;
    if (this.recovery) yield* this.recovery.tables();
  }

  /**
   * A connection of this session went away without a Logout. At ERL 2 its
   * tasks are held for recovery (true); otherwise the caller aborts them.
   */
  connectionFailed(cid: number, tasks: TaskTable): boolean {
    if (!this.recovery || this.closed) return false;
    this.recovery.retain(cid, tasks);
    return true;
  }

  /** A Login with the CID of a connection of ours (§6.3.4): its held tasks may be reassigned. */
  connectionReinstated(cid: number): void {
    this.recovery?.release(cid);
  }

  /** End the session when no connection is left and nothing is held for recovery (§6.2.2). */
  endIfIdle(reason: string): void {
    if (this.connections.size === 0 && (this.recovery?.count ?? 0) === 0) this.close(reason);
  }

  /** Session key used for reinstatement (RFC 7143 §4.4.3: ISID + initiator + target portal group). */
  get key(): string {
    // Built once: the registry asks for it at login, lookups and removal, and
    // every part of it is readonly.
    return (this.cachedKey ??= sessionKey(this.initiatorName, this.isid, this.targetName, this.tpgt));
  }
  private cachedKey: string | undefined;

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closers.push(fn);
  }

  /** End the session: run close hooks, drop every connection. Idempotent. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const fn of this.closers.splice(0)) {
      try {
        fn();
      } catch {
        // A failing hook must not keep the rest of the session alive.
      }
    }
    for (const c of [...this.connections]) c.destroy(reason);
    this.connections.clear();
    // Tasks held for connection recovery end with the nexus (SAM-5: aborted).
    if (this.recovery) for (const table of this.recovery.close()) table.connectionClosed(true);
    this.window.clear();
    this.writeBudgetOf?.close();
  }

  info(): SessionInfo {
    return {
      tsih: this.tsih,
      isid: isidHex(this.isid),
      initiatorName: this.initiatorName,
      targetName: this.targetName,
      tpgt: this.tpgt,
      type: this.type,
      connections: [...this.connections].map((c) => ({ cid: c.cid, remote: c.remote, local: c.local })),
      cmdsInFlight: this.window.inFlight,
      expCmdSN: this.window.expCmdSN,
      maxCmdSN: this.window.maxCmdSN,
      loginTime: this.loginTime,
      params: { ...this.params },
      luns: this.luns?.list() ?? [],
    };
  }
}

export function isidHex(isid: number): string {
  return isid.toString(16).padStart(12, '0');
}

export function sessionKey(initiator: string, isid: number, target: string, tpgt: number): string {
  return `${initiator.toLowerCase()}|${isidHex(isid)}|${target.toLowerCase()}|${tpgt}`;
}

/** All sessions of a server, by TSIH and by reinstatement key. */
export class SessionRegistry {
  private readonly byTsih = new Map<number, IscsiSession>();
  private readonly byKey = new Map<string, IscsiSession>();
  /** Normal sessions by lower-cased initiator name: the per-initiator cap looks at these only, not at every session. */
  private readonly byInitiator = new Map<string, Set<IscsiSession>>();
  private nextTsih = 1;

  /** A fresh non-zero TSIH not in use (RFC 7143 §11.12.6: 0 is reserved). */
  allocateTsih(): number {
    for (let i = 0; i < 0xffff; i++) {
      const t = this.nextTsih;
      this.nextTsih = t >= 0xffff ? 1 : t + 1;
      if (!this.byTsih.has(t)) return t;
    }
    throw new LunkitError('ERR_ISCSI_LOGIN_REFUSED', 'no free TSIH');
  }

  add(s: IscsiSession): void {
    this.byTsih.set(s.tsih, s);
    if (s.type === 'normal') {
      this.byKey.set(s.key, s);
      const name = s.initiatorName.toLowerCase();
      let set = this.byInitiator.get(name);
      if (!set) this.byInitiator.set(name, (set = new Set()));
      set.add(s);
    }
    s.onClose(() => this.remove(s));
  }

  remove(s: IscsiSession): void {
    if (this.byTsih.get(s.tsih) === s) this.byTsih.delete(s.tsih);
    if (this.byKey.get(s.key) === s) this.byKey.delete(s.key);
    const name = s.initiatorName.toLowerCase();
    const set = this.byInitiator.get(name);
    if (set?.delete(s) && set.size === 0) this.byInitiator.delete(name);
  }

  /** Normal sessions of one initiator name (compared case-insensitively). */
  ofInitiator(initiator: string): Iterable<IscsiSession> {
    return this.byInitiator.get(initiator.toLowerCase()) ?? [];
  }

  byTsihGet(tsih: number): IscsiSession | undefined {
    return this.byTsih.get(tsih);
  }

  find(initiator: string, isid: number, target: string, tpgt: number): IscsiSession | undefined {
    return this.byKey.get(sessionKey(initiator, isid, target, tpgt));
  }

  all(): IscsiSession[] {
    return [...this.byTsih.values()];
  }
}

/** SPC-4 / RFC 7143 port identifiers for the core's NexusIdentity. */
export function initiatorPortId(initiator: string, isid: number): string {
  return `${initiator},i,0x${isidHex(isid)}`;
}

export function targetPortId(target: string, tpgt: number): string {
  return `${target},t,0x${tpgt.toString(16).padStart(4, '0')}`;
}

export type { IscsiCore };
