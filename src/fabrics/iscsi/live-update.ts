// Applying a target's new configuration to its live sessions (the daemon's
// "every change applies live", LIO's configfs edits on a running target).
//
// Per session of a TPG:
// - the TPG is gone or disabled, or the initiator lost its ACL (and demo mode
//   is off): the session ends;
// - otherwise it takes the new TPG config (attributes, CmdSN depth) and its
//   LUN map is recomputed. When the set of LUNs it sees changed (a LUN added,
//   removed, or pointing at another device) the core queues REPORTED LUNS
//   DATA HAS CHANGED (SPC-4 §6.33, unit attention 3Fh/0Eh) on its nexus.
// - A LUN that went away disappears from the map at once, so new commands to
//   it get LOGICAL UNIT NOT SUPPORTED; the commands already running on it are
//   drained for a short while, then aborted in the core and answered CHECK
//   CONDITION LOGICAL UNIT NOT SUPPORTED (the initiator asked for no abort,
//   so it must not be left waiting). When drain() resolves, no command of a
//   removed LUN runs any more, so the daemon may close its backstore.
// CHAP, authentication, login parameters and the alias are read at login, so
// they apply to the next login without touching live sessions.

import type { LunMapping, NexusHandle, ScsiDeviceHandle } from '../../core/types.js';
import type { IscsiCore, IscsiLogger, TpgConfig } from './config.js';
import type { IscsiSession } from './session.js';
import { computeLuns, initiatorAllowed } from './acl.js';
import type { ScsiTask } from './scsi-command.js';
import { SENSE_LUN_NOT_SUPPORTED } from './fabric-sense.js';

/** A LUN that a session no longer sees (or that now points at another device). */
export interface RemovedLun {
  session: IscsiSession;
  lun: number;
  device: ScsiDeviceHandle;
}

export interface SessionChanges {
  /** Sessions to end, with the reason. */
  end: Array<{ session: IscsiSession; reason: string }>;
  /** Nexuses whose visible LUN set changed. */
  lunsChanged: NexusHandle[];
  removed: RemovedLun[];
}

/**
 * Bring the sessions of one TPG in line with its new config (undefined: the
 * TPG was removed). Maps are swapped here; ending sessions, the unit
 * attention and the drain are left to the caller so it can order them.
 */
export function reconcileSessions(sessions: Iterable<IscsiSession>, tpg: TpgConfig | undefined, out: SessionChanges): void {
  for (const s of sessions) {
    if (s.closed || s.type !== 'normal') continue;
    const why = !tpg ? 'TPG removed' : !tpg.enabled ? 'TPG disabled' : !initiatorAllowed(tpg, s.initiatorName) ? 'ACL removed' : undefined;
    if (why !== undefined || !tpg) {
      out.end.push({ session: s, reason: why ?? 'TPG removed' });
      continue;
    }
    s.tpg = tpg;
    s.window.setDepth(tpg.attributes.defaultCmdsnDepth);
    const map = s.luns;
    if (!map) continue;
    const before = map.current();
    const after = computeLuns(tpg, s.initiatorName);
    const d = diffLuns(before, after);
    map.replace(after);
    if (d.changed && s.nexus) out.lunsChanged.push(s.nexus);
    for (const lun of d.gone) out.removed.push({ session: s, lun, device: before.get(lun)!.device });
  }
}

/**
 * LUN numbers gone (or now another device) and whether the visible set
 * changed. A read-only flag flip alone is not a change of the LUN inventory.
 */
export function diffLuns(before: ReadonlyMap<number, LunMapping>, after: ReadonlyMap<number, LunMapping>): { changed: boolean; gone: number[] } {
  const gone: number[] = [];
  for (const [lun, m] of before) {
    const n = after.get(lun);
    if (!n || n.device !== m.device) gone.push(lun);
  }
  let changed = gone.length > 0;
  if (!changed) for (const lun of after.keys()) if (!before.has(lun)) changed = true;
  return { changed, gone };
}

export interface DrainHost {
  core: IscsiCore;
  log: IscsiLogger;
  /** Commands of a session on a LUN that are running in the core. */
  submittedTasks(session: IscsiSession, lun: number): ScsiTask[];
}

/**
 * Wait up to drainMs for the running commands of removed LUNs, then abort
 * the rest in the core and wait (bounded) for them to come back.
 */
export async function drainRemoved(host: DrainHost, removed: RemovedLun[], drainMs: number): Promise<void> {
  const pending = new Map<ScsiTask, RemovedLun>();
  for (const r of removed) for (const t of host.submittedTasks(r.session, r.lun)) pending.set(t, r);
  if (pending.size === 0) return;
  if (await settleWithin([...pending.keys()], drainMs)) return;
  // Abort what is left, grouped by device: one task-set walk per device.
  const byDevice = new Map<ScsiDeviceHandle, Set<number>>();
  const left: ScsiTask[] = [];
  for (const [t, r] of pending) {
    if (t.phase === 'done' || !r.session.nexus) continue;
    left.push(t);
    t.answerAbortWith(SENSE_LUN_NOT_SUPPORTED);
    let ids = byDevice.get(r.device);
    if (!ids) byDevice.set(r.device, (ids = new Set()));
    ids.add(r.session.nexus.id);
  }
  host.log.info?.('iSCSI removed LUN: aborting commands still running', { count: left.length });
  for (const [device, ids] of byDevice) host.core.abortTasksOf?.(device, ids);
  if (!(await settleWithin(left, Math.max(1000, drainMs)))) {
    host.log.warn?.('iSCSI removed LUN: commands still running after abort', { count: left.filter((t) => t.phase !== 'done').length });
  }
}

/** True when every task ended within `ms`. */
function settleWithin(tasks: ScsiTask[], ms: number): Promise<boolean> {
  if (tasks.every((t) => t.phase === 'done')) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    void Promise.all(tasks.map((t) => t.whenDone())).then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
