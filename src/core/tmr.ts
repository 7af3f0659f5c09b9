// Task management functions (SAM-5 §7, RFC 7143 §11.5). Every function that
// terminates tasks resolves after those tasks have finished, so the fabric
// can send the TMF response knowing no aborted task will answer; but at most
// after TMF_TASK_WAIT_MS: a task stuck in a hung backstore must not hold the
// TMF past the initiator's own timeout (open-iscsi: 15 s for ABORT TASK,
// 30 s for LUN RESET), which would escalate to a session reset. The stuck
// task's answer is suppressed when it finally ends (it is marked aborted),
// and its LBA range lock keeps later writes to its blocks behind it.

import type { NexusHandle, TmfRequest, TmfResponse } from './types.js';
import type { ScsiDevice } from './device.js';
import { allDoneWithin, type Task } from './task-set.js';
import { clearMediumRemovalPrevention } from './sbc-commands.js';

/** What the task manager needs of the core. */
export interface TmfScope {
  devices(): Iterable<ScsiDevice>;
  /** The device a nexus sees at a LUN, if mapped. */
  deviceAt(nexus: NexusHandle, lun: number): ScsiDevice | undefined;
  /**
   * The SCSI target device a nexus reaches, as far as a target reset goes:
   * the LUs mapped to any nexus of the same target (same protocol and target
   * name) and those nexuses. One daemon hosts many targets (and NBD/FUSE), so
   * a reset sent through one target must not reach the others.
   */
  targetOf(nexus: NexusHandle): { devices: ScsiDevice[]; nexuses: NexusHandle[] };
  /** Ask the fabrics to end these nexuses except `except` (their sessions go away). */
  endNexuses(except: NexusHandle, reason: string, which: Iterable<NexusHandle>): void;
  /** How long a TMF waits for the tasks it aborted, ms (default TMF_TASK_WAIT_MS). */
  readonly tmfTaskWaitMs?: number;
}

/** Default bound on a TMF's wait for its aborted tasks: well inside open-iscsi's 15 s abort timeout. */
export const TMF_TASK_WAIT_MS = 5000;

/**
 * Abort tasks on a device. Tasks of other nexuses than `issuer` are aborted
 * silently (control mode page TAS=0), and their nexuses get COMMANDS CLEARED
 * BY ANOTHER INITIATOR (SAM-5 §5.6) unless `otherUa` is false.
 */
export function abortOnDevice(dev: ScsiDevice, pred: (t: Task) => boolean, issuer: NexusHandle | undefined, otherUa: boolean): Task[] {
  const hit = dev.taskSet.abortWhere(pred);
  if (otherUa && issuer) {
    const others = new Set<number>();
    for (const t of hit) if (t.nexusId !== issuer.id) others.add(t.nexusId);
    for (const id of others) dev.ua.add(id, 'UA_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR');
  }
  return hit;
}

/** LOGICAL UNIT RESET of one device (SAM-5 §7.7), also the per-LU part of a target reset. */
export async function resetDevice(dev: ScsiDevice, ua: 'UA_BUS_DEVICE_RESET' | 'UA_POWER_ON_RESET', waitMs = TMF_TASK_WAIT_MS): Promise<void> {
  const hit = dev.taskSet.abortWhere(() => true);
  await allDoneWithin(hit, waitMs);
  // SPC-2 §5.5.1: a reset releases RESERVE(6); persistent reservations stay.
  dev.reservations.reset();
  // SPC-4 §6.13: a reset clears PREVENT ALLOW MEDIUM REMOVAL state.
  clearMediumRemovalPrevention(dev.backstore);
  // Every I_T nexus of the LU learns of the reset (a nexus not yet seen gets POWER ON anyway).
  dev.queueUnitAttentionAll(ua);
}

export async function runTmf(scope: TmfScope, req: TmfRequest): Promise<TmfResponse> {
  const nexus = req.nexus;
  const waitMs = scope.tmfTaskWaitMs ?? TMF_TASK_WAIT_MS;
  const allDone = (tasks: Task[]): Promise<boolean> => allDoneWithin(tasks, waitMs);
  switch (req.fn) {
    case 'target-warm-reset':
    case 'target-cold-reset': {
      const target = scope.targetOf(nexus);
      await Promise.all(target.devices.map((d) => resetDevice(d, 'UA_POWER_ON_RESET', waitMs)));
      // RFC 7143 §11.5.1: after a TARGET COLD RESET every session is terminated.
      // The other nexuses end now, so a reset established later (e.g. a LUN
      // RESET) cannot reach them: their next login is a new nexus that reports
      // POWER ON only (SAM-5 §6.3). The issuer's own fabric ends it once the
      // TMF response is sent.
      if (req.fn === 'target-cold-reset') scope.endNexuses(nexus, 'target cold reset', target.nexuses);
      return 'function-complete';
    }
    case 'it-nexus-reset': {
      const waits: Task[] = [];
      for (const dev of scope.devices()) {
        waits.push(...dev.taskSet.abortWhere((t) => t.nexusId === nexus.id));
      }
      await allDone(waits);
      for (const dev of scope.devices()) {
        dev.reservations.nexusLost(nexus);
        clearMediumRemovalPrevention(dev.backstore, nexus.id);
        if (dev.ua.knows(nexus.id)) dev.queueUnitAttention(nexus, 'UA_IT_NEXUS_LOSS');
      }
      return 'function-complete';
    }
    case 'clear-aca':
      // NACA is not supported (the CONTROL byte NACA bit is refused), so there is never an ACA.
      return 'function-rejected';
    default:
      break;
  }

  const dev = scope.deviceAt(nexus, req.lun);
  if (!dev) return 'incorrect-lun';
  switch (req.fn) {
    case 'abort-task': {
      if (req.refTag === undefined) return 'function-rejected';
      const task = dev.taskSet.find(nexus.id, req.refTag);
      // Not found: it completed before the abort arrived (RFC 7143 §11.6.1).
      if (!task) return 'task-does-not-exist';
      dev.taskSet.abortWhere((t) => t === task);
      await allDone([task]);
      return 'function-complete';
    }
    case 'abort-task-set': {
      // SAM-5 §7.3: only the tasks of the issuing nexus.
      await allDone(dev.taskSet.abortWhere((t) => t.nexusId === nexus.id));
      return 'function-complete';
    }
    case 'clear-task-set': {
      // SAM-5 §7.4: every task in the task set, whoever issued it.
      await allDone(abortOnDevice(dev, () => true, nexus, true));
      return 'function-complete';
    }
    case 'lun-reset':
      await resetDevice(dev, 'UA_BUS_DEVICE_RESET', waitMs);
      return 'function-complete';
    case 'query-task': {
      if (req.refTag === undefined) return 'function-rejected';
      return dev.taskSet.find(nexus.id, req.refTag) ? 'function-succeeded' : 'function-complete';
    }
    case 'query-task-set': {
      for (const t of dev.taskSet.tasks) if (t.nexusId === nexus.id && !t.aborted) return 'function-succeeded';
      return 'function-complete';
    }
    case 'query-async-event':
      return dev.ua.knows(nexus.id) && dev.ua.queueFor(nexus.id).size > 0 ? 'function-succeeded' : 'function-complete';
    default:
      return 'not-supported';
  }
}
