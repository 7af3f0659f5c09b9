// `lunkit daemon`: the running lunkit plus its desired state and the control
// socket. The desired state is the configuration document (config-doc.ts);
// every change is (document, params) -> new document (config-ops.ts), validated whole,
// then applied to the runtime all or nothing (runtime.ts). Changes are
// serialised by one queue, so concurrent clients see them one after the other
// and `revision` counts the successful ones.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emptyConfigDoc, validateDoc, type ConfigDoc, type DesiredState } from './config-doc.js';
import { ControlServer, prepareSocketPath, type ControlConnection, type RequestContext } from './control-server.js';
import { ConfigError, ControlError } from './errors.js';
import { migrateConfig } from './migrate.js';
import { CONFIG_OPS } from './config-ops.js';
import { DEFAULT_SAVE_PATH } from './paths.js';
import { LunkitRuntime } from './runtime.js';
import { getFilters, setFilter, type FilterHost } from './filter-control.js';
import { isQcow2Method, runQcow2Method } from './qcow2-control.js';
import { isMediumErrorMethod, runMediumErrorMethod, type MediumErrorHost } from './medium-error-control.js';
import { isBootlabMethod, resetClient, runBootlabMethod, type BootlabHost } from './bootlab-control.js';
import { loadConfigDoc, saveConfigFile } from './saveconfig.js';
import { silentLogger, type Logger } from '../util/log.js';
import { StatsEventLog, collectStatsSnapshot, parseMetricsAddress, startMetricsServer, type MetricsServer, type StatsSnapshot } from './metrics.js';
import { BootlabStatsSource } from './bootlab-stats.js';
import { exportsStats } from './exports-stats.js';

export interface DaemonOptions {
  /** Configuration to load at start (all or nothing) and the default save path. */
  configFile?: string | undefined;
  socketPath: string;
  /** Save to configFile (or DEFAULT_SAVE_PATH) after every successful change. */
  autosave?: boolean | undefined;
  /** Previous copies kept by a save (path.1 .. path.N); default 5. */
  backups?: number | undefined;
  logger?: Logger | undefined;
  /** Serve Prometheus metrics on this host:port (e.g. "127.0.0.1:9470"); off when absent. */
  metrics?: string | undefined;
}

/** Shortest interval of a stats.subscribe stream. */
const MIN_STATS_INTERVAL_MS = 100;

function packageVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/daemon (vitest, tsx) or dist/daemon (built).
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(join(here, rel), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'lunkit' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

function invalidConfig(e: ConfigError): ControlError {
  return new ControlError('ERR_INVALID_CONFIG', e.message, { problems: e.problems });
}

export class LunkitDaemon {
  private state: DesiredState;
  private revision = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly startedAt = Date.now();
  private readonly version = packageVersion();
  private server: ControlServer | undefined;
  private stopping: Promise<void> | undefined;
  private metricsServer: MetricsServer | undefined;
  private nextSubscription = 1;
  /** stats.subscribe streams: id -> the connection that owns it and how to end it. */
  private readonly subscriptions = new Map<number, { connection: ControlConnection; end: () => void }>();

  private constructor(
    readonly runtime: LunkitRuntime,
    initial: DesiredState,
    private readonly opts: DaemonOptions,
    private readonly logger: Logger,
    /** Logins, logouts, resets, errors: the dashboard's event log (created before the runtime starts, so it has the start-up events). */
    private readonly events: StatsEventLog,
  ) {
    this.state = initial;
  }

  /** Loads the configuration (if any), starts the runtime, then the control socket. */
  static async start(opts: DaemonOptions): Promise<LunkitDaemon> {
    const logger = opts.logger ?? silentLogger;
    let initial: DesiredState = validateDoc(emptyConfigDoc());
    if (opts.configFile !== undefined) {
      try {
        initial = await loadConfigDoc(opts.configFile);
      } catch (e) {
        // With --autosave the file may not exist yet: start empty and create it on the first change.
        const missing = e instanceof ConfigError && e.problems.length === 1 && /ENOENT/.test(e.problems[0]);
        if (!(missing && opts.autosave)) throw e;
        logger.info('configuration file does not exist yet; starting empty', { file: opts.configFile });
      }
    }
    // Refuse a live daemon's socket before binding any portal (its ports would clash first, less clearly).
    await prepareSocketPath(opts.socketPath);
    const events = new StatsEventLog();
    let runtime: LunkitRuntime;
    try {
      runtime = await LunkitRuntime.start(initial.config, { logger });
    } catch (e) {
      events.close();
      throw e;
    }
    const daemon = new LunkitDaemon(runtime, initial, opts, logger, events);
    runtime.bootlabs.hooks.beforeScript = (lab, mac) => daemon.beforeBootScript(lab, mac);
    try {
      daemon.server = await ControlServer.listen({
        path: opts.socketPath,
        logger,
        handler: (method, params, ctx) => daemon.handle(method, params, ctx),
      });
    } catch (e) {
      await runtime.stop(0);
      throw e;
    }
    if (opts.metrics !== undefined) {
      try {
        daemon.metricsServer = await startMetricsServer(parseMetricsAddress(opts.metrics), () => daemon.statsSnapshot());
      } catch (e) {
        await daemon.stop(0);
        throw e;
      }
      logger.info('metrics listening', { url: daemon.metricsServer.url });
    }
    logger.info('control socket listening', { socket: opts.socketPath, revision: daemon.revision });
    return daemon;
  }

  /** The Prometheus endpoint, when --metrics asked for one. */
  get metricsUrl(): string | undefined {
    return this.metricsServer?.url;
  }

  /** Boot-lab clients of the stats snapshot; overlay sizes are sampled in the background (bootlab-stats.ts). */
  private readonly bootlabStats = new BootlabStatsSource({
    labs: () => this.state.doc.bootlabs,
    lastBoot: (lab, mac) => this.runtime.bootlabs.lastBoot(lab, mac),
  });

  /** Counters of every LUN, nexus and iSCSI session, boot-lab clients, plus the events after `eventsSince`. */
  statsSnapshot(eventsSince = 0): StatsSnapshot {
    return collectStatsSnapshot({ core: this.runtime.core, iscsi: this.runtime.iscsi, nbd: this.runtime.nbd, bootlabs: this.bootlabStats, exports: () => exportsStats(this.runtime), events: this.events }, { eventsSince });
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  /** The desired (and running) configuration, canonical. */
  get config(): ConfigDoc {
    return structuredClone(this.state.doc);
  }

  get currentRevision(): number {
    return this.revision;
  }

  /** Stops the control socket, then the runtime (in-flight commands finish, backstores flush). */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      for (const { end } of [...this.subscriptions.values()]) end();
      await this.server?.close();
      await this.metricsServer?.close();
      await this.queue;
      await this.runtime.stop(graceMs);
      this.events.close();
    })();
    return this.stopping;
  }

  /** The LUs' latched flush failures (medium-error-control.ts). */
  private readonly mediumErrorHost: MediumErrorHost = {
    core: () => this.runtime.core,
    device: (name) => this.runtime.backstores.get(name)?.device,
    names: () => this.runtime.backstores.keys(),
  };

  /** The live filter stacks (filter-control.ts). */
  private readonly filterHost: FilterHost = { backstoreOps: (name) => this.runtime.backstores.get(name)?.ops };

  /** One control request (docs/control-protocol.md "Methods"). */
  async handle(method: string, params: Record<string, unknown>, ctx: RequestContext): Promise<unknown> {
    switch (method) {
      case 'ping':
        return {
          version: this.version,
          pid: process.pid,
          uptimeMs: Date.now() - this.startedAt,
          revision: this.revision,
          socket: this.opts.socketPath,
          listening: this.listening(),
          subscriptions: this.subscriptions.size,
          ...(this.opts.configFile !== undefined ? { configFile: this.opts.configFile } : {}),
        };
      case 'config.get':
        return { config: this.config, revision: this.revision };
      case 'config.save':
        return this.serial(() => this.save(params));
      case 'config.replace':
        return this.replace(params, ctx);
      case 'sessions.list':
        return { sessions: this.sessions() };
      case 'backstore.filter.get':
        return getFilters(this.filterHost, params);
      case 'backstore.filter.set':
        return setFilter(this.filterHost, params);
      case 'stats.snapshot': {
        const since = params.eventsSince ?? 0;
        if (typeof since !== 'number' || !Number.isInteger(since) || since < 0) throw new ControlError('ERR_INVALID_PARAMS', 'params.eventsSince: a whole number >= 0');
        return this.statsSnapshot(since);
      }
      case 'stats.subscribe':
        return this.subscribe(params, ctx);
      case 'stats.unsubscribe': {
        // Only the connection that subscribed can end a subscription.
        const sub = typeof params.subscription === 'number' ? this.subscriptions.get(params.subscription) : undefined;
        if (!sub || sub.connection !== ctx.connection) throw new ControlError('ERR_NOT_FOUND', `no subscription ${String(params.subscription)} on this connection`);
        sub.end();
        return {};
      }
      default: {
        if (isBootlabMethod(method)) return runBootlabMethod(this.bootlabHost(ctx), method, params);
        if (isQcow2Method(method)) return this.serial(() => this.qcow2(method, params, ctx));
        if (isMediumErrorMethod(method)) return runMediumErrorMethod(this.mediumErrorHost, method, params);
        const op = CONFIG_OPS[method] as (typeof CONFIG_OPS)[string] | undefined;
        if (!op) throw new ControlError('ERR_CONTROL_METHOD', `unknown method "${method}"`);
        return this.change(method, (doc) => op(doc, params), ctx);
      }
    }
  }

  /**
   * stats.subscribe (docs/stats.md): a `stats` notification every intervalMs on
   * the requesting connection, each with the events since the previous one; a
   * slow client skips notifications rather than queueing them.
   */
  private subscribe(params: Record<string, unknown>, ctx: RequestContext): { subscription: number; intervalMs: number } {
    const intervalMs = params.intervalMs ?? 1000;
    if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs < MIN_STATS_INTERVAL_MS) {
      throw new ControlError('ERR_INVALID_PARAMS', `params.intervalMs: a number of milliseconds >= ${MIN_STATS_INTERVAL_MS}`);
    }
    const subscription = this.nextSubscription++;
    let sentUpTo = 0;
    const tick = (): void => {
      const snapshot = this.statsSnapshot(sentUpTo);
      if (ctx.connection.notify('stats', { subscription, snapshot })) sentUpTo = this.events.lastSeq;
    };
    const timer = setInterval(tick, intervalMs);
    const end = (): void => {
      clearInterval(timer);
      this.subscriptions.delete(subscription);
    };
    this.subscriptions.set(subscription, { connection: ctx.connection, end });
    ctx.connection.onClose(end);
    // The first snapshot follows the answer (the whole event log).
    setImmediate(tick);
    return { subscription, intervalMs };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** What the boot-lab methods (bootlab-control.ts) may use. */
  private bootlabHost(ctx: RequestContext | undefined): BootlabHost {
    return {
      doc: () => structuredClone(this.state.doc),
      change: (method, compute) => this.change(method, compute, ctx),
      sessionsOf: (initiator, target) => {
        const i = initiator.toLowerCase();
        const t = target.toLowerCase();
        return this.runtime.iscsi.sessions().filter((s) => s.type === 'normal' && s.initiatorName.toLowerCase() === i && s.targetName.toLowerCase() === t).length;
      },
      lastBoot: (lab, mac) => this.runtime.bootlabs.lastBoot(lab, mac),
      services: (lab) => this.runtime.bootlabs.stats(lab),
    };
  }

  /**
   * Reset on boot: a client marked so that asks for its script while none of
   * its sessions is logged in gets a fresh overlay first. A failure is logged
   * and the client boots what it has (a boot never waits on an operator).
   */
  private async beforeBootScript(lab: string, mac: string): Promise<void> {
    const c = this.state.doc.bootlabs?.[lab]?.clients[mac];
    if (!c?.resetOnBoot || this.stopping) return;
    await resetClient(this.bootlabHost(undefined), lab, mac, false, true).then(
      (r) => {
        if (r.reset) this.logger.info('boot lab: client reset on boot', { lab, client: c.name });
      },
      (e: unknown) => this.logger.warn('boot lab: reset on boot failed', { lab, client: c.name, err: e }),
    );
  }

  /** Computes, validates and applies one change; all or nothing. */
  private change(
    method: string,
    compute: (doc: ConfigDoc) => { doc: ConfigDoc; result?: Record<string, unknown> },
    ctx: RequestContext | undefined,
  ): Promise<Record<string, unknown>> {
    return this.serial(async () => {
      if (this.stopping) throw new ControlError('ERR_APPLY_FAILED', 'the daemon is stopping');
      const { doc, result } = compute(structuredClone(this.state.doc));
      let next: DesiredState;
      try {
        next = validateDoc(doc);
      } catch (e) {
        if (e instanceof ConfigError) throw invalidConfig(e);
        throw e;
      }
      await this.runtime.apply(next.config, { onProgress: (p) => ctx?.progress(p) });
      this.state = next;
      this.revision++;
      this.logger.info('configuration changed', { method, revision: this.revision });
      if (this.opts.autosave) {
        await this.save({}).catch((e: unknown) => this.logger.error('autosave failed', { err: e }));
      }
      return { ...result, revision: this.revision };
    });
  }

  /**
   * backstore.reset / snapshot / commit on a live qcow2 image (qcow2-control.ts).
   * A snapshot moves the backstore's path: the new document is recorded
   * without reopening anything (the running image already is that file).
   */
  private async qcow2(method: Parameters<typeof runQcow2Method>[1], params: Record<string, unknown>, ctx: RequestContext): Promise<Record<string, unknown>> {
    if (this.stopping) throw new ControlError('ERR_APPLY_FAILED', 'the daemon is stopping');
    const { result, doc } = await runQcow2Method(
      { core: this.runtime.core, backstores: this.runtime.backstores, doc: structuredClone(this.state.doc), progress: (p) => ctx.progress(p) },
      method,
      params,
    );
    if (!doc) return { ...result, revision: this.revision };
    let next: DesiredState;
    try {
      next = validateDoc(doc);
    } catch (e) {
      throw e instanceof ConfigError ? invalidConfig(e) : e;
    }
    this.runtime.adopt(next.config);
    this.state = next;
    this.revision++;
    this.logger.info('configuration changed', { method, revision: this.revision });
    if (this.opts.autosave) await this.save({}).catch((e: unknown) => this.logger.error('autosave failed', { err: e }));
    return { ...result, revision: this.revision };
  }

  private replace(params: Record<string, unknown>, ctx: RequestContext): Promise<Record<string, unknown>> {
    if (typeof params.config !== 'object' || params.config === null || Array.isArray(params.config)) {
      return Promise.reject(new ControlError('ERR_INVALID_PARAMS', 'params.config must be a configuration object'));
    }
    if (params.dryRun !== undefined && typeof params.dryRun !== 'boolean') {
      return Promise.reject(new ControlError('ERR_INVALID_PARAMS', 'params.dryRun must be a boolean'));
    }
    let migrated: DesiredState;
    try {
      migrated = validateDoc(migrateConfig(params.config).doc);
    } catch (e) {
      return Promise.reject(e instanceof ConfigError ? invalidConfig(e) : e);
    }
    const ifRevision = params.ifRevision;
    if (ifRevision !== undefined && (typeof ifRevision !== 'number' || !Number.isInteger(ifRevision))) {
      return Promise.reject(new ControlError('ERR_INVALID_PARAMS', 'params.ifRevision must be a revision number'));
    }
    if (params.dryRun === true) return Promise.resolve({ revision: this.revision, dryRun: true });
    return this.change(
      'config.replace',
      () => {
        // lunkit apply showed a diff against this revision: apply only onto it (checked in the queue, so no change slips in between).
        if (ifRevision !== undefined && ifRevision !== this.revision) {
          throw new ControlError('ERR_APPLY_FAILED', `the configuration changed since revision ${ifRevision} (now ${this.revision}); nothing was applied: diff and apply again`);
        }
        return { doc: migrated.doc };
      },
      ctx,
    );
  }

  private async save(params: Record<string, unknown>): Promise<{ path: string; backups: string[] }> {
    if (params.path !== undefined && (typeof params.path !== 'string' || params.path === '')) {
      throw new ControlError('ERR_INVALID_PARAMS', 'params.path must be a file path');
    }
    const path = (params.path as string | undefined) ?? this.opts.configFile ?? DEFAULT_SAVE_PATH;
    try {
      return await saveConfigFile(path, this.state.doc, this.opts.backups ?? 5);
    } catch (e) {
      throw new ControlError('ERR_APPLY_FAILED', `cannot save to ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Bound addresses: what a portal or listener of port 0 really got. */
  private listening(): {
    iscsi: Array<{ iqn: string; tpg: number; host: string; port: number }>;
    nbd: Array<{ host: string; port: number } | { socket: string }>;
    fuse: Array<{ mountpoint: string; files: string[] }>;
  } {
    const iscsi = Object.keys(this.runtime.config.iscsi.targets).flatMap((iqn) =>
      this.runtime.iscsi.targetAddresses(iqn).map((a) => ({ iqn, tpg: a.tag, host: a.host, port: a.port })),
    );
    const nbd = [...this.runtime.nbdAddresses(), ...this.runtime.nbdSocketPaths().map((socket) => ({ socket }))];
    return { iscsi, nbd, fuse: this.runtime.fuse.files() };
  }

  private sessions(): unknown[] {
    const nbd = (this.runtime.nbd?.connections() ?? []).map((c) => ({ fabric: 'nbd', ...c, address: c.remote }));
    const iscsi = this.runtime.iscsi.sessions().map((s) => ({
      fabric: 'iscsi',
      target: s.targetName,
      tpg: s.tpgt,
      initiator: s.initiatorName,
      isid: s.isid,
      tsih: s.tsih,
      type: s.type,
      connections: s.connections,
      cmdsInFlight: s.cmdsInFlight,
      expCmdSN: s.expCmdSN,
      maxCmdSN: s.maxCmdSN,
      loginTime: s.loginTime,
      luns: s.luns,
      params: s.params,
    }));
    return [...iscsi, ...nbd];
  }
}
