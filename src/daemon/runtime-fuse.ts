// The FUSE side of LunkitRuntime.apply(): one FuseFabric per mount directory
// of the configuration's `fuse` section, each export a LUN shown as a file.
//
// The FUSE fabric (its /dev/fuse transport in the native addon) is imported
// only when a configuration has a `fuse` section.

import type { ScsiCore } from '../core/engine.js';
import type { FuseFabric } from '../fabrics/fuse/fabric.js';
import type { Logger } from '../util/log.js';
import type { FuseMountConfig, LunkitConfig } from './config-schema.js';
import type { OpenBackstore } from './runtime-objects.js';

type Undo = () => Promise<void> | void;
type BackstoreMap = ReadonlyMap<string, OpenBackstore>;

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The running FUSE mounts of a runtime, by mount directory. */
export class FuseMounts {
  private readonly mounts = new Map<string, FuseFabric>();

  constructor(
    private readonly core: ScsiCore,
    private readonly logger: Logger,
  ) {}

  /** Mount directory -> file paths of its exports. */
  files(): Array<{ mountpoint: string; files: string[] }> {
    return [...this.mounts].map(([mountpoint, f]) => ({ mountpoint, files: f.exports().map((e) => f.pathOf(e.name)) }));
  }

  /**
   * Brings the mounts from prev to next. Every step it takes pushes its
   * inverse on `undo`, so a later failure in apply() restores prev.
   */
  async apply(prev: LunkitConfig, next: LunkitConfig, prevMap: BackstoreMap, nextMap: BackstoreMap, undo: Undo[], setStep: (s: string) => void): Promise<void> {
    const before = prev.fuse ?? {};
    const after = next.fuse ?? {};
    for (const [mnt, m] of Object.entries(before)) {
      const n = after[mnt] as FuseMountConfig | undefined;
      if (n && n.directIo === m.directIo && n.allowOther === m.allowOther) continue;
      setStep(`unmounting FUSE ${mnt}`);
      await this.unmount(mnt);
      undo.push(() => this.mount(mnt, m, prevMap));
    }
    for (const [mnt, m] of Object.entries(after)) {
      const running = this.mounts.get(mnt);
      if (!running) {
        setStep(`mounting FUSE ${mnt}`);
        // Pushed first: a mount that fails half-way is unmounted again.
        undo.push(() => this.unmount(mnt));
        await this.mount(mnt, m, nextMap);
        continue;
      }
      const old = before[mnt];
      for (const [name, e] of Object.entries(m.exports)) {
        const o = old.exports[name] as (typeof old.exports)[string] | undefined;
        const device = nextMap.get(e.backstore)!.device;
        if (o && same(o, e) && prevMap.get(o.backstore)?.device === device) continue;
        setStep(`FUSE export ${mnt}/${name}`);
        await running.setExport(name, { device, readOnly: e.readOnly });
        undo.push(async () => {
          if (o) await running.setExport(name, { device: prevMap.get(o.backstore)!.device, readOnly: o.readOnly });
          else running.deleteExport(name);
        });
      }
      for (const [name, o] of Object.entries(old.exports)) {
        if (name in m.exports) continue;
        running.deleteExport(name);
        undo.push(async () => {
          await running.setExport(name, { device: prevMap.get(o.backstore)!.device, readOnly: o.readOnly });
        });
      }
    }
  }

  /** Unmounts everything (before the core flushes on stop). */
  async closeAll(): Promise<void> {
    for (const mnt of [...this.mounts.keys()]) {
      await this.unmount(mnt).catch((e: unknown) => this.logger.warn('FUSE unmount failed', { mountpoint: mnt, err: e }));
    }
  }

  private async mount(mnt: string, m: FuseMountConfig, map: BackstoreMap): Promise<void> {
    const { FuseFabric } = await import('../fabrics/fuse/fabric.js');
    const fabric = new FuseFabric(this.core, { mountpoint: mnt, directIo: m.directIo, allowOther: m.allowOther, logger: this.logger });
    try {
      for (const [name, e] of Object.entries(m.exports)) await fabric.setExport(name, { device: map.get(e.backstore)!.device, readOnly: e.readOnly });
      await fabric.mount();
    } catch (e) {
      await fabric.close().catch(() => {});
      throw e;
    }
    this.mounts.set(mnt, fabric);
    this.logger.info('FUSE mounted', { mountpoint: mnt, files: Object.keys(m.exports) });
  }

  private async unmount(mnt: string): Promise<void> {
    const f = this.mounts.get(mnt);
    if (!f) return;
    this.mounts.delete(mnt);
    await f.close();
    this.logger.info('FUSE unmounted', { mountpoint: mnt });
  }
}
