// The task set of one logical unit (SAM-5 §8: task attributes and the
// ordering they impose). TST=000b in the control mode page: one task set for
// all I_T nexuses.
//
//   SIMPLE          starts when every earlier ORDERED task has completed
//   ORDERED         starts when every earlier task has completed
//   HEAD OF QUEUE   starts at once
//
// The uncontended path (only SIMPLE tasks in flight) allocates nothing but the
// task record: no promise, no closure.

import type { TaskAttr } from './types.js';

export class Task {
  done = false;
  /** Aborted by task management: the engine answers { aborted: true }. */
  aborted = false;
  /** Tasks that must complete before this one may start. */
  blockers = 0;
  /** Resolves the start wait (set only when the task had to wait). */
  private startWaiter: (() => void) | null = null;
  private doneWaiters: (() => void)[] | null = null;
  private dependents: Task[] | null = null;

  constructor(
    readonly nexusId: number,
    readonly tag: number,
    /** LUN number as the issuing nexus addressed it. */
    readonly lun: number,
    readonly attr: TaskAttr,
  ) {}

  /** Resolves when the task has finished (completed or terminated). */
  whenDone(): Promise<void> {
    if (this.done) return Promise.resolve();
    return new Promise<void>((resolve) => {
      (this.doneWaiters ??= []).push(resolve);
    });
  }

  /** @internal */
  addDependent(t: Task): void {
    (this.dependents ??= []).push(t);
    t.blockers++;
  }

  /** @internal Wait for blockers; resolves at once if an abort arrives meanwhile. */
  waitStart(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.startWaiter = resolve;
    });
  }

  /** @internal */
  wake(): void {
    const w = this.startWaiter;
    this.startWaiter = null;
    if (w) w();
  }

  /** @internal */
  finish(): void {
    this.done = true;
    const deps = this.dependents;
    this.dependents = null;
    if (deps) {
      for (const d of deps) {
        d.blockers--;
        if (d.blockers === 0) d.wake();
      }
    }
    const w = this.doneWaiters;
    this.doneWaiters = null;
    if (w) for (const fn of w) fn();
  }
}

export class TaskSet {
  /** Tasks not yet finished, in arrival order (Set keeps insertion order). */
  readonly tasks = new Set<Task>();
  private orderedInFlight = 0;

  get size(): number {
    return this.tasks.size;
  }

  /**
   * Enter a task. Returns undefined when it may start now, or a promise that
   * resolves when it may start (or when it is aborted while waiting).
   */
  enter(task: Task): Promise<void> | undefined {
    const attr = task.attr;
    if (attr === 'head-of-queue') {
      this.tasks.add(task);
      return undefined;
    }
    if (attr === 'ordered') {
      for (const t of this.tasks) t.addDependent(task);
      this.orderedInFlight++;
    } else if (this.orderedInFlight > 0) {
      for (const t of this.tasks) if (t.attr === 'ordered') t.addDependent(task);
    }
    this.tasks.add(task);
    return task.blockers > 0 ? task.waitStart() : undefined;
  }

  /** The task has completed or been terminated: let dependents start. */
  leave(task: Task): void {
    if (!this.tasks.delete(task)) return;
    if (task.attr === 'ordered') this.orderedInFlight--;
    task.finish();
  }

  find(nexusId: number, tag: number): Task | undefined {
    for (const t of this.tasks) if (t.nexusId === nexusId && t.tag === tag && !t.aborted) return t;
    return undefined;
  }

  /**
   * Mark matching tasks aborted and wake those still waiting to start.
   * Returns them so the caller can wait for their termination.
   */
  abortWhere(pred: (t: Task) => boolean): Task[] {
    const hit: Task[] = [];
    for (const t of this.tasks) {
      if (t.aborted || !pred(t)) continue;
      t.aborted = true;
      t.wake();
      hit.push(t);
    }
    return hit;
  }
}

/** Wait until every task has terminated. */
export async function allDone(tasks: Task[]): Promise<void> {
  for (const t of tasks) await t.whenDone();
}

/**
 * Wait until every task has terminated, at most `ms`: true when they all
 * did. A task stuck in its backstore (a hung device) keeps running after
 * this gives up; it still holds its LBA range lock, so a later write to
 * the same blocks cannot overtake it, and its own answer is suppressed
 * (aborted). The caller gets to answer a TMF before the initiator's
 * timeout instead of hanging with the device.
 */
export async function allDoneWithin(tasks: Task[], ms: number): Promise<boolean> {
  if (tasks.every((t) => t.done)) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([allDone(tasks).then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
