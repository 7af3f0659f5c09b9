// ERL 1 sequence bookkeeping without sockets: SeqTracker (DataSN per task,
// StatSN per connection, serial arithmetic across the 2^32 wrap), the SNACK
// PDUs it leads to (checked against hand-written header bytes), and a task
// that holds its status until a Data-In hole is filled.
import { describe, expect, it } from 'vitest';
import type { IscsiConnection } from '../../../src/initiator/connection.js';
import { dataAck, dataSnack, SeqTracker, statusSnack } from '../../../src/initiator/snack.js';
import { ScsiTask, type ScsiResult } from '../../../src/initiator/task.js';
import { encodeBhs } from '../../../src/protocols/iscsi/pdu-encode.js';
import type { DataInPdu, ScsiResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';

describe('SeqTracker', () => {
  it('trackers never share their holes or held numbers (their sets start shared and empty)', () => {
    const a = new SeqTracker(0);
    const b = new SeqTracker(0);
    a.accept(3);
    a.hold(1);
    expect(a.missingCount).toBe(3);
    expect(b.missingCount).toBe(0);
    expect(b.complete).toBe(true);
    b.accept(0);
    expect(b.expected).toBe(1);
    const c = new SeqTracker(5);
    c.resetTo(7);
    expect(c.expected).toBe(7);
    expect(c.takeUnrecovered()).toEqual([]);
    expect(a.takeUnrecovered()).toEqual([{ begRun: 0, runLength: 3 }]);
  });

  it('in order: no gaps, expected follows', () => {
    const t = new SeqTracker(5);
    expect(t.accept(5)).toEqual({ fresh: true, gap: undefined });
    expect(t.accept(6)).toEqual({ fresh: true, gap: undefined });
    expect(t.expected).toBe(7);
    expect(t.complete).toBe(true);
  });

  it('a jump opens a gap; filling it in any order restores expected; duplicates are not fresh', () => {
    const t = new SeqTracker(0);
    t.accept(0);
    expect(t.accept(4)).toEqual({ fresh: true, gap: { begRun: 1, runLength: 3 } });
    expect(t.expected).toBe(1);
    expect(t.missingCount).toBe(3);
    expect(t.takeUnrecovered()).toEqual([{ begRun: 1, runLength: 3 }]);
    // Already being recovered: not handed out twice.
    expect(t.takeUnrecovered()).toEqual([]);
    expect(t.accept(2)).toEqual({ fresh: true, gap: undefined });
    expect(t.expected).toBe(1);
    expect(t.accept(1).fresh).toBe(true);
    expect(t.expected).toBe(3);
    expect(t.accept(3).fresh).toBe(true);
    expect(t.expected).toBe(5);
    expect(t.accept(2)).toEqual({ fresh: false, gap: undefined });
    expect(t.complete).toBe(true);
  });

  it('discard: the number and the ones it skipped are missing; only the skipped ones are left to SNACK', () => {
    const t = new SeqTracker(0);
    t.accept(0);
    expect(t.discard(3)).toBe(true);
    expect(t.expected).toBe(1);
    expect(t.takeUnrecovered()).toEqual([{ begRun: 1, runLength: 2 }]);
    // A discarded duplicate of something already received needs nothing.
    expect(t.discard(0)).toBe(false);
    // A discarded resend of a missing one is SNACKed again by the caller.
    expect(t.discard(3)).toBe(true);
    t.accept(1);
    t.accept(2);
    t.accept(3);
    expect(t.expected).toBe(4);
  });

  it('runs split where numbers are not contiguous; retryAll hands them out again', () => {
    const t = new SeqTracker(0);
    t.accept(2);
    t.accept(5);
    expect(t.takeUnrecovered()).toEqual([
      { begRun: 0, runLength: 2 },
      { begRun: 3, runLength: 2 },
    ]);
    t.retryAll();
    expect(t.takeUnrecovered()).toHaveLength(2);
  });

  it('hold keeps expected below a received number until release', () => {
    const t = new SeqTracker(10);
    t.accept(10);
    t.accept(11);
    t.hold(10);
    expect(t.expected).toBe(10);
    t.release(10);
    expect(t.expected).toBe(12);
  });

  it('serial arithmetic across the 32-bit wrap', () => {
    const t = new SeqTracker(0xfffffffe);
    t.accept(0xfffffffe);
    expect(t.accept(1)).toEqual({ fresh: true, gap: { begRun: 0xffffffff, runLength: 2 } });
    expect(t.expected).toBe(0xffffffff);
    t.accept(0xffffffff);
    expect(t.expected).toBe(0);
    t.accept(0);
    expect(t.expected).toBe(2);
  });

  it('resetTo forgets holes', () => {
    const t = new SeqTracker(0);
    t.accept(3);
    t.resetTo(7);
    expect(t.expected).toBe(7);
    expect(t.complete).toBe(true);
  });
});

describe('SNACK PDUs (RFC 7143 §11.16.1)', () => {
  // Hand-written BHS: opcode 0x10, byte 1 = 0x80 | type, LUN at 8, ITT at 16,
  // TTT at 20, ExpStatSN at 28, BegRun at 40, RunLength at 44.
  function bhs(type: number, lun: number, itt: number, ttt: number, exp: number, beg: number, len: number): Buffer {
    const b = Buffer.alloc(48);
    b[0] = 0x10;
    b[1] = 0x80 | type;
    b[9] = lun; // single-level LUN < 256: 00 LL 00 00 ...
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(ttt, 20);
    b.writeUInt32BE(exp, 28);
    b.writeUInt32BE(beg, 40);
    b.writeUInt32BE(len, 44);
    return b;
  }

  it('Data/R2T SNACK: type 0, the task ITT, BegRun/RunLength', () => {
    expect(encodeBhs(dataSnack(0x1234, 3, { begRun: 7, runLength: 2 }, 99))).toEqual(bhs(0, 3, 0x1234, 0xffffffff, 99, 7, 2));
  });

  it('Status SNACK: type 1, ITT reserved', () => {
    expect(encodeBhs(statusSnack({ begRun: 41, runLength: 1 }, 41))).toEqual(bhs(1, 0, 0xffffffff, 0xffffffff, 41, 41, 1));
  });

  it('DataACK: type 2, the TTT of the A-bit Data-In, BegRun = next DataSN, RunLength 0', () => {
    expect(encodeBhs(dataAck(0x55, 0, 0xabcd, 12, 8))).toEqual(bhs(2, 0, 0x55, 0xabcd, 8, 12, 0));
  });
});

describe('ScsiTask at ERL 1', () => {
  const common = { immediate: false, final: true, totalAhsLength: 0, dataSegmentLength: 0, ahs: Buffer.alloc(0), lun: 0, lunRaw: Buffer.alloc(8) };
  const conn = { maxSendDataSegmentLength: 8192, expStatSN: 1, send: () => true } as unknown as IscsiConnection;
  const din = (dataSN: number, off: number, data: Buffer, status = false): DataInPdu => ({
    ...common,
    opcode: 0x25,
    itt: 7,
    acknowledge: false,
    overflow: false,
    underflow: false,
    statusPresent: status,
    status: 0,
    targetTransferTag: 0xffffffff,
    statSN: status ? 4 : 0,
    expCmdSN: 1,
    maxCmdSN: 9,
    dataSN,
    bufferOffset: off,
    residualCount: 0,
    data,
    dataSegmentLength: data.length,
  });
  const src = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 13) & 0xff));

  function start(): { task: ScsiTask; result: Promise<ScsiResult>; done: () => boolean } {
    let task!: ScsiTask;
    let finished = false;
    const result = new Promise<ScsiResult>((resolve, reject) => {
      task = new ScsiTask(7, { lun: 0, cdb: Buffer.alloc(16), dataIn: 3000 }, (r) => {
        finished = true;
        resolve(r);
      }, reject);
    });
    task.tolerateGaps = true;
    task.start(conn, 1, { immediateData: true, initialR2T: true, firstBurstLength: 0, maxBurstLength: 0 });
    return { task, result, done: () => finished };
  }

  it('a discarded Data-In is SNACKed, the status waits for it, and the data comes out whole', async () => {
    const { task, result, done } = start();
    expect(task.onDataIn(din(0, 0, src.subarray(0, 1000))).snack).toEqual([]);
    expect(task.discardDataIn(1)).toEqual([{ begRun: 1, runLength: 1 }]);
    expect(task.expDataSN).toBe(1);
    expect(task.onDataIn(din(2, 2000, src.subarray(2000), true))).toEqual({ done: false, snack: [] });
    expect(done()).toBe(false);
    expect(task.onDataIn(din(1, 1000, src.subarray(1000, 2000)))).toEqual({ done: true, snack: [] });
    expect((await result).data.equals(src)).toBe(true);
  });

  it('a DataSN gap (PDUs lost) asks for the run; a SCSI Response is held until it is filled', async () => {
    const { task, result, done } = start();
    expect(task.onDataIn(din(2, 2000, src.subarray(2000))).snack).toEqual([{ begRun: 0, runLength: 2 }]);
    const resp: ScsiResponsePdu = {
      ...common,
      opcode: 0x21,
      itt: 7,
      bidiOverflow: false,
      bidiUnderflow: false,
      overflow: false,
      underflow: false,
      response: 0,
      status: 0,
      snackTag: 0,
      statSN: 4,
      expCmdSN: 2,
      maxCmdSN: 9,
      expDataSN: 3,
      bidiReadResidualCount: 0,
      residualCount: 0,
      data: Buffer.alloc(0),
    };
    task.onResponse(resp);
    expect(done()).toBe(false);
    task.onDataIn(din(0, 0, src.subarray(0, 1000)));
    task.onDataIn(din(1, 1000, src.subarray(1000, 2000)));
    expect((await result).data.equals(src)).toBe(true);
  });

  it('reassignTo resumes at the first missing DataSN (TASK REASSIGN ExpDataSN)', () => {
    const { task } = start();
    task.onDataIn(din(0, 0, src.subarray(0, 1000)));
    task.discardDataIn(1);
    task.onDataIn(din(2, 2000, src.subarray(2000)));
    expect(task.reassignTo(conn)).toBe(1);
    // The target resends from DataSN 1: 1 and 2 are taken in order again.
    expect(task.onDataIn(din(1, 1000, src.subarray(1000, 2000))).snack).toEqual([]);
    expect(task.onDataIn(din(2, 2000, src.subarray(2000), true)).done).toBe(true);
  });
});

describe('SeqTracker limits', () => {
  it('a jump beyond MAX_GAP is a protocol error, not a huge allocation', () => {
    const t = new SeqTracker(0);
    expect(() => t.accept(0x7fffffff)).toThrow(/jumps/);
    expect(t.expected).toBe(0);
  });
});
