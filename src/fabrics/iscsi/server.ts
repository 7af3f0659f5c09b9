// IscsiTargetServer: targets, their TPGs and portals, sessions (RFC 7143
// §4.4.1 network portals, §4.4.2 portal groups).
//
// The configuration of a target is plain data (config.ts) and can be replaced
// whole while it serves: updateTarget() binds new portals all or nothing,
// then swaps the config and brings live sessions in line (live-update.ts).
// Changes are serialised so two of them never interleave their awaits.
// Listeners live in portals.ts.
//
// Admission (docs/security.md): a connection over limits.maxConnections or
// limits.maxConnectionsPerAddress is destroyed right after accept, before it
// gets a buffer or a timer; a new session over limits.maxSessionsPerInitiator
// is refused at login with Out of resources (0x0302). CHAP responses wait
// behind the failures of their name and address (auth-throttle.ts). Refusals
// and failed logins are logged once per interval, not once per attempt.

import { iscsiLimits, type IscsiLimits } from './limits.js';
import type net from 'node:net';
import type { FabricOps, NexusHandle } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import type { DiscoveryAuth, IscsiCore, IscsiLogger, IscsiServerOptions, IscsiTargetConfig, TpgConfig } from './config.js';
import type { AcceptingServer, LoginGate, ResolvedTarget } from './accepting-server.js';
import { ConnectionAdmission, RateLimitedLog, type RefusalReason } from '../../util/admission.js';
import { AuthThrottle } from './auth-throttle.js';
import { LoginStatus } from '../../protocols/iscsi/constants.js';
import { IscsiConnection } from './connection.js';
import { SessionRegistry, type IscsiSession, type SessionInfo } from './session.js';
import { initiatorAllowed, sameName } from './acl.js';
import { PortalTable, formatHost, type Listener, type PortalPlan } from './portals.js';
import { drainRemoved, reconcileSessions, type SessionChanges } from './live-update.js';
import type { ScsiTask } from './scsi-command.js';
import { IscsiFabricStats, targetTree, type IscsiStatsSnapshot } from './stats.js';

const SILENT: IscsiLogger = {};
const DEFAULT_DRAIN_MS = 2000;
/** Refused connections and failed logins: one log line, then one summary per interval. */
const ADMISSION_LOG_INTERVAL_MS = 10_000;

export class IscsiTargetServer {
  /** Lower-case IQN -> the target's current configuration. */
  private readonly targets = new Map<string, IscsiTargetConfig>();
  private readonly portals: PortalTable;
  private readonly connections = new Set<IscsiConnection>();
  private readonly registry = new SessionRegistry();
  private closing = false;
  private discoveryAuth: DiscoveryAuth | undefined;
  private readonly drainMs: number;
  private readonly log: IscsiLogger;
  /** This server as its connections see it (accepting-server.ts). */
  private readonly forConnections: AcceptingServer;
  /** Logins, Rejects, digest errors, transfer totals (stats.ts). */
  readonly stats = new IscsiFabricStats();
  /** Budgets on what clients can make the target hold (limits.ts); setLimits() replaces them. */
  limits: IscsiLimits;
  /** Connection caps, total and per source address (util/admission.ts). */
  private readonly admission: ConnectionAdmission;
  /** CHAP failure backoff per initiator name and source address. */
  private readonly authThrottle: AuthThrottle;
  private readonly failedLogins: RateLimitedLog;
  /** Tail of the queue of configuration changes. */
  private changes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly core: IscsiCore,
    opts: IscsiServerOptions = {},
  ) {
    this.log = opts.logger ?? SILENT;
    this.drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
    this.discoveryAuth = opts.discoveryAuth;
    this.limits = iscsiLimits(opts.limits);
    this.portals = new PortalTable((socket, l) => this.accept(socket, l), this.log);
    this.admission = new ConnectionAdmission({ limits: () => this.limits, fabric: 'iSCSI', log: this.log, intervalMs: ADMISSION_LOG_INTERVAL_MS });
    this.authThrottle = new AuthThrottle({ limits: () => this.limits });
    this.failedLogins = new RateLimitedLog((m, f) => this.log.info?.(m, f), 'iSCSI login failed', ADMISSION_LOG_INTERVAL_MS);
    const fabric: FabricOps = {
      name: 'iscsi',
      closeNexus: (nexus: NexusHandle, reason: string) => this.closeNexus(nexus, reason),
    };
    this.forConnections = {
      core,
      log: this.log,
      sessions: this.registry,
      discoveryAuth: () => this.discoveryAuth,
      fabric,
      stats: this.stats,
      resolveTarget: (name, key) => this.resolveTarget(name, key),
      sendTargets: (initiator, which, key) => this.sendTargets(initiator, which, key),
      loginTimeoutFor: (key) => this.loginTimeoutFor(key),
      nopTimingFor: (s) => ({
        interval: s.tpg?.attributes.nopInInterval ?? 0,
        timeout: s.tpg?.attributes.nopInTimeout ?? 30,
      }),
      limits: () => this.limits,
      loginGate: this.loginGate(),
    };
  }

  /** Add a target; its portals start listening now if the server listens. All or nothing. */
  addTarget(cfg: IscsiTargetConfig): Promise<void> {
    return this.serial(async () => {
      const key = cfg.iqn.toLowerCase();
      if (this.targets.has(key)) throw new LunkitError('ERR_EXISTS', `iSCSI target ${cfg.iqn} already exists`);
      validateTarget(cfg);
      const plan = this.portals.plan(key, cfg.tpgs);
      await this.portals.bind(plan);
      this.targets.set(key, cfg);
      this.portals.commit(plan);
    });
  }

  /**
   * Replace a target's whole configuration live (see live-update.ts for what
   * happens to sessions). New portals are bound first, all or nothing: on a
   * bind error (code EADDRINUSE, ...) nothing has changed. Resolves once the
   * commands of removed LUNs have drained or been aborted.
   */
  updateTarget(cfg: IscsiTargetConfig): Promise<void> {
    return this.serial(async () => {
      const key = cfg.iqn.toLowerCase();
      const old = this.targets.get(key);
      if (!old) throw new LunkitError('ERR_NOT_FOUND', `iSCSI target ${cfg.iqn} does not exist`);
      validateTarget(cfg);
      const plan: PortalPlan = this.portals.plan(key, cfg.tpgs);
      await this.portals.bind(plan);
      // From here on nothing can fail: commit.
      this.targets.set(key, cfg);
      this.portals.commit(plan);
      const changes: SessionChanges = { end: [], lunsChanged: [], removed: [] };
      const tags = new Set([...old.tpgs.map((t) => t.tag), ...cfg.tpgs.map((t) => t.tag)]);
      for (const tag of tags) {
        const sessions = this.registry.all().filter((s) => s.tpgt === tag && sameName(s.targetName, cfg.iqn));
        reconcileSessions(
          sessions,
          cfg.tpgs.find((t) => t.tag === tag),
          changes,
        );
      }
      for (const { session, reason } of changes.end) {
        this.log.info?.('iSCSI session ended by a configuration change', { initiator: session.initiatorName, tsih: session.tsih, reason });
        session.close(reason);
      }
      if (changes.lunsChanged.length > 0) this.core.lunsChanged?.(changes.lunsChanged);
      this.portals.release();
      await drainRemoved(
        { core: this.core, log: this.log, submittedTasks: (s, lun) => this.submittedTasks(s, lun) },
        changes.removed.filter((r) => !r.session.closed),
        this.drainMs,
      );
    });
  }

  /**
   * Would addTarget/updateTarget of `cfg` bind its new portals? Binds them and
   * closes them again (throws like updateTarget). For a change spanning
   * several targets, so the daemon can check every one before applying any;
   * a port may still be taken in between, so updateTarget's own all-or-nothing
   * rule stays the real guarantee.
   */
  checkPortals(cfg: IscsiTargetConfig): Promise<void> {
    return this.serial(async () => {
      validateTarget(cfg);
      const plan = this.portals.plan(cfg.iqn.toLowerCase(), cfg.tpgs);
      await this.portals.bind(plan);
      this.portals.unbind(plan);
    });
  }

  /** Remove a target: its sessions end and listeners no other target uses close. */
  removeTarget(iqn: string): Promise<void> {
    return this.serial(async () => {
      const key = iqn.toLowerCase();
      if (!this.targets.delete(key)) return;
      this.portals.drop(key);
      for (const s of this.registry.all()) if (sameName(s.targetName, iqn)) s.close('target removed');
      this.portals.release();
      await Promise.resolve();
    });
  }

  /** The configuration in force for a target (as last given). */
  getTarget(iqn: string): IscsiTargetConfig | undefined {
    return this.targets.get(iqn.toLowerCase());
  }

  /** Discovery session authentication, for the next discovery logins. */
  setDiscoveryAuth(d: DiscoveryAuth | undefined): void {
    this.discoveryAuth = d;
  }

  /** New budgets; connections read them live, so they apply from the next check on. */
  setLimits(partial: Partial<IscsiLimits> | undefined): void {
    this.limits = iscsiLimits(partial);
  }

  /** Start every portal's listener (all or nothing). */
  async listen(): Promise<void> {
    await this.serial(() => this.portals.listen());
  }

  addresses(): { host: string; port: number }[] {
    return this.portals.addresses();
  }

  /** Bound addresses of one target's portals, per TPG tag. */
  targetAddresses(iqn: string): { tag: number; host: string; port: number }[] {
    return this.portals
      .of(iqn.toLowerCase())
      .map((r) => ({ tag: r.tag, host: r.portal.host, port: r.listener.bound?.port ?? r.portal.port }));
  }

  sessions(): SessionInfo[] {
    return this.registry.all().map((s) => s.info());
  }

  /**
   * Fabric statistics and object tree as plain JSON: targets (TPGs, bound
   * portals, LUN -> device name), sessions with their connections, and
   * server totals (docs/stats.md).
   */
  statsSnapshot(): IscsiStatsSnapshot & { connectionsRefused: Record<RefusalReason, number> } {
    const targets = [...this.targets.values()].map((cfg) => targetTree(cfg, this.targetAddresses(cfg.iqn)));
    return { ...this.stats.snapshot(this.registry.all(), this.connections, targets), connectionsRefused: this.admission.refused() };
  }

  /** Log sessions out (drop their connections), close listeners. */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = this.portals.close();
    const grace = opts.graceMs ?? 0;
    if (grace > 0) {
      // Ask every initiator to log out (Async Message) and give commands in
      // flight and the logouts a chance to finish before dropping the rest.
      for (const c of this.connections) c.fullFeature?.requestLogout(grace / 1000);
      const deadline = Date.now() + grace;
      while (Date.now() < deadline && this.registry.all().length > 0) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    for (const s of this.registry.all()) s.close('server closing');
    for (const c of [...this.connections]) c.destroy('server closing');
    this.admission.flushLog();
    this.failedLogins.flush();
    await closed;
  }

  /** For tests and the daemon: live sessions. */
  sessionObjects(): IscsiSession[] {
    return this.registry.all();
  }

  // -------------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.changes.then(fn, fn);
    this.changes = run.catch(() => undefined);
    return run;
  }

  private accept(socket: net.Socket, l: Listener): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // Counted before anything is allocated for it; over a cap it is closed now.
    const release = this.admission.admit(socket.remoteAddress);
    if (!release) {
      socket.destroy();
      return;
    }
    try {
      const conn = new IscsiConnection(socket, this.forConnections, l.key);
      this.connections.add(conn);
      conn.onClose(() => {
        this.connections.delete(conn);
        release();
      });
    } catch (err) {
      release();
      this.log.error?.('iSCSI accept failed', { err: err instanceof Error ? err.message : String(err) });
      socket.destroy();
    }
  }

  /** The login phase's admission checks (accepting-server.ts LoginGate). */
  private loginGate(): LoginGate {
    return {
      refuseSession: (initiator, isid, remote) => {
        const max = this.limits.maxSessionsPerInitiator;
        let open = 0;
        for (const s of this.registry.ofInitiator(initiator)) {
          // A login with the ISID of an open session reinstates it (RFC 7143 §6.3.5): no new session.
          if (!s.closed && s.isid !== isid) open++;
        }
        if (open < max) return undefined;
        this.admission.refuse('per-initiator', { remote: hostOf(remote), initiator, limit: max });
        return { status: LoginStatus.OUT_OF_RESOURCES, why: `initiator has ${open} sessions, limit ${max}` };
      },
      chapDelayMs: (initiator, remote) => {
        // The name's wait stays under half the shortest login timeout: whoever
        // sends a victim's name can slow its logins, not make them time out.
        const ms = this.authThrottle.delayFor(initiator, hostOf(remote), this.shortestLoginTimeoutS() * 500);
        if (ms > 0) this.log.debug?.('iSCSI CHAP response delayed after failures', { initiator, remote, ms });
        return ms;
      },
      chapResult: (initiator, remote, ok) => {
        if (ok) this.authThrottle.succeeded(initiator);
        else this.authThrottle.failed(initiator, hostOf(remote));
      },
      loginFailed: (fields) => {
        const cls = typeof fields.statusClass === 'number' ? fields.statusClass : 0;
        const detail = typeof fields.statusDetail === 'number' ? fields.statusDetail : 0;
        this.failedLogins.note(fields, `status_0x${((cls << 8) | detail).toString(16).padStart(4, '0')}`);
      },
    };
  }

  private tpgOf(targetKey: string, tag: number): { target: IscsiTargetConfig; tpg: TpgConfig } | undefined {
    const target = this.targets.get(targetKey);
    const tpg = target?.tpgs.find((t) => t.tag === tag);
    return target && tpg ? { target, tpg } : undefined;
  }

  private resolveTarget(name: string, portalKey: string): ResolvedTarget | 'not-found' {
    const key = name.toLowerCase();
    for (const ref of this.portals.of(key)) {
      if (ref.listener.key !== portalKey) continue;
      const t = this.tpgOf(key, ref.tag);
      if (t?.tpg.enabled) return t;
    }
    return 'not-found';
  }

  /** The shortest login timeout of any portal, in seconds. */
  private shortestLoginTimeoutS(): number {
    let t = Infinity;
    for (const ref of this.portals.all()) {
      const s = this.tpgOf(ref.targetKey, ref.tag)?.tpg.attributes.loginTimeout ?? 0;
      t = Math.min(t, s > 0 ? s : 15);
    }
    return Number.isFinite(t) ? t : 15;
  }

  private loginTimeoutFor(portalKey: string): number {
    let t = 0;
    for (const ref of this.portals.all()) {
      if (ref.listener.key !== portalKey) continue;
      t = Math.max(t, this.tpgOf(ref.targetKey, ref.tag)?.tpg.attributes.loginTimeout ?? 0);
    }
    return t > 0 ? t : 15;
  }

  /** SendTargets answer (RFC 7143 Appendix C): TargetName then its TargetAddress pairs. */
  private sendTargets(initiator: string, which: string, _portalKey: string): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [key, target] of this.targets) {
      if (which !== 'All' && !sameName(which, target.iqn)) continue;
      const tpgs = target.tpgs.filter((t) => t.enabled && initiatorAllowed(t, initiator));
      if (tpgs.length === 0) continue;
      out.push(['TargetName', target.iqn]);
      const refs = this.portals.of(key);
      for (const tpg of tpgs) {
        for (const ref of refs) {
          if (ref.tag !== tpg.tag) continue;
          const port = ref.listener.bound?.port ?? ref.portal.port;
          out.push(['TargetAddress', `${formatHost(ref.portal.host)}:${port},${tpg.tag}`]);
        }
      }
    }
    return out;
  }

  private submittedTasks(session: IscsiSession, lun: number): ScsiTask[] {
    const out: ScsiTask[] = [];
    // Every connection of the session, and those held for recovery (ERL 2).
    for (const table of session.allTaskTables()) out.push(...table.submittedTasksOn(lun));
    return out;
  }

  private closeNexus(nexus: NexusHandle, reason: string): void {
    for (const s of this.registry.all()) if (s.nexus === nexus) s.close(reason);
  }
}

/** The address of an "address:port" remote (IPv6 addresses keep their colons). */
function hostOf(remote: string): string {
  const i = remote.lastIndexOf(':');
  return i > 0 ? remote.slice(0, i) : remote;
}

/** Checks the server itself relies on (the daemon validates the rest). */
function validateTarget(cfg: IscsiTargetConfig): void {
  const tags = new Set<number>();
  for (const tpg of cfg.tpgs) {
    if (!Number.isInteger(tpg.tag) || tpg.tag < 1 || tpg.tag > 0xffff) {
      throw new LunkitError('ERR_INVALID_CONFIG', `TPG tag ${tpg.tag} of ${cfg.iqn} is not 1..65535`);
    }
    if (tags.has(tpg.tag)) throw new LunkitError('ERR_INVALID_CONFIG', `TPG tag ${tpg.tag} of ${cfg.iqn} appears twice`);
    tags.add(tpg.tag);
    for (const p of tpg.portals) {
      if (!Number.isInteger(p.port) || p.port < 0 || p.port > 0xffff) {
        throw new LunkitError('ERR_INVALID_CONFIG', `portal port ${p.port} of ${cfg.iqn} TPG ${tpg.tag} is not 0..65535`);
      }
    }
  }
}
