// The attach holder: a process that serves one source (image file, NBD
// export or remote iSCSI LUN) as a single file in a FUSE directory, with its own ScsiCore and one
// device, the way nbdfuse does for NBD. `lunkit attach` runs it detached
// (holder-main.ts) or in the foreground; `lunkit mount` puts a loop device on
// its file. Stop flushes the device before the FUSE mount goes away, so a
// SIGTERM loses no acknowledged write; an iSCSI source then logs out
// (RFC 7143 §11.14). An iSCSI holder records its session (TSIH, ISID,
// connections) in its state file and rewrites it when that changes, for
// `lunkit sessions --initiator`.

import { rmdir } from 'node:fs/promises';
import { ScsiCore } from '../core/engine.js';
import type { BackstoreOps } from '../core/types.js';
import { FuseFabric } from '../fabrics/fuse/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { redactIscsiUrl } from './redact.js';
import { openSource, type AttachSource } from './source.js';
import { removeAttach, saveAttach, type AttachState, type InitiatorSessionInfo } from './state.js';
import type { HolderPlan } from './plan.js';

/** How often an iSCSI holder looks at its session for connection changes. */
const SESSION_REFRESH_MS = 1000;

/** A backstore that holds an initiator session (iscsi-backstore.ts), seen without importing it. */
function sessionInfoOf(ops: BackstoreOps): (() => InitiatorSessionInfo) | undefined {
  const f = (ops as { sessionInfo?: unknown }).sessionInfo;
  return typeof f === 'function' ? () => (f as () => InitiatorSessionInfo).call(ops) : undefined;
}

/** The source as recorded in the state file: no CHAP password. */
function recordedSource(s: AttachSource): AttachSource {
  return s.kind === 'iscsi' ? { ...s, url: redactIscsiUrl(s.url) } : s;
}

/** What changes the record (inFlight alone does not). */
const sessionKey = (i: InitiatorSessionInfo): string => JSON.stringify({ ...i, inFlight: 0 });

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
      source: recordedSource(plan.source),
      mountpoint: fabric.mountpoint,
      file: fabric.pathOf(plan.name),
      readOnly: plan.readOnly || !ops.caps.canWrite,
      ownsMountpoint: plan.ownsMountpoint,
      startedAt: new Date().toISOString(),
    };
    const info = sessionInfoOf(ops);
    if (info) state.initiator = info();
    await saveAttach(state);
    let refresh: NodeJS.Timeout | undefined;
    if (info) {
      let last = sessionKey(state.initiator as InitiatorSessionInfo);
      let saving = false;
      refresh = setInterval(() => {
        if (saving) return;
        const now = info();
        const key = sessionKey(now);
        if (key === last) return;
        last = key;
        state.initiator = now;
        saving = true;
        saveAttach(state)
          .catch((e: unknown) => logger.warn('cannot record the session', { err: e }))
          .finally(() => (saving = false));
      }, SESSION_REFRESH_MS);
      refresh.unref();
    }
    const f = fabric;
    const o = ops;
    let stopping: Promise<void> | undefined;
    return {
      state,
      fabric: f,
      stop: () =>
        (stopping ??= (async () => {
          if (refresh) clearInterval(refresh);
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
