// The narrow interfaces through which the parts of a connection reach their
// owners. A handler names the interface of what it uses, never the class of
// its owner (IscsiConnection, FullFeature), so no module imports the one that
// imports it: the dependency rule forbids import cycles, type-only included.
// Handler-specific hosts live next to their handler (TaskHost in
// scsi-command.ts, TmfHost in tmf.ts, ...); the ones shared by several are here.
// This module imports nothing of its owners.

import type { Pdu } from '../../protocols/iscsi/pdu-types.js';
import type { EncodablePdu } from '../../protocols/iscsi/pdu.js';
import type { ScsiTask } from './scsi-command.js';
import type { SessionParams } from './session-params.js';
import type { StatusRetention } from './retention.js';
import type { BufferPool } from '../../util/buffer-pool.js';

/** ExpCmdSN and MaxCmdSN as a response carries them. */
export interface CmdSnFields {
  expCmdSN: number;
  maxCmdSN: number;
}

/** Sends PDUs on one connection and numbers its statuses (IscsiConnection). */
export interface PduSink {
  /**
   * Encode and queue one PDU. `onWritten` runs once the socket has taken the
   * PDU's last byte, or at once when nothing is written (connection gone):
   * memory the PDU refers to may be reused from then on.
   */
  send<P extends Pdu>(pdu: EncodablePdu<P>, onWritten?: () => void): void;
  /** ExpCmdSN/MaxCmdSN to put in a response now. */
  window(): CmdSnFields;
  /** Take a StatSN for a status-carrying PDU. */
  takeStatSN(): number;
  /** StatSN shown without taking one (R2T, our NOP-In pings). */
  readonly currentStatSN: number;
}

/** One connection's tasks as its session, the recovery holder and TMFs see them (FullFeature). */
export interface TaskTable {
  task(itt: number): ScsiTask | undefined;
  readonly taskCount: number;
  /** Tasks addressed to `lun` that are running in the core. */
  submittedTasksOn(lun: number): ScsiTask[];
  /** Abort tasks that have not reached the core (TMF on a LUN, reset). */
  abortLocalTasks(match: (t: ScsiTask) => boolean): void;
  /** A task leaves this table (TASK REASSIGN moved it). */
  release(task: ScsiTask): void;
  /** Time2Retain ran out: abort what is still in the core, end the rest. */
  expireRetained(): void;
  /** The connection is gone: tasks end without a response (`force`: also when held for recovery). */
  connectionClosed(force?: boolean): void;
}

/** A connection as its session sees it (IscsiConnection). */
export interface SessionConnection {
  readonly cid: number;
  readonly remote: string;
  readonly local: string;
  /** Its tasks, once in full feature phase. */
  readonly fullFeature?: TaskTable | undefined;
  /** Drop the connection (no Logout). */
  destroy(reason: string): void;
}

/** Where the task with an ITT lives: a live connection, a failed one held for recovery (ERL 2), or nowhere. */
export type TaskWhere =
  | { kind: 'live'; table: TaskTable; task: ScsiTask }
  | { kind: 'failed'; table: TaskTable; task: ScsiTask; released: boolean }
  | { kind: 'none' };

/** What the full feature phase needs of its connection (IscsiConnection). */
export interface ConnectionPort extends PduSink, SessionConnection {
  /** Key of the listener that accepted the connection (SendTargets answers per portal). */
  readonly portalKey: string;
  /** Parameters in force on this connection. */
  readonly params: SessionParams;
  /** What the initiator accepts per PDU. */
  readonly peerMaxRecvDataSegmentLength: number;
  /** ERL >= 1: status PDUs kept until acknowledged. */
  readonly retention: StatusRetention | undefined;
  /** Data-In and Data-Out buffers of this connection. */
  readonly buffers: BufferPool;
  /** The socket is gone. */
  readonly closed: boolean;
  /** Queued output is over limits.sendHighWaterBytes (replies would wait in memory). */
  readonly sendBacklogged: boolean;
  /** The ExpCmdSN/MaxCmdSN last sent on this connection. */
  readonly announcedWindow: CmdSnFields | undefined;
  /** Send a Reject carrying the offending header (and count it). */
  reject(bhs: Buffer, reason: number): void;
  /** A NOP-Out answered our ping with this TTT. */
  nopAnswered(ttt: number): void;
  /** Flush what is queued, then close. */
  end(reason: string): void;
}
