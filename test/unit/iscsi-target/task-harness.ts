// A ScsiTask's host without sockets: records the PDUs sent, the commands
// prepared and submitted, and lends buffers from a real BufferPool.
import { ScsiTask, type TaskHost } from '../../../src/fabrics/iscsi/scsi-command.js';
import { DEFAULT_SESSION_PARAMS, type SessionParams } from '../../../src/fabrics/iscsi/session-params.js';
import type { DataOutPdu, R2TPdu, ScsiCommandPdu } from '../../../src/protocols/iscsi/pdu-types.js';
import type { ScsiCommand, ScsiCommandHeader, ScsiResponse } from '../../../src/core/types.js';
import type { PrepareResult } from '../../../src/core/index.js';
import { BufferPool } from '../../../src/util/buffer-pool.js';
import type { SessionWriteBudget } from '../../../src/fabrics/iscsi/write-budget.js';

export const RESERVED = 0xffffffff;

export interface Sent {
  opcode: number;
  [k: string]: unknown;
}

export function setup(
  over: Partial<SessionParams>,
  respond?: (c: ScsiCommand) => ScsiResponse,
  prepare?: (c: ScsiCommandHeader) => PrepareResult,
  opts: { deferWrites?: boolean; retaining?: boolean; writeBudget?: SessionWriteBudget; backlogged?: () => boolean } = {},
) {
  const params: SessionParams = { ...DEFAULT_SESSION_PARAMS, ...over };
  const sent: Sent[] = [];
  const submitted: ScsiCommand[] = [];
  const prepared: ScsiCommandHeader[] = [];
  const buffers = new BufferPool();
  /** Write callbacks not yet run (opts.deferWrites: the socket has not taken the bytes yet). */
  const pendingWrites: Array<() => void> = [];
  let statSN = 100;
  const ttts = new Map<number, ScsiTask>();
  let next = 1;
  const finished: ScsiTask[] = [];
  /** Tasks whose held CmdSN slot was given back after their reply was written. */
  const flushed: ScsiTask[] = [];
  /** Read data kept for SNACK, as the tasks report it (retainedData). */
  const retained = { bytes: 0 };
  const host: TaskHost = {
    params,
    peerMaxRecvDataSegmentLength: params.peerMaxRecvDataSegmentLength,
    retaining: opts.retaining ?? false,
    nexus: { id: 1, identity: {} as never },
    connectionGone: false,
    log: {},
    buffers,
    writeBudget: opts.writeBudget,
    get sendBacklogged() {
      return opts.backlogged?.() ?? false;
    },
    replyFlushed: (t) => flushed.push(t),
    retainedData: (delta) => (retained.bytes += delta),
    core: {
      submit: async (c: ScsiCommand): Promise<ScsiResponse> => {
        submitted.push(c);
        return respond ? respond(c) : { status: 0, residualKind: 'none', residualCount: 0 };
      },
      prepare: (c: ScsiCommandHeader): PrepareResult => {
        prepared.push(c);
        return prepare ? prepare(c) : { kind: 'collect', length: c.expectedLength };
      },
    },
    get currentStatSN() {
      return statSN;
    },
    takeStatSN: () => statSN++,
    window: () => ({ expCmdSN: 1, maxCmdSN: 16 }),
    send: (p, onWritten) => {
      sent.push(p as unknown as Sent);
      if (onWritten === undefined) return;
      if (opts.deferWrites) pendingWrites.push(onWritten);
      else onWritten();
    },
    allocateTtt: () => next++,
    bindTtt: (t, task) => ttts.set(t, task),
    unbindTtt: (t) => ttts.delete(t),
    taskFinished: (t) => finished.push(t),
  };
  return { host, sent, submitted, prepared, buffers, pendingWrites, ttts, finished, flushed, retained };
}

export function cmd(over: Partial<ScsiCommandPdu>): ScsiCommandPdu {
  return {
    opcode: 0x01,
    immediate: false,
    final: true,
    totalAhsLength: 0,
    dataSegmentLength: 0,
    itt: 7,
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    read: false,
    write: true,
    attr: 1,
    lun: 0,
    lunRaw: Buffer.alloc(8),
    expectedDataTransferLength: 0,
    cmdSN: 1,
    expStatSN: 0,
    cdb: Buffer.from([0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ...over,
  };
}

export function dataOut(ttt: number, dataSN: number, offset: number, data: Buffer, final: boolean): DataOutPdu {
  return {
    opcode: 0x05,
    immediate: false,
    final,
    totalAhsLength: 0,
    dataSegmentLength: data.length,
    itt: 7,
    ahs: Buffer.alloc(0),
    data,
    lun: 0,
    lunRaw: Buffer.alloc(8),
    targetTransferTag: ttt,
    expStatSN: 0,
    dataSN,
    bufferOffset: offset,
  };
}

export const r2ts = (sent: Sent[]) => sent.filter((p) => p.opcode === 0x31) as unknown as R2TPdu[];
