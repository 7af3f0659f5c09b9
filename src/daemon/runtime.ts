// The running lunkit: one SCSI core, the backstores of the configuration opened
// as devices, the iSCSI target and (with an `nbd` section) the NBD server.
// `lunkit serve`, `lunkit daemon` and the demo run one of these; tests start it
// in-process on port 0.
//
// apply(next) reconciles the running objects with a new configuration, all or
// nothing: new backstores are opened first, then discovery authentication,
// iSCSI targets (removed, changed, added), NBD, resizes; only when every step
// has succeeded are removed backstores closed. A step that fails undoes the
// ones before it, in reverse, and apply throws ERR_APPLY_FAILED: the running
// state is the previous configuration again. start() is apply onto an empty
// runtime. Stop finishes what is in flight (bounded by graceMs), then flushes
// every backstore so a SIGTERM loses no acknowledged write.

import { ScsiCore } from '../core/engine.js';
import { TMF_TASK_WAIT_MS } from '../core/tmr.js';
import { commonConfig, descriptorOf, restackFilters } from '../backstores/registry.js';
import { IscsiTargetServer } from '../fabrics/iscsi/server.js';
import type { NbdServer } from '../fabrics/nbd/server.js';
import type { ScsiDeviceHandle } from '../core/types.js';
import { ConfigSchema, type LunkitConfig } from './config-schema.js';
import { ControlError } from './errors.js';
import {
  filtersChanged,
  backstoreChange,
  createDevice,
  openBackstoreOps,
  startNbdServer,
  targetBackstores,
  toDiscoveryAuth,
  toTargetConfig,
  type OpenBackstore,
  type ProgressFn,
} from './runtime-objects.js';
import { silentLogger, type Logger } from '../util/log.js';
import { FuseMounts } from './runtime-fuse.js';
import { expandBootlabs } from './bootlab-config.js';
import { BootlabServices } from './runtime-bootlab.js';

/** limits.shutdownIoWait when the configuration sets none (docs/security.md). */
export const DEFAULT_SHUTDOWN_IO_WAIT_S = 30;
/** limits.tmfTaskWait in ms, or the core's default. */
function tmfWaitMs(cfg: LunkitConfig): number {
  const s = cfg.limits?.tmfTaskWait;
  return s === undefined ? TMF_TASK_WAIT_MS : s * 1000;
}

/** Backstores opened at once by an apply (each open is a few syscalls in libuv's pool of 4 threads). */
const OPEN_CONCURRENCY = 8;

/** The final flush's time when the wait for in-flight I/O used up shutdownIoWait. */
const MIN_FINAL_FLUSH_MS = 2000;

export interface RuntimeOptions {
  logger?: Logger;
}

export interface ApplyOptions {
  /** Preallocation of thick files (bytes) and, for many objects, objects applied. */
  onProgress?: ProgressFn;
}

export interface ListeningPortal {
  host: string;
  port: number;
}

export type { OpenBackstore, Progress, ProgressFn } from './runtime-objects.js';

type Undo = () => Promise<void> | void;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function emptyConfig(): LunkitConfig {
  return ConfigSchema.parse({});
}

export class LunkitRuntime {
  readonly core = new ScsiCore();
  /** Open backstores by name (replaced as a whole on every successful apply). */
  backstores: ReadonlyMap<string, OpenBackstore> = new Map();
  readonly iscsi: IscsiTargetServer;
  private nbdServer: NbdServer | undefined;
  /** FUSE mount directories of the `fuse` section. */
  readonly fuse: FuseMounts;
  /** HTTP, TFTP and proxy DHCP of the `bootlabs` section. */
  readonly bootlabs: BootlabServices;
  private current: LunkitConfig = emptyConfig();
  private queue: Promise<unknown> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private readonly logger: Logger;

  private constructor(opts: RuntimeOptions) {
    this.logger = opts.logger ?? silentLogger;
    this.iscsi = new IscsiTargetServer(this.core, { logger: this.logger });
    this.fuse = new FuseMounts(this.core, this.logger);
    this.bootlabs = new BootlabServices(this.logger, () => this.current);
  }

  /** An empty runtime, listening for nothing yet; apply() gives it objects. */
  static async create(opts: RuntimeOptions = {}): Promise<LunkitRuntime> {
    const rt = new LunkitRuntime(opts);
    await rt.iscsi.listen();
    return rt;
  }

  /** create() + apply(cfg); all or nothing (nothing stays open if it fails). */
  static async start(cfg: LunkitConfig, opts: RuntimeOptions = {}): Promise<LunkitRuntime> {
    const rt = await LunkitRuntime.create(opts);
    try {
      await rt.apply(cfg);
    } catch (e) {
      await rt.stop(0);
      throw e;
    }
    return rt;
  }

  /** The configuration the running objects match. */
  get config(): LunkitConfig {
    return this.current;
  }

  /** The NBD server fabric, when the configuration has an `nbd` section. */
  get nbd(): NbdServer | undefined {
    return this.nbdServer;
  }

  addresses(): ListeningPortal[] {
    return this.iscsi.addresses();
  }

  /** NBD listeners (empty without an `nbd` section). */
  nbdAddresses(): ListeningPortal[] {
    return this.nbdServer?.addresses() ?? [];
  }

  /** NBD Unix socket listeners (their paths). */
  nbdSocketPaths(): string[] {
    return this.nbdServer?.unixPaths() ?? [];
  }

  /** Reconciles the running objects with `next`; serialised; all or nothing. */
  apply(next: LunkitConfig, opts: ApplyOptions = {}): Promise<void> {
    const run = this.queue.then(() => this.applyNow(next, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Records `next` as the configuration without touching any object: the
   * running objects already match it (a live qcow2 snapshot moved a
   * backstore's top image to a new file). The caller serialises it with apply.
   */
  adopt(given: LunkitConfig): void {
    const next = expandBootlabs(given);
    const map = new Map<string, OpenBackstore>();
    for (const [name, bs] of this.backstores) map.set(name, { ...bs, spec: next.backstores[name] ?? bs.spec });
    this.backstores = map;
    this.current = next;
  }

  private async applyNow(given: LunkitConfig, opts: ApplyOptions): Promise<void> {
    // Boot labs bring their derived overlays and target (bootlab-config.ts).
    const next = expandBootlabs(given);
    if (this.stopping) throw new ControlError('ERR_APPLY_FAILED', 'the runtime is stopping');
    const prev = this.current;
    const prevMap = this.backstores;
    const nextMap = new Map<string, OpenBackstore>();
    const undo: Undo[] = [];
    /** Old objects to release once everything succeeded. */
    const release: Array<{ name: string; device: ScsiDeviceHandle; close?: OpenBackstore['ops'] }> = [];
    /** Run after the undo steps if the apply fails (a backstore type removes a file it created). */
    const rollbacks: Undo[] = [];
    let step = 'starting';
    const objectsTotal = this.countObjects(prev, next);
    let objectsDone = 0;
    const objectDone = (): void => {
      objectsDone++;
      if (objectsTotal > 1) opts.onProgress?.({ what: 'applying configuration', done: objectsDone, total: objectsTotal });
    };
    try {
      // 1. Backstores: open what is new, reopen what changed, keep the rest.
      // What needs no I/O is decided in order; the opens (a stat, an open, an
      // fstat, a statfs each, through libuv's pool) run OPEN_CONCURRENCY at a
      // time: one by one they made an apply of 1,000 new files take seconds
      // (bench/config). Devices are still created in the file's order below.
      const toOpen: Array<{ name: string; spec: LunkitConfig['backstores'][string]; old: OpenBackstore | undefined }> = [];
      for (const [name, spec] of Object.entries(next.backstores)) {
        const old = prevMap.get(name);
        const oldSpec = prev.backstores[name];
        const change = old && oldSpec ? backstoreChange(oldSpec, spec) : { change: 'reopen' as const, resize: false };
        if (old && change.change === 'none') {
          nextMap.set(name, { ...old, spec });
          continue;
        }
        if (old && change.change === 'resize') {
          nextMap.set(name, { ...old, spec }); // resized in step 5
          continue;
        }
        if (old && change.change === 'device') {
          step = `backstore "${name}"`;
          // The same open backstore; a new filter stack on it when the filters changed.
          const ops = oldSpec && filtersChanged(oldSpec, spec) ? restackFilters(old.ops, commonConfig(spec).filters) : old.ops;
          const device = createDevice(this.core, name, ops, spec);
          // A failed flush stays latched across a config change (core/io-guard.ts): only clear-error clears it.
          this.core.inheritMediumError(device, old.device);
          undo.push(() => this.core.removeDevice(device));
          nextMap.set(name, { ops, device, spec });
          release.push({ name, device: old.device });
          continue;
        }
        toOpen.push({ name, spec, old });
      }
      const opened = new Map<string, OpenBackstore['ops']>();
      let failure: { name: string; err: unknown } | undefined;
      let nextIndex = 0;
      const worker = async (): Promise<void> => {
        while (failure === undefined && nextIndex < toOpen.length) {
          const { name, spec } = toOpen[nextIndex++];
          try {
            await descriptorOf(spec).prepare?.(name, spec, { onProgress: opts.onProgress, onRollback: (u) => rollbacks.push(u) });
            const ops = await openBackstoreOps(name, spec);
            opened.set(name, ops);
            undo.push(() => ops.close());
            objectDone();
          } catch (err) {
            failure ??= { name, err };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, toOpen.length) }, worker));
      if (failure) {
        step = `opening backstore "${failure.name}"`;
        throw failure.err;
      }
      for (const { name, spec, old } of toOpen) {
        const ops = opened.get(name)!;
        const device = createDevice(this.core, name, ops, spec);
        // Reopening the file does not bring back pages a failed fdatasync dropped: the latch stays.
        if (old) this.core.inheritMediumError(device, old.device);
        // Runs before the close pushed above (undo runs in reverse).
        undo.push(() => this.core.removeDevice(device));
        nextMap.set(name, { ops, device, spec });
        if (old) release.push({ name, device: old.device, close: old.ops });
        this.logger.info('backstore opened', { name, type: spec.type, size: ops.size, blockSize: ops.blockSize });
      }
      // In the file's order again (the kept ones went in first).
      const inOrder = Object.keys(next.backstores).map((n) => [n, nextMap.get(n)!] as const);
      nextMap.clear();
      for (const [n, bs] of inOrder) nextMap.set(n, bs);
      for (const [name, old] of prevMap) if (!(name in next.backstores)) release.push({ name, device: old.device, close: old.ops });

      // 2. Discovery authentication.
      if (!same(prev.iscsi.discoveryAuth, next.iscsi.discoveryAuth)) {
        step = 'discovery authentication';
        this.iscsi.setDiscoveryAuth(toDiscoveryAuth(next));
        undo.push(() => this.iscsi.setDiscoveryAuth(toDiscoveryAuth(prev)));
      }

      // 2b. Budgets (docs/security.md); the NBD server takes its own at start and below.
      if (!same(prev.limits, next.limits)) {
        step = 'limits';
        this.iscsi.setLimits(next.limits?.iscsi);
        this.nbdServer?.setLimits(next.limits?.nbd);
        this.core.tmfTaskWaitMs = tmfWaitMs(next);
        undo.push(() => {
          this.iscsi.setLimits(prev.limits?.iscsi);
          this.nbdServer?.setLimits(prev.limits?.nbd);
          this.core.tmfTaskWaitMs = tmfWaitMs(prev);
        });
      }

      // 3. iSCSI targets: removed first (their portals may be reused), then changed, then new.
      for (const [iqn, t] of Object.entries(prev.iscsi.targets)) {
        if (iqn in next.iscsi.targets) continue;
        step = `removing target ${iqn}`;
        await this.iscsi.removeTarget(iqn);
        undo.push(() => this.iscsi.addTarget(toTargetConfig(iqn, t, prevMap)));
        this.logger.info('iSCSI target removed', { iqn });
        objectDone();
      }
      for (const [iqn, t] of Object.entries(next.iscsi.targets)) {
        const old = prev.iscsi.targets[iqn];
        const cfg = toTargetConfig(iqn, t, nextMap);
        if (old) {
          const devicesMoved = targetBackstores(t).some((n) => nextMap.get(n)?.device !== prevMap.get(n)?.device);
          if (same(old, t) && !devicesMoved) continue;
          step = `updating target ${iqn}`;
          await this.iscsi.updateTarget(cfg);
          undo.push(() => this.iscsi.updateTarget(toTargetConfig(iqn, old, prevMap)));
          this.logger.info('iSCSI target updated', { iqn });
        } else {
          step = `adding target ${iqn}`;
          // Registered before its portals bind: undo removes it even if binding failed.
          undo.push(() => this.iscsi.removeTarget(iqn));
          await this.iscsi.addTarget(cfg);
          this.logger.info('iSCSI target added', { iqn });
        }
        objectDone();
      }

      // 4. NBD.
      await this.applyNbd(prev, next, prevMap, nextMap, undo, (s) => (step = s));

      // 4b. FUSE mounts and their files.
      await this.fuse.apply(prev, next, prevMap, nextMap, undo, (s) => (step = s));

      // 4c. Boot-lab services (their iSCSI objects were applied above).
      await this.bootlabs.apply(prev, next, undo, (s) => (step = s));

      // 5. Resizes last: nothing after them can fail, so a shrink is never undone by a grow.
      for (const [name, bs] of nextMap) {
        const oldSpec = prev.backstores[name];
        const type = descriptorOf(bs.spec);
        const newSize = commonConfig(bs.spec).size;
        if (!oldSpec || type.fixedSize !== undefined || newSize === undefined || prevMap.get(name)?.ops !== bs.ops) continue;
        if (!backstoreChange(oldSpec, bs.spec).resize || bs.ops.size === newSize) continue;
        step = `resizing backstore "${name}"`;
        const resize = bs.ops.resize?.bind(bs.ops);
        if (!resize) throw new ControlError('ERR_APPLY_FAILED', `${step}: a ${bs.spec.type} backstore cannot be resized`);
        const oldSize = bs.ops.size;
        if (newSize > oldSize) await type.beforeGrow?.(name, bs.spec, oldSize, newSize, opts.onProgress);
        await resize(newSize);
        undo.push(async () => {
          await resize(oldSize);
          this.core.capacityChanged(bs.device);
        });
        // SBC-3: sessions get CAPACITY DATA HAS CHANGED.
        this.core.capacityChanged(bs.device);
        opts.onProgress?.({ what: `resizing ${name}`, done: newSize, total: newSize });
        this.logger.info('backstore resized', { name, from: oldSize, to: newSize });
      }
    } catch (err) {
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch (e) {
          this.logger.error('rollback step failed', { err: e });
        }
      }
      for (const u of rollbacks) await Promise.resolve(u()).catch(() => {});
      if (err instanceof ControlError) throw err;
      throw new ControlError('ERR_APPLY_FAILED', `${step}: ${(err as Error).message}`, { cause: err });
    }

    // Commit: the new objects are live; release the old ones.
    this.backstores = nextMap;
    this.current = next;
    for (const r of release) {
      await this.core.removeDevice(r.device).catch((e: unknown) => this.logger.warn('device removal failed', { name: r.name, err: e }));
      if (r.close) {
        await r.close.close().catch((e: unknown) => this.logger.warn('backstore close failed', { name: r.name, err: e }));
        this.logger.info('backstore closed', { name: r.name });
      }
    }
  }

  private async applyNbd(
    prev: LunkitConfig,
    next: LunkitConfig,
    prevMap: ReadonlyMap<string, OpenBackstore>,
    nextMap: ReadonlyMap<string, OpenBackstore>,
    undo: Undo[],
    setStep: (s: string) => void,
  ): Promise<void> {
    const before = this.nbdServer;
    const listenersChanged = !same(prev.nbd?.listen, next.nbd?.listen) || !same(prev.nbd?.tls, next.nbd?.tls);
    if (!next.nbd) {
      if (!before) return;
      setStep('stopping the NBD server');
      this.nbdServer = undefined;
      await before.close({ graceMs: 0 });
      undo.push(async () => {
        this.nbdServer = await startNbdServer(this.core, prev.nbd!, prevMap, this.logger, prev.limits?.nbd);
      });
      return;
    }
    if (!before || listenersChanged) {
      // A listener change restarts the server: its connections end.
      if (before) {
        setStep('stopping the NBD server');
        this.nbdServer = undefined;
        await before.close({ graceMs: 0 });
        undo.push(async () => {
          this.nbdServer = await startNbdServer(this.core, prev.nbd!, prevMap, this.logger, prev.limits?.nbd);
        });
      }
      setStep('starting the NBD server');
      const server = await startNbdServer(this.core, next.nbd, nextMap, this.logger, next.limits?.nbd);
      this.nbdServer = server;
      undo.push(async () => {
        this.nbdServer = undefined;
        await server.close({ graceMs: 0 });
      });
      return;
    }
    const prevExports = prev.nbd?.exports ?? {};
    for (const [name, e] of Object.entries(next.nbd.exports)) {
      const old = prevExports[name] as (typeof prevExports)[string] | undefined;
      const device = nextMap.get(e.backstore)!.device;
      if (old && same(old, e) && prevMap.get(e.backstore)?.device === device) continue;
      setStep(`NBD export "${name}"`);
      before.setExport(name, { device, readOnly: e.readOnly, description: e.description });
      undo.push(() => {
        if (old) before.setExport(name, { device: prevMap.get(old.backstore)!.device, readOnly: old.readOnly, description: old.description });
        else before.deleteExport(name);
      });
    }
    for (const [name, old] of Object.entries(prevExports)) {
      if (name in next.nbd.exports) continue;
      before.deleteExport(name);
      undo.push(() => before.setExport(name, { device: prevMap.get(old.backstore)!.device, readOnly: old.readOnly, description: old.description }));
    }
  }

  /** Objects an apply touches (for config.replace progress). */
  private countObjects(prev: LunkitConfig, next: LunkitConfig): number {
    let n = 0;
    for (const [name, bs] of Object.entries(next.backstores)) {
      const old = prev.backstores[name];
      if (!old || backstoreChange(old, bs).change === 'reopen') n++;
    }
    for (const iqn of Object.keys(prev.iscsi.targets)) if (!(iqn in next.iscsi.targets)) n++;
    for (const [iqn, t] of Object.entries(next.iscsi.targets)) if (!same(prev.iscsi.targets[iqn], t)) n++;
    return n;
  }

  /**
   * The fabrics are closed, but a task they aborted may still have its
   * pwrite queued in libuv: wait until no backstore call is in progress,
   * then flush, both within limits.shutdownIoWait seconds, so the final
   * flush covers every write that reached a backstore and a hung backstore
   * cannot hang the shutdown. Closing the backstores comes after (a delay
   * filter fails what still waits in it; those writes never reached the store).
   */
  private async drainAndFlush(): Promise<void> {
    const budgetMs = (this.current.limits?.shutdownIoWait ?? DEFAULT_SHUTDOWN_IO_WAIT_S) * 1000;
    const t0 = Date.now();
    const busy = await this.core.quiesce(budgetMs);
    if (busy.length > 0) this.logger.warn('backstore I/O still in progress at shutdown; flushing anyway', { backstores: busy, waitedMs: budgetMs });
    const left = Math.max(0, budgetMs - (Date.now() - t0));
    // The LUs that went idle still get their flush when a hung one ate the budget.
    const r = await this.core.flushAll(Math.max(left, MIN_FINAL_FLUSH_MS));
    for (const f of r.failed) this.logger.error('final flush failed', { backstore: f.device, err: f.error });
    if (r.timedOut.length > 0) this.logger.warn('final flush did not finish in time', { backstores: r.timedOut });
  }

  /** Idempotent; resolves when every backstore is flushed and closed. */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      await this.queue;
      this.logger.info('stopping', { graceMs });
      await this.bootlabs.closeAll();
      await this.iscsi.close({ graceMs }).catch((e: unknown) => this.logger.warn('iSCSI close failed', { err: e }));
      await this.nbdServer?.close({ graceMs }).catch((e: unknown) => this.logger.warn('NBD close failed', { err: e }));
      await this.fuse.closeAll();
      await this.drainAndFlush();
      for (const [name, { ops }] of this.backstores) {
        await ops.close().catch((e: unknown) => this.logger.warn('backstore close failed', { name, err: e }));
      }
      this.logger.info('stopped');
    })();
    return this.stopping;
  }
}
