// ScsiTask without sockets: the Data-Out it produces for immediate data,
// unsolicited data and R2Ts, and Data-In reassembly with phase-collapsed
// status and residuals.
import { describe, expect, it } from 'vitest';
import type { IscsiConnection } from '../../../src/initiator/connection.js';
import { isIscsiInitiatorError } from '../../../src/initiator/errors.js';
import { ScsiTask, type ScsiResult, type WriteLimits } from '../../../src/initiator/task.js';
import type { DataInPdu, R2TPdu, ScsiResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';

interface Sent {
  opcode: number;
  final?: boolean;
  itt: number;
  targetTransferTag?: number;
  dataSN?: number;
  bufferOffset?: number;
  expectedDataTransferLength?: number;
  data: Buffer | undefined;
}

function fakeConn(mrdsl: number): { conn: IscsiConnection; sent: Sent[] } {
  const sent: Sent[] = [];
  const conn = {
    maxSendDataSegmentLength: mrdsl,
    expStatSN: 5,
    send(pdu: Omit<Sent, 'data'>, data?: Buffer) {
      sent.push({ ...pdu, data });
      return true;
    },
  } as unknown as IscsiConnection;
  return { conn, sent };
}

function newTask(req: ConstructorParameters<typeof ScsiTask>[1]): { task: ScsiTask; result: Promise<ScsiResult> } {
  let task!: ScsiTask;
  const result = new Promise<ScsiResult>((resolve, reject) => {
    task = new ScsiTask(0x42, req, resolve, reject);
  });
  return { task, result };
}

const common = { immediate: false, final: true, totalAhsLength: 0, dataSegmentLength: 0, ahs: Buffer.alloc(0), lun: 0, lunRaw: Buffer.alloc(8) };

function dataIn(p: Partial<DataInPdu> & { data: Buffer; dataSN: number; bufferOffset: number }): DataInPdu {
  return {
    ...common,
    opcode: 0x25,
    itt: 0x42,
    acknowledge: false,
    overflow: false,
    underflow: false,
    statusPresent: false,
    status: 0,
    targetTransferTag: 0xffffffff,
    statSN: 9,
    expCmdSN: 2,
    maxCmdSN: 10,
    residualCount: 0,
    ...p,
    dataSegmentLength: p.data.length,
  };
}

function r2t(ttt: number, r2tSN: number, bufferOffset: number, desiredDataTransferLength: number): R2TPdu {
  return { ...common, opcode: 0x31, itt: 0x42, data: Buffer.alloc(0), targetTransferTag: ttt, statSN: 9, expCmdSN: 2, maxCmdSN: 10, r2tSN, bufferOffset, desiredDataTransferLength };
}

const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));

describe('ScsiTask Data-Out', () => {
  const limits = (l: Partial<WriteLimits>): WriteLimits => ({ immediateData: true, initialR2T: false, firstBurstLength: 4096, maxBurstLength: 8192, ...l });

  it('immediate data up to MaxRecvDataSegmentLength, unsolicited Data-Out up to FirstBurstLength, then R2T sequences', () => {
    const out = pattern(20000);
    const { conn, sent } = fakeConn(1024);
    const { task } = newTask({ lun: 0, cdb: Buffer.alloc(16), dataOut: out });
    task.start(conn, 7, limits({}));
    // Command: F=0 (unsolicited data follows), 1024 bytes of immediate data.
    expect(sent[0]).toMatchObject({ opcode: 0x01, final: false, expectedDataTransferLength: 20000 });
    expect(sent[0].data?.equals(out.subarray(0, 1024))).toBe(true);
    // Unsolicited Data-Out: TTT reserved, DataSN 0.., offsets 1024..4096, F on the last.
    const unsol = sent.slice(1);
    expect(unsol.map((p) => [p.targetTransferTag, p.dataSN, p.bufferOffset, p.data?.length, p.final])).toEqual([
      [0xffffffff, 0, 1024, 1024, false],
      [0xffffffff, 1, 2048, 1024, false],
      [0xffffffff, 2, 3072, 1024, true],
    ]);
    sent.length = 0;
    task.onR2T(r2t(0x99, 0, 4096, 2500));
    expect(sent.map((p) => [p.opcode, p.targetTransferTag, p.dataSN, p.bufferOffset, p.data?.length, p.final])).toEqual([
      [0x05, 0x99, 0, 4096, 1024, false],
      [0x05, 0x99, 1, 5120, 1024, false],
      [0x05, 0x99, 2, 6144, 452, true],
    ]);
    for (const p of sent) expect(p.data?.equals(out.subarray(p.bufferOffset, (p.bufferOffset as number) + (p.data as Buffer).length))).toBe(true);
  });

  it('InitialR2T=Yes and ImmediateData=No: the command carries no data and F=1', () => {
    const { conn, sent } = fakeConn(8192);
    const { task } = newTask({ lun: 0, cdb: Buffer.alloc(16), dataOut: pattern(5000) });
    task.start(conn, 1, limits({ immediateData: false, initialR2T: true }));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ final: true, data: undefined });
  });

  it('an R2T outside the write buffer is a protocol error', () => {
    const { conn } = fakeConn(8192);
    const { task } = newTask({ lun: 0, cdb: Buffer.alloc(16), dataOut: pattern(4096) });
    task.start(conn, 1, limits({ immediateData: false, initialR2T: true }));
    let err: unknown;
    try {
      task.onR2T(r2t(1, 0, 4000, 200));
    } catch (e) {
      err = e;
    }
    expect(isIscsiInitiatorError(err, 'ERR_ISCSI_PROTOCOL')).toBe(true);
  });
});

describe('ScsiTask Data-In', () => {
  it('reassembles Data-In in DataSN order with phase-collapsed status and an underflow residual', async () => {
    const { conn } = fakeConn(8192);
    const { task, result } = newTask({ lun: 0, cdb: Buffer.alloc(16), dataIn: 4096 });
    task.start(conn, 1, { immediateData: true, initialR2T: true, firstBurstLength: 0, maxBurstLength: 0 });
    const src = pattern(3000);
    expect(task.onDataIn(dataIn({ dataSN: 0, bufferOffset: 0, data: src.subarray(0, 1000) }))).toEqual({ done: false, snack: [] });
    expect(task.onDataIn(dataIn({ dataSN: 1, bufferOffset: 1000, data: src.subarray(1000, 2000) }))).toEqual({ done: false, snack: [] });
    expect(
      task.onDataIn(dataIn({ dataSN: 2, bufferOffset: 2000, data: src.subarray(2000), final: true, statusPresent: true, status: 0, underflow: true, residualCount: 1096 })),
    ).toEqual({ done: true, snack: [] });
    const r = await result;
    expect(r).toMatchObject({ status: 0, underflow: true, residualCount: 1096 });
    expect(r.data.equals(src)).toBe(true);
  });

  it('reads into a caller buffer and completes on a SCSI Response with sense', async () => {
    const { conn } = fakeConn(8192);
    const into = Buffer.alloc(512);
    const { task, result } = newTask({ lun: 0, cdb: Buffer.alloc(16), dataIn: into });
    task.start(conn, 1, { immediateData: true, initialR2T: true, firstBurstLength: 0, maxBurstLength: 0 });
    task.onDataIn(dataIn({ dataSN: 0, bufferOffset: 0, data: Buffer.alloc(512, 9) }));
    // SenseLength 18 + fixed sense: MEDIUM ERROR 11h/00h.
    const senseSeg = Buffer.from([0x00, 0x12, 0x70, 0, 0x03, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0]);
    const resp: ScsiResponsePdu = {
      ...common,
      opcode: 0x21,
      itt: 0x42,
      data: senseSeg,
      bidiOverflow: false,
      bidiUnderflow: false,
      overflow: false,
      underflow: false,
      response: 0,
      status: 2,
      snackTag: 0,
      statSN: 3,
      expCmdSN: 2,
      maxCmdSN: 9,
      expDataSN: 1,
      bidiReadResidualCount: 0,
      residualCount: 0,
    };
    task.onResponse(resp);
    const r = await result;
    expect(into.equals(Buffer.alloc(512, 9))).toBe(true);
    expect(r.status).toBe(2);
    expect(r.sense).toMatchObject({ format: 'fixed', key: 3, keyName: 'MEDIUM ERROR', asc: 0x11, ascq: 0 });
  });

  it('a DataSN gap or an overrun is a protocol error', () => {
    const { conn } = fakeConn(8192);
    const { task } = newTask({ lun: 0, cdb: Buffer.alloc(16), dataIn: 1024 });
    task.start(conn, 1, { immediateData: true, initialR2T: true, firstBurstLength: 0, maxBurstLength: 0 });
    const codeOf = (f: () => void): string | undefined => {
      try {
        f();
      } catch (e) {
        return isIscsiInitiatorError(e) ? e.code : 'other';
      }
      return undefined;
    };
    expect(codeOf(() => task.onDataIn(dataIn({ dataSN: 1, bufferOffset: 0, data: Buffer.alloc(10) })))).toBe('ERR_ISCSI_PROTOCOL');
    expect(codeOf(() => task.onDataIn(dataIn({ dataSN: 0, bufferOffset: 1000, data: Buffer.alloc(100) })))).toBe('ERR_ISCSI_PROTOCOL');
  });
});
