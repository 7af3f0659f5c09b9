// Connection recovery of an ERL 2 session (RFC 7143 §6.2.2, §7.1.4, §11.14.3).
//
// When a connection of an ERL 2 session fails (its socket closes without a
// Logout), its tasks are not aborted: its task table (FullFeature) keeps
// them (results, read buffers, received write data) for DefaultTime2Wait +
// DefaultTime2Retain seconds. The initiator then either logs the failed CID
// out for recovery from another connection (Logout reason 2) or reinstates
// it (a Login with the same TSIH and CID); after that, each task may be moved
// to a live connection with TASK REASSIGN (tmf.ts). Before that the tasks are
// "still allegiant" to the failed connection (§11.6.1 response 3).
//
// When the time runs out, what is left is aborted in the core and freed; an
// ERL 2 session whose connections have all gone ends then too.

import type { TaskTable, TaskWhere } from './hosts.js';

interface FailedConnection {
  readonly cid: number;
  readonly table: TaskTable;
  /** Logged out for recovery or reinstated: its tasks may be reassigned. */
  released: boolean;
  timer: NodeJS.Timeout;
}

export class ConnectionRecovery {
  private readonly failed: FailedConnection[] = [];
  private closed = false;

  constructor(
    /** Seconds: Time2Wait + Time2Retain of the session. */
    private readonly retainSeconds: number,
    /** Called when a failed connection's time ran out (abort its tasks in the core). */
    private readonly onExpire: (table: TaskTable) => void,
  ) {}

  /** Failed connections still held. */
  get count(): number {
    return this.failed.length;
  }

  /** A connection failed: keep its tasks for Time2Wait + Time2Retain (§6.2.2). */
  retain(cid: number, table: TaskTable): void {
    if (this.closed) return;
    const rec: FailedConnection = {
      cid,
      table,
      released: false,
      timer: setTimeout(() => this.expire(rec), Math.max(0, this.retainSeconds) * 1000),
    };
    rec.timer.unref();
    this.failed.push(rec);
  }

  /** Logout reason 2 or reinstatement of `cid`: its tasks may move now. Returns whether one was held. */
  release(cid: number): boolean {
    let found = false;
    for (const r of this.failed) {
      if (r.cid === cid) {
        r.released = true;
        found = true;
      }
    }
    return found;
  }

  /** The task tables held. */
  tables(): TaskTable[] {
    return this.failed.map((r) => r.table);
  }

  /** Is a failed connection with this CID held? */
  has(cid: number): boolean {
    return this.failed.some((r) => r.cid === cid);
  }

  /** The newest held task with this ITT. */
  find(itt: number): TaskWhere {
    for (let i = this.failed.length - 1; i >= 0; i--) {
      const r = this.failed[i];
      const task = r.table.task(itt);
      if (task) return { kind: 'failed', table: r.table, task, released: r.released };
    }
    return { kind: 'none' };
  }

  /** A task left a failed connection (reassigned); drop records that hold nothing any more. */
  prune(): void {
    for (let i = this.failed.length - 1; i >= 0; i--) {
      const r = this.failed[i];
      if (r.released && r.table.taskCount === 0) {
        clearTimeout(r.timer);
        this.failed.splice(i, 1);
      }
    }
  }

  private expire(rec: FailedConnection): void {
    const i = this.failed.indexOf(rec);
    if (i < 0) return;
    this.failed.splice(i, 1);
    this.onExpire(rec.table);
  }

  /** Session end: drop every held task (the nexus closing aborts them in the core). */
  close(): TaskTable[] {
    this.closed = true;
    const out = this.failed.map((r) => {
      clearTimeout(r.timer);
      return r.table;
    });
    this.failed.length = 0;
    return out;
  }
}
