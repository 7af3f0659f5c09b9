// Task Management Function Request/Response (RFC 7143 §11.5, §11.6), mapped
// onto the core's SAM-5 task management.
//
// ABORT TASK (§11.5.1): a task still collecting Data-Out lives only here and
// is aborted locally; a task already in the core is aborted there (its
// submit() resolves with aborted and no response is sent). A task we never
// saw: RefCmdSN inside the window and before the TMF's CmdSN -> "function
// complete" (the command is considered received and aborted); otherwise
// "task does not exist".

import type { TaskMgmtRequestPdu } from '../../protocols/iscsi/pdu-types.js';
import { TmfFunction as Fn, TmfResponse as Resp } from '../../protocols/iscsi/constants.js';
import type { TmfFunction, TmfResponse } from '../../core/types.js';
import type { IscsiCore } from './config.js';
import type { TaskTable } from './hosts.js';
import type { IscsiSession } from './session.js';
import type { ScsiTask } from './scsi-command.js';

/** What the TMF handler needs of the connection the request came on (FullFeature provides it). */
export interface TmfHost extends TaskTable {
  readonly session: Pick<IscsiSession, 'errorRecoveryLevel' | 'nexus' | 'allTaskTables' | 'findTask' | 'window' | 'recovery'>;
  readonly core: Pick<IscsiCore, 'taskManagement'>;
  sendTmfResponse(pdu: TaskMgmtRequestPdu, response: number): void;
  /** §11.5.1 b): treat a CmdSN never received as received. */
  considerReceived(cmdSN: number): void;
  /** TASK REASSIGN: take `task` over from a failed connection's table. */
  adopt(task: ScsiTask, from: TaskTable, expDataSN: number): boolean;
  /** Close every connection of the session: the others now, this one once its response is flushed. */
  closeSessionConnections(reason: string): void;
}

const CORE_FN: Partial<Record<number, TmfFunction>> = {
  [Fn.ABORT_TASK]: 'abort-task',
  [Fn.ABORT_TASK_SET]: 'abort-task-set',
  [Fn.CLEAR_ACA]: 'clear-aca',
  [Fn.CLEAR_TASK_SET]: 'clear-task-set',
  [Fn.LOGICAL_UNIT_RESET]: 'lun-reset',
  [Fn.TARGET_WARM_RESET]: 'target-warm-reset',
  [Fn.TARGET_COLD_RESET]: 'target-cold-reset',
};

export function wireTmfResponse(r: TmfResponse): number {
  switch (r) {
    case 'function-complete':
    case 'function-succeeded':
      return Resp.FUNCTION_COMPLETE;
    case 'task-does-not-exist':
      return Resp.TASK_DOES_NOT_EXIST;
    case 'incorrect-lun':
      return Resp.LUN_DOES_NOT_EXIST;
    case 'not-supported':
      return Resp.FUNCTION_NOT_SUPPORTED;
    case 'function-rejected':
      return Resp.FUNCTION_REJECTED;
  }
}

export async function handleTmf(host: TmfHost, pdu: TaskMgmtRequestPdu): Promise<void> {
  const fn = pdu.function;
  let response: number;
  if (fn === Fn.TASK_REASSIGN) {
    // Below ERL 2 (§11.5.1): allegiance reassignment is not supported.
    if (host.session.errorRecoveryLevel < 2) response = Resp.TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED;
    else {
      const r = taskReassign(host, pdu);
      host.sendTmfResponse(pdu, r.response);
      // The response goes first, then the task's Data-In/R2T/status (§6.2.2).
      r.then?.();
      return;
    }
  } else {
    const coreFn = CORE_FN[fn];
    const nexus = host.session.nexus;
    if (coreFn === undefined || !nexus) {
      response = Resp.FUNCTION_NOT_SUPPORTED;
    } else if (fn === Fn.ABORT_TASK) {
      response = await abortTask(host, pdu);
    } else {
      // Tasks still collecting data are ours alone: abort them here first.
      const all = fn === Fn.TARGET_WARM_RESET || fn === Fn.TARGET_COLD_RESET;
      // With several connections (MC/S) or held ones (ERL 2), all of the session's.
      if (fn !== Fn.CLEAR_ACA) for (const table of host.session.allTaskTables()) table.abortLocalTasks((t) => all || t.lun === pdu.lun);
      const r = await host.core.taskManagement({ nexus, fn: coreFn, lun: pdu.lun });
      response = wireTmfResponse(r);
    }
  }
  host.sendTmfResponse(pdu, response);
  if (fn === Fn.TARGET_COLD_RESET && response === Resp.FUNCTION_COMPLETE) {
    // §11.6.1: after a cold reset the target closes all connections (MC/S:
    // the others at once, this one after its response is flushed).
    host.closeSessionConnections('target cold reset');
  }
}

/**
 * TASK REASSIGN (§11.5.1, §6.2.2): move a task of a failed connection that
 * was logged out for recovery (or reinstated) to this connection.
 */
function taskReassign(host: TmfHost, pdu: TaskMgmtRequestPdu): { response: number; then?: () => void } {
  const where = host.session.findTask(pdu.referencedTaskTag);
  if (where.kind === 'none') return { response: Resp.TASK_DOES_NOT_EXIST };
  if (where.task.lun !== pdu.lun) return { response: Resp.TASK_DOES_NOT_EXIST };
  if (where.kind === 'live' || !where.released) return { response: Resp.TASK_STILL_ALLEGIANT };
  const { task, table: from } = where;
  const here = host.task(task.itt);
  if (here !== undefined && here.phase !== 'done') return { response: Resp.FUNCTION_REJECTED };
  return {
    response: Resp.FUNCTION_COMPLETE,
    then: () => {
      if (!host.adopt(task, from, pdu.expDataSN >>> 0)) return;
      host.session.recovery?.prune();
    },
  };
}

async function abortTask(host: TmfHost, pdu: TaskMgmtRequestPdu): Promise<number> {
  // MC/S: the task may live on another connection of the session (§11.5.1).
  const where = host.session.findTask(pdu.referencedTaskTag);
  const task = where.kind === 'none' ? undefined : where.task;
  if (task && task.phase !== 'done') {
    if (task.phase !== 'submitted') {
      task.abortLocal();
      return Resp.FUNCTION_COMPLETE;
    }
    const r = await host.core.taskManagement({
      nexus: host.session.nexus!,
      fn: 'abort-task',
      lun: pdu.lun,
      refTag: pdu.referencedTaskTag,
    });
    return wireTmfResponse(r);
  }
  if (host.session.window.refCmdSnPending(pdu.refCmdSN, pdu.cmdSN)) {
    host.considerReceived(pdu.refCmdSN);
    return Resp.FUNCTION_COMPLETE;
  }
  return Resp.TASK_DOES_NOT_EXIST;
}
