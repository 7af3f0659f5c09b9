// The attach holder: a process that serves one source (image file, NBD
// export or remote iSCSI LUN) as a single file in a FUSE directory, with its own ScsiCore and one
// device, the way nbdfuse does for NBD. `lunkit attach` runs it detached
// (holder-main.ts) or in the foreground; `lunkit mount` puts a loop device on
// its file. Stop flushes the device before the FUSE mount goes away, so a
// SIGTERM loses no acknowledged write; an iSCSI source then logs out
// (RFC 7143 §11.14). An iSCSI holder records its session (TSIH, ISID,
// connections, recovery counters) in its state file and rewrites it on the
// session's 'recovery' events, for `lunkit sessions --initiator`.

import { rmdir } from 'node:fs/promises';
import { ScsiCore } from '../core/engine.js';
import type { BackstoreOps } from '../core/types.js';
import { FuseFabric } from '../fabrics/fuse/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { redactIscsiUrl } from './redact.js';
import { openSource, type AttachSource } from './source.js';
import { makeMountpoint, removeAttach, removeMadeDirs, saveAttach, type AttachState, type InitiatorSessionInfo } from './state.js';
import type { HolderPlan } from './plan.js';

/**
 * After a recovery event the session may still change without another event
 * (ERL 2 logs a replacement connection in after 'connection-recovered'; the
 * initiator has no event for a connection added): look again at these delays.
 */
const SETTLE_MS = [250, 1000, 3000];

/** A backstore that holds an initiator session (src/backstores/iscsi), seen without loading the initiator. */
interface SessionSource {
  sessionInfo(): InitiatorSessionInfo;
  onSessionChange(listener: () => void): () => void;
}

function isSessionSource(ops: BackstoreOps): ops is BackstoreOps & SessionSource {
  return 'sessionInfo' in ops && typeof ops.sessionInfo === 'function' && 'onSessionChange' in ops && typeof ops.onSessionChange === 'function';
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
  // A `[file]` in a directory that does not exist: we make it, and remove it when we stop.
  let madeDir: string | undefined;
  const removeDirs = (): Promise<void> =>
    plan.ownsMountpoint ? rmdir(plan.mountpoint).catch(() => {}) : removeMadeDirs(plan.mountpoint, madeDir);
  try {
    if (!plan.ownsMountpoint) madeDir = await makeMountpoint(plan.mountpoint);
    ops = await openSource(plan.source, { blockSize: plan.blockSize, readOnly: plan.readOnly, logger });
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
      madeDir,
      startedAt: new Date().toISOString(),
    };
    const source = isSessionSource(ops) ? ops : undefined;
    if (source) state.initiator = source.sessionInfo();
    await saveAttach(state);
    // After the first write: the recorder's writes never overlap another one.
    const recorder = source ? new SessionRecorder(state, source, logger) : undefined;
    const f = fabric;
    const o = ops;
    let stopping: Promise<void> | undefined;
    return {
      state,
      fabric: f,
      stop: () =>
        (stopping ??= (async () => {
          recorder?.stop();
          await f.close().catch((e: unknown) => logger.warn('FUSE close failed', { err: e }));
          await core.flushAll().catch((e: unknown) => logger.warn('flush failed', { err: e }));
          await o.close().catch((e: unknown) => logger.warn('backstore close failed', { err: e }));
          await removeAttach(plan.id).catch(() => {});
          await removeDirs();
        })()),
    };
  } catch (e) {
    await fabric?.close().catch(() => {});
    await ops?.close().catch(() => {});
    await removeDirs();
    throw e;
  }
}

/**
 * Rewrites the state file when the session's record changes: on each
 * 'recovery' event and a few times after it (SETTLE_MS). One write at a
 * time; a change seen during a write is written after it.
 */
class SessionRecorder {
  private last: string;
  private saving = false;
  private again = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly state: AttachState,
    private readonly source: SessionSource,
    private readonly logger: Logger,
  ) {
    this.last = sessionKey(state.initiator as InitiatorSessionInfo);
    this.unsubscribe = source.onSessionChange(() => this.changed());
    // A change between the first write and the subscription.
    this.record();
  }

  private changed(): void {
    if (this.stopped) return;
    this.record();
    for (const ms of SETTLE_MS) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.record();
      }, ms);
      t.unref();
      this.timers.add(t);
    }
  }

  private record(): void {
    if (this.stopped) return;
    if (this.saving) {
      this.again = true;
      return;
    }
    const now = this.source.sessionInfo();
    const key = sessionKey(now);
    if (key === this.last) return;
    this.last = key;
    this.state.initiator = now;
    this.saving = true;
    saveAttach(this.state)
      .catch((e: unknown) => this.logger.warn('cannot record the session', { err: e }))
      .finally(() => {
        this.saving = false;
        if (this.again) {
          this.again = false;
          this.record();
        }
      });
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
