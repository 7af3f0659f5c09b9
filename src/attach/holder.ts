// The attach holder: a process that serves one source (image file or NBD
// export) as a single file in a FUSE directory, with its own ScsiCore and one
// device, the way nbdfuse does for NBD. `lunkit attach` runs it detached
// (holder-main.ts) or in the foreground; `lunkit mount` puts a loop device on
// its file. Stop flushes the device before the FUSE mount goes away, so a
// SIGTERM loses no acknowledged write.

import { rmdir } from 'node:fs/promises';
import { ScsiCore } from '../core/engine.js';
import type { BackstoreOps } from '../core/types.js';
import { FuseFabric } from '../fabrics/fuse/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { openSource } from './source.js';
import { removeAttach, saveAttach, type AttachState } from './state.js';
import type { HolderPlan } from './plan.js';

export interface Holder {
  readonly state: AttachState;
  readonly fabric: FuseFabric;
  /** Flush, unmount, close the backstore, remove the state. Idempotent. */
  stop(): Promise<void>;
}

/** Starts serving in this process; resolves once the file is visible and the state recorded. */
export async function runHolder(plan: HolderPlan, logger: Logger = silentLogger): Promise<Holder> {
  let ops: BackstoreOps | undefined;
  let fabric: FuseFabric | undefined;
  const core = new ScsiCore();
  try {
    ops = await openSource(plan.source, { blockSize: plan.blockSize, readOnly: plan.readOnly });
    const device = core.createDevice(ops, { name: plan.name.slice(0, 32), readOnly: plan.readOnly || !ops.caps.canWrite });
    fabric = new FuseFabric(core, { mountpoint: plan.mountpoint, mkdir: true, directIo: plan.directIo, logger });
    await fabric.setExport(plan.name, { device, readOnly: plan.readOnly });
    await fabric.mount();
    const state: AttachState = {
      id: plan.id,
      pid: process.pid,
      source: plan.source,
      mountpoint: fabric.mountpoint,
      file: fabric.pathOf(plan.name),
      readOnly: plan.readOnly || !ops.caps.canWrite,
      ownsMountpoint: plan.ownsMountpoint,
      startedAt: new Date().toISOString(),
    };
    await saveAttach(state);
    const f = fabric;
    const o = ops;
    let stopping: Promise<void> | undefined;
    return {
      state,
      fabric: f,
      stop: () =>
        (stopping ??= (async () => {
          await f.close().catch((e: unknown) => logger.warn('FUSE close failed', { err: e }));
          await core.flushAll().catch((e: unknown) => logger.warn('flush failed', { err: e }));
          await o.close().catch((e: unknown) => logger.warn('backstore close failed', { err: e }));
          await removeAttach(plan.id).catch(() => {});
          if (plan.ownsMountpoint) await rmdir(plan.mountpoint).catch(() => {});
        })()),
    };
  } catch (e) {
    await fabric?.close().catch(() => {});
    await ops?.close().catch(() => {});
    if (plan.ownsMountpoint) await rmdir(plan.mountpoint).catch(() => {});
    throw e;
  }
}
