// The prepare step (LIO's write_pending) and the connection's buffer pool as
// a ScsiTask uses them: a write the core refuses gets its response without a
// data buffer or an R2T; a collected write keeps only what the core uses in
// one pooled buffer; READ data lands in a pooled buffer that goes back after
// the socket's write callback.
import { describe, expect, it } from 'vitest';
import { ScsiTask } from '../../../src/fabrics/iscsi/scsi-command.js';
import type { ScsiResponse } from '../../../src/core/types.js';
import { RESERVED, cmd, dataOut, r2ts, setup, type Sent } from './task-harness.js';

/** ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE, as the core would answer. */
const LBA_OUT_OF_RANGE: ScsiResponse = {
  status: 0x02,
  sense: Buffer.from([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0]),
  residualKind: 'none',
  residualCount: 0,
};

const responses = (sent: Sent[]) => sent.filter((p) => p.opcode === 0x21);
const tick = () => new Promise((r) => setImmediate(r));

describe('prepare step (LIO write_pending)', () => {
  it('a refused write allocates no buffer, sends no R2T, drops its unsolicited data and answers after it; the next command works', async () => {
    const t = setup({ immediateData: true, initialR2T: false, firstBurstLength: 1024, maxBurstLength: 4096 }, undefined, (c) =>
      c.cdb[2] === 0xff ? { kind: 'respond', response: LBA_OUT_OF_RANGE } : { kind: 'collect', length: c.expectedLength },
    );
    const refusedCdb = Buffer.from([0x2a, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]);
    const pdu = cmd({ itt: 7, expectedDataTransferLength: 4096, final: false, data: Buffer.alloc(512, 1), cdb: refusedCdb });
    const task = new ScsiTask(t.host, pdu);
    expect(task.start(pdu)).toBeUndefined();
    task.delivered = true;
    task.prepare();
    task.maybeSubmit();
    // Unsolicited data is still due: no answer yet (the response waits for the F bit).
    expect(responses(t.sent)).toHaveLength(0);
    expect(task.dataOutPdu({ ...dataOut(RESERVED, 0, 512, Buffer.alloc(256, 2), false), itt: 7 })).toBeUndefined();
    expect(task.dataOutPdu({ ...dataOut(RESERVED, 1, 768, Buffer.alloc(256, 3), true), itt: 7 })).toBeUndefined();
    task.maybeSubmit();
    const [resp] = responses(t.sent);
    expect(resp).toMatchObject({ itt: 7, status: 0x02 });
    expect((resp.data as Buffer).subarray(2, 2 + 18).equals(LBA_OUT_OF_RANGE.sense!)).toBe(true);
    expect(r2ts(t.sent)).toHaveLength(0);
    expect(t.submitted).toHaveLength(0);
    expect(t.buffers.stats()).toMatchObject({ leases: 0, allocations: 0, lent: 0 });
    expect(task.phase).toBe('done');
    expect(t.finished).toContain(task);

    // The same connection carries on: a write the core accepts.
    const payload = Buffer.alloc(2048);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const next = cmd({ itt: 8, cmdSN: 2, expectedDataTransferLength: 2048, data: payload.subarray(0, 1024) });
    const task2 = new ScsiTask(t.host, next);
    expect(task2.start(next)).toBeUndefined();
    task2.delivered = true;
    task2.prepare();
    const [r] = r2ts(t.sent);
    expect([r.bufferOffset, r.desiredDataTransferLength]).toEqual([1024, 1024]);
    expect(task2.dataOutPdu({ ...dataOut(r.targetTransferTag, 0, 1024, payload.subarray(1024), true), itt: 8 })).toBeUndefined();
    task2.maybeSubmit();
    await tick();
    expect(t.submitted).toHaveLength(1);
    expect(t.submitted[0].dataOut!.equals(payload)).toBe(true);
    expect(responses(t.sent).map((p) => [p.itt, p.status])).toEqual([
      [7, 2],
      [8, 0],
    ]);
    expect(t.buffers.stats()).toMatchObject({ leases: 1, lent: 0, free: 1 });
  });

  it('a refused write with no unsolicited data due is answered at once', () => {
    const t = setup({ immediateData: true }, undefined, () => ({ kind: 'respond', response: LBA_OUT_OF_RANGE }));
    const pdu = cmd({ expectedDataTransferLength: 8192, data: Buffer.alloc(1024) });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.prepare();
    expect(responses(t.sent)).toHaveLength(1);
    expect(r2ts(t.sent)).toHaveLength(0);
    expect(t.buffers.stats().leases).toBe(0);
  });

  it('keeps only the bytes the core uses but still solicits the whole Expected Data Transfer Length', async () => {
    const t = setup({ immediateData: false, maxBurstLength: 4096, maxOutstandingR2T: 1 }, undefined, () => ({ kind: 'collect', length: 1024 }));
    const pdu = cmd({ expectedDataTransferLength: 4096 });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.prepare();
    const [r] = r2ts(t.sent);
    expect([r.bufferOffset, r.desiredDataTransferLength]).toEqual([0, 4096]);
    const payload = Buffer.alloc(4096);
    for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 0, payload.subarray(0, 2048), false))).toBeUndefined();
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 1, 2048, payload.subarray(2048), true))).toBeUndefined();
    task.maybeSubmit();
    await tick();
    expect(t.submitted[0].dataOut!.equals(payload.subarray(0, 1024))).toBe(true);
    expect(t.buffers.stats()).toMatchObject({ leases: 1, lent: 0 });
  });

  it('waits for CmdSN order: data that came before is kept as it came and copied in after prepare()', async () => {
    const t = setup({ immediateData: true, initialR2T: false, firstBurstLength: 1024, maxBurstLength: 4096 });
    const payload = Buffer.alloc(3072);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 3) & 0xff;
    const pdu = cmd({ expectedDataTransferLength: 3072, final: false, data: payload.subarray(0, 512) });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    // Still behind a CmdSN gap: the unsolicited data arrives, nothing is asked for or allocated.
    expect(task.dataOutPdu(dataOut(RESERVED, 0, 512, payload.subarray(512, 1024), true))).toBeUndefined();
    expect(t.prepared).toHaveLength(0);
    expect(r2ts(t.sent)).toHaveLength(0);
    expect(t.buffers.stats().leases).toBe(0);
    task.delivered = true;
    task.prepare();
    expect(t.prepared).toHaveLength(1);
    const [r] = r2ts(t.sent);
    expect([r.bufferOffset, r.desiredDataTransferLength]).toEqual([1024, 2048]);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 1024, payload.subarray(1024), true))).toBeUndefined();
    task.maybeSubmit();
    await tick();
    expect(t.submitted[0].dataOut!.equals(payload)).toBe(true);
  });

  it('a write whose immediate data holds all it needs is submitted from that data, without a buffer', async () => {
    const t = setup({ immediateData: true, firstBurstLength: 65536 });
    const imm = Buffer.alloc(4096, 5);
    const pdu = cmd({ expectedDataTransferLength: 4096, data: imm });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.prepare();
    task.maybeSubmit();
    await tick();
    expect(t.submitted[0].dataOut!.buffer).toBe(imm.buffer);
    expect(t.buffers.stats().leases).toBe(0);
  });

  it('immediate data the framer put in scratch memory is copied before the scratch is reused', async () => {
    const t = setup({ immediateData: true, firstBurstLength: 65536 });
    const payload = Buffer.alloc(4096);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 5) & 0xff;
    // Delivered at once: copied into a pooled buffer (never submitted as a view of the scratch).
    const now = t.buffers.scratch(4096);
    payload.copy(now);
    const pdu = cmd({ itt: 1, expectedDataTransferLength: 4096, data: now });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.prepare();
    task.keepEarlyData();
    t.buffers.scratch(4096).fill(0);
    task.maybeSubmit();
    // Waiting behind a CmdSN gap: keepEarlyData() gives it memory of its own.
    const later = t.buffers.scratch(4096);
    payload.copy(later);
    const pdu2 = cmd({ itt: 2, cmdSN: 2, expectedDataTransferLength: 4096, data: later });
    const task2 = new ScsiTask(t.host, pdu2);
    task2.start(pdu2);
    task2.keepEarlyData();
    t.buffers.scratch(4096).fill(0);
    task2.delivered = true;
    task2.prepare();
    task2.maybeSubmit();
    await tick();
    expect(t.submitted.map((c) => c.dataOut!.equals(payload))).toEqual([true, true]);
    expect(t.submitted.map((c) => t.buffers.isScratch(c.dataOut!))).toEqual([false, false]);
  });

  it('an Expected Data Transfer Length over the old 128 MiB fabric cap gets the core answer, not a Reject', () => {
    const t = setup({ immediateData: false }, undefined, () => ({ kind: 'respond', response: LBA_OUT_OF_RANGE }));
    const pdu = cmd({ expectedDataTransferLength: 256 * 1024 * 1024 });
    const task = new ScsiTask(t.host, pdu);
    expect(task.start(pdu)).toBeUndefined();
    task.delivered = true;
    task.prepare();
    expect(responses(t.sent)).toHaveLength(1);
    expect(t.buffers.stats()).toMatchObject({ leases: 0, allocations: 0 });
  });

  it('names the place in the command buffer for a straddling Data-Out, and scratch for dropped bytes', async () => {
    const t = setup({ immediateData: false, maxBurstLength: 8192 }, undefined, () => ({ kind: 'collect', length: 2048 }));
    const pdu = cmd({ expectedDataTransferLength: 4096 });
    const task = new ScsiTask(t.host, pdu);
    expect(task.dataOutTarget(0, 1024)).toBeUndefined(); // not prepared yet
    task.start(pdu);
    task.delivered = true;
    task.prepare();
    const [r] = r2ts(t.sent);
    // What the framer would do: assemble the segment where the task says.
    const at0 = task.dataOutTarget(0, 2048)!;
    at0.fill(9);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 0, at0, false))).toBeUndefined();
    const beyond = task.dataOutTarget(2048, 2048)!;
    expect(beyond.length).toBe(2048);
    beyond.fill(1);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 1, 2048, beyond, true))).toBeUndefined();
    task.maybeSubmit();
    await tick();
    expect(t.submitted[0].dataOut!.equals(Buffer.alloc(2048, 9))).toBe(true);
    expect(t.buffers.stats().leases).toBe(1);
  });
});

describe('pooled Data-In buffers', () => {
  const readCmd = (itt: number, edtl: number) => cmd({ itt, read: true, write: false, expectedDataTransferLength: edtl, cdb: Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 16, 0]) });

  it('the core reads into a pooled buffer that goes back only after the write callback of the last Data-In', async () => {
    const t = setup(
      { peerMaxRecvDataSegmentLength: 4096 },
      (c) => {
        const data = c.dataInBuffer!.subarray(0, 8192);
        data.fill(0x5a);
        return { status: 0, dataIn: data, residualKind: 'none', residualCount: 0 };
      },
      undefined,
      { deferWrites: true },
    );
    const pdu = readCmd(3, 8192);
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.maybeSubmit();
    await tick();
    const ins = t.sent.filter((p) => p.opcode === 0x25);
    expect(ins).toHaveLength(2);
    expect((ins[1].data as Buffer).buffer).toBe(t.submitted[0].dataInBuffer!.buffer);
    // Written to the socket only later: the buffer is still lent.
    expect(t.buffers.stats()).toMatchObject({ leases: 1, lent: 1 });
    expect(t.pendingWrites).toHaveLength(1);
    t.pendingWrites.shift()!();
    expect(t.buffers.stats()).toMatchObject({ lent: 0, free: 1 });

    // The next READ reuses it.
    const pdu2 = readCmd(4, 8192);
    const task2 = new ScsiTask(t.host, pdu2);
    task2.start(pdu2);
    task2.delivered = true;
    task2.maybeSubmit();
    await tick();
    expect(t.submitted[1].dataInBuffer).toBe(t.submitted[0].dataInBuffer);
    expect(t.buffers.stats()).toMatchObject({ leases: 2, allocations: 1 });
  });

  it('a buffer the core did not use goes back at once; at ERL >= 1 none is lent (the data is kept for SNACK)', async () => {
    const t = setup({}, () => ({ status: 0, dataIn: Buffer.alloc(512, 1), residualKind: 'none', residualCount: 0 }), undefined, { deferWrites: true });
    const pdu = readCmd(5, 512);
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.maybeSubmit();
    await tick();
    expect(t.buffers.stats()).toMatchObject({ leases: 1, lent: 0 });

    const kept = setup({}, () => ({ status: 0, dataIn: Buffer.alloc(512, 1), residualKind: 'none', residualCount: 0 }), undefined, { retaining: true });
    const pdu2 = readCmd(6, 512);
    const task2 = new ScsiTask(kept.host, pdu2);
    task2.start(pdu2);
    task2.delivered = true;
    task2.maybeSubmit();
    await tick();
    expect(kept.submitted[0].dataInBuffer).toBeUndefined();
    expect(kept.buffers.stats().leases).toBe(0);
  });
});
