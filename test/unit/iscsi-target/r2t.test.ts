import { describe, expect, it } from 'vitest';
import { ScsiTask } from '../../../src/fabrics/iscsi/scsi-command.js';
import { RESERVED, cmd, dataOut, r2ts, setup } from './task-harness.js';

describe('ScsiTask write sequencing (RFC 7143 §11.7-11.8)', () => {
  it('issues R2Ts of MaxBurstLength, at most MaxOutstandingR2T at once, after the immediate data', async () => {
    const t = setup({ maxBurstLength: 1024, maxOutstandingR2T: 2, firstBurstLength: 512, immediateData: true, initialR2T: true });
    const edtl = 512 + 1024 * 3;
    const payload = Buffer.alloc(edtl);
    for (let i = 0; i < edtl; i++) payload[i] = i & 0xff;
    const task = new ScsiTask(t.host, cmd({ expectedDataTransferLength: edtl, data: payload.subarray(0, 512) }));
    expect(task.start(cmd({ expectedDataTransferLength: edtl, data: payload.subarray(0, 512) }))).toBeUndefined();
    task.delivered = true;
    expect(r2ts(t.sent)).toHaveLength(0); // nothing is asked for before prepare()
    task.prepare();
    let out = r2ts(t.sent);
    expect(out.map((r) => [r.r2tSN, r.bufferOffset, r.desiredDataTransferLength])).toEqual([
      [0, 512, 1024],
      [1, 1536, 1024],
    ]);
    expect(out[0].statSN).toBe(100); // R2T does not take a StatSN
    // Answer the first R2T in two PDUs.
    const [a] = out;
    expect(task.dataOutPdu(dataOut(a.targetTransferTag, 0, 512, payload.subarray(512, 1024), false))).toBeUndefined();
    expect(task.dataOutPdu(dataOut(a.targetTransferTag, 1, 1024, payload.subarray(1024, 1536), true))).toBeUndefined();
    out = r2ts(t.sent);
    expect(out).toHaveLength(3);
    expect([out[2].r2tSN, out[2].bufferOffset, out[2].desiredDataTransferLength]).toEqual([2, 2560, 1024]);
    expect(task.dataOutPdu(dataOut(out[1].targetTransferTag, 0, 1536, payload.subarray(1536, 2560), true))).toBeUndefined();
    expect(task.dataOutPdu(dataOut(out[2].targetTransferTag, 0, 2560, payload.subarray(2560), true))).toBeUndefined();
    expect(task.dataComplete).toBe(true);
    task.maybeSubmit();
    await new Promise((r) => setImmediate(r));
    expect(t.submitted).toHaveLength(1);
    expect(t.submitted[0].dataOut!.equals(payload)).toBe(true);
    const resp = t.sent.find((p) => p.opcode === 0x21)!;
    expect(resp.expDataSN).toBe(3); // three R2Ts
    expect(t.ttts.size).toBe(0);
  });

  it('accepts unsolicited Data-Out up to FirstBurstLength when InitialR2T=No and F=0', () => {
    const t = setup({ maxBurstLength: 4096, firstBurstLength: 1024, immediateData: true, initialR2T: false });
    const pdu = cmd({ expectedDataTransferLength: 2048, final: false, data: Buffer.alloc(256, 1) });
    const task = new ScsiTask(t.host, pdu);
    expect(task.start(pdu)).toBeUndefined();
    task.prepare();
    expect(r2ts(t.sent)).toHaveLength(0);
    expect(task.dataOutPdu(dataOut(RESERVED, 0, 256, Buffer.alloc(768, 2), true))).toBeUndefined();
    const out = r2ts(t.sent);
    expect(out.map((r) => [r.bufferOffset, r.desiredDataTransferLength])).toEqual([[1024, 1024]]);
  });

  it('rejects a wrong DataSN, a wrong BufferOffset and data beyond the burst', () => {
    const t = setup({ maxBurstLength: 1024, immediateData: false });
    const pdu = cmd({ expectedDataTransferLength: 1024 });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.prepare();
    const [r] = r2ts(t.sent);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 1, 0, Buffer.alloc(512), false))).toMatch(/DataSN/);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 512, Buffer.alloc(512), false))).toMatch(/BufferOffset/);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 0, Buffer.alloc(2048), false))).toMatch(/beyond/);
    expect(task.dataOutPdu(dataOut(r.targetTransferTag, 0, 0, Buffer.alloc(512), true))).toMatch(/burst ended/);
  });

  it('refuses immediate data when ImmediateData=No, and more than FirstBurstLength', () => {
    const t = setup({ immediateData: false });
    const pdu = cmd({ expectedDataTransferLength: 1024, data: Buffer.alloc(512) });
    expect(new ScsiTask(t.host, pdu).start(pdu)).toBe(0x04);
    const t2 = setup({ immediateData: true, firstBurstLength: 512 });
    const pdu2 = cmd({ expectedDataTransferLength: 4096, data: Buffer.alloc(1024) });
    expect(new ScsiTask(t2.host, pdu2).start(pdu2)).toBe(0x04);
  });
});

describe('ScsiTask Data-In (RFC 7143 §11.7)', () => {
  it('cuts Data-In at the peer MaxRecvDataSegmentLength with F at each MaxBurstLength and status in the last', async () => {
    const data = Buffer.alloc(5000, 9);
    const t = setup({ peerMaxRecvDataSegmentLength: 1000, maxBurstLength: 2000 }, () => ({
      status: 0,
      dataIn: data,
      residualKind: 'underflow',
      residualCount: 120,
    }));
    const pdu = cmd({ read: true, write: false, expectedDataTransferLength: 5120, cdb: Buffer.alloc(16, 0) });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.maybeSubmit();
    await new Promise((r) => setImmediate(r));
    const ins = t.sent.filter((p) => p.opcode === 0x25);
    expect(ins.map((p) => [p.dataSN, p.bufferOffset, (p.data as Buffer).length, p.final, p.statusPresent])).toEqual([
      [0, 0, 1000, false, false],
      [1, 1000, 1000, true, false],
      [2, 2000, 1000, false, false],
      [3, 3000, 1000, true, false],
      [4, 4000, 1000, true, true],
    ]);
    const last = ins[4];
    expect(last.underflow).toBe(true);
    expect(last.residualCount).toBe(120);
    expect(last.statSN).toBe(100);
    expect((ins[0].data as Buffer).buffer).toBe(data.buffer); // a view, not a copy
    expect(t.sent.some((p) => p.opcode === 0x21)).toBe(false);
  });

  it('sends a SCSI Response with sense after the Data-In when there is sense', async () => {
    const sense = Buffer.from([0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0]);
    const t = setup({}, () => ({ status: 2, sense, dataIn: Buffer.alloc(100), residualKind: 'none', residualCount: 0 }));
    const pdu = cmd({ read: true, write: false, expectedDataTransferLength: 100, cdb: Buffer.alloc(16, 0) });
    const task = new ScsiTask(t.host, pdu);
    task.start(pdu);
    task.delivered = true;
    task.maybeSubmit();
    await new Promise((r) => setImmediate(r));
    const kinds = t.sent.map((p) => p.opcode);
    expect(kinds).toEqual([0x25, 0x21]);
    expect(t.sent[0].statusPresent).toBe(false);
    const resp = t.sent[1];
    expect(resp.status).toBe(2);
    expect(resp.expDataSN).toBe(1);
    expect((resp.data as Buffer).readUInt16BE(0)).toBe(18);
  });
});
