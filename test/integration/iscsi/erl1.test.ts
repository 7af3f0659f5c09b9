// ERL 1 on the target (RFC 7143 §6.1.4, §7.8, §11.16): SNACK for Data-In and
// status, retention until ExpStatSN acknowledges, data digest errors on
// Data-Out (recovery R2T) and on immediate data (command dropped, CmdSN hole
// kept for the retry). ERL 0 sessions still Reject SNACK.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawInitiator, clearUnitAttention, collectRead, dataOut, nextPdu, read10, scsiCmd, write10 } from '../../helpers/raw-iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import {
  Opcode,
  type DataInPdu,
  type NopInPdu,
  type NopOutPdu,
  type R2TPdu,
  type RejectPdu,
  type ScsiResponsePdu,
  type SnackRequestPdu,
} from '../../../src/protocols/iscsi/pdu-types.js';

const INI = 'iqn.2024-01.org.lunkit.test:erl1';
const FF = 0xffffffff;

function snack(c: RawInitiator, o: { type: number; itt?: number; ttt?: number; begRun: number; runLength: number; expStatSN?: number }): void {
  c.send<SnackRequestPdu>({
    opcode: Opcode.SNACK_REQUEST,
    immediate: false,
    final: true,
    type: o.type,
    lun: 0,
    itt: o.itt ?? FF,
    targetTransferTag: o.ttt ?? FF,
    expStatSN: o.expStatSN ?? c.expStatSN,
    begRun: o.begRun,
    runLength: o.runLength,
  });
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

describe('iSCSI target ERL 1', () => {
  let t: TestTarget;
  const open: RawInitiator[] = [];
  let isid = 0x23d000000400;

  /** One connection at ERL 1 (or `erl`) with data digests, UA cleared; next CmdSN is 1. */
  async function session(erl = 1, digests = true): Promise<RawInitiator> {
    const c = await RawInitiator.connect(t.port);
    open.push(c);
    const extra: Array<[string, string]> = [['ErrorRecoveryLevel', String(erl)]];
    if (digests) extra.push(['DataDigest', 'CRC32C']);
    const r = await c.login(INI, t.iqn, { isid: isid++, extra });
    expect(RawInitiator.keys(r).get('ErrorRecoveryLevel')).toBe(String(erl));
    if (digests) c.useDigests(false, true);
    await clearUnitAttention(c, 1);
    return c;
  }

  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [4 * 1024 * 1024], parameters: { MaxConnections: '4', ErrorRecoveryLevel: '1' } });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('Data SNACK resends Data-In with the original DataSN, offsets and bytes (and status with its StatSN)', async () => {
    const c = await session();
    const data = pattern(64 * 1024, 5);
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: write10(0, 128), write: data.length });
    for (;;) {
      const p = await nextPdu(c);
      if (p.opcode === Opcode.R2T) {
        const r = p as R2TPdu;
        dataOut(c, { itt: 1, ttt: r.targetTransferTag, dataSN: 0, offset: r.bufferOffset, data: data.subarray(r.bufferOffset, r.bufferOffset + r.desiredDataTransferLength) });
        continue;
      }
      expect((p as ScsiResponsePdu).status).toBe(0);
      break;
    }
    scsiCmd(c, { itt: 2, cmdSN: 2, cdb: read10(0, 128), read: data.length });
    const rd = await collectRead(c, 2);
    expect(rd.data.equals(data)).toBe(true);
    expect(rd.dataIns.length).toBe(8); // 8192-byte PDUs (our MaxRecvDataSegmentLength default)
    // Not acknowledged yet (ExpStatSN = the read's StatSN): SNACK DataSN 3..4.
    snack(c, { type: 0, itt: 2, begRun: 3, runLength: 2, expStatSN: rd.statSN });
    for (const sn of [3, 4]) {
      const p = (await nextPdu(c)) as DataInPdu;
      expect(p.opcode).toBe(Opcode.DATA_IN);
      expect(p.dataSN).toBe(sn);
      expect(p.bufferOffset).toBe(rd.dataIns[sn].bufferOffset);
      expect(p.data.equals(rd.dataIns[sn].data)).toBe(true);
      expect(p.statusPresent).toBe(false);
    }
    // The last one again: it carries the status with the original StatSN.
    snack(c, { type: 0, itt: 2, begRun: 7, runLength: 0, expStatSN: rd.statSN });
    const last = (await nextPdu(c)) as DataInPdu;
    expect([last.dataSN, last.statusPresent, last.statSN]).toEqual([7, true, rd.statSN]);
    expect(last.data.equals(rd.dataIns[7].data)).toBe(true);
    // Acknowledged (a NOP-Out with ExpStatSN past it): the data is released.
    c.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: true, itt: 9, targetTransferTag: FF, cmdSN: 3, expStatSN: (rd.statSN + 1) >>> 0 });
    expect((await nextPdu(c)).opcode).toBe(Opcode.NOP_IN);
    snack(c, { type: 0, itt: 2, begRun: 0, runLength: 0, expStatSN: (rd.statSN + 1) >>> 0 });
    const rej = (await nextPdu(c)) as RejectPdu;
    expect(rej.opcode).toBe(Opcode.REJECT);
    expect(rej.reason).toBe(0x03);
  });

  it('Status SNACK resends the responses of a StatSN run as they were', async () => {
    const c = await session();
    const from = c.expStatSN;
    c.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: false, itt: 5, targetTransferTag: FF, cmdSN: 1, expStatSN: from });
    const nop = (await nextPdu(c)) as NopInPdu;
    c.expStatSN = from; // do not acknowledge the NOP-In
    scsiCmd(c, { itt: 6, cmdSN: 2, cdb: Buffer.alloc(16) });
    const tur = (await nextPdu(c)) as ScsiResponsePdu;
    expect(tur.opcode).toBe(Opcode.SCSI_RESPONSE);
    expect(tur.statSN).toBe(nop.statSN + 1);
    snack(c, { type: 1, begRun: nop.statSN, runLength: 2, expStatSN: nop.statSN });
    const a = await nextPdu(c);
    const b = await nextPdu(c);
    expect([a.opcode, (a as NopInPdu).statSN, a.itt]).toEqual([Opcode.NOP_IN, nop.statSN, 5]);
    expect([b.opcode, (b as ScsiResponsePdu).statSN, b.itt]).toEqual([Opcode.SCSI_RESPONSE, tur.statSN, 6]);
  });

  it('a Data-Out with a bad data digest: Reject 0x02, then a recovery R2T for its range', async () => {
    const c = await session();
    const data = pattern(32 * 1024, 9);
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: write10(300, 64), write: data.length });
    const r2t = (await nextPdu(c)) as R2TPdu;
    expect(r2t.opcode).toBe(Opcode.R2T);
    // Four 8 KiB Data-Outs; the second one's digest is corrupted.
    for (let i = 0; i < 4; i++) {
      const off = i * 8192;
      dataOut(c, { itt: 1, ttt: r2t.targetTransferTag, dataSN: i, offset: off, data: data.subarray(off, off + 8192), final: i === 3 }, i === 1);
    }
    const rej = (await nextPdu(c)) as RejectPdu;
    expect(rej.opcode).toBe(Opcode.REJECT);
    expect(rej.reason).toBe(0x02);
    expect(rej.data.readUInt32BE(36)).toBe(1); // the rejected header: DataSN 1
    const rec = (await nextPdu(c)) as R2TPdu;
    expect(rec.opcode).toBe(Opcode.R2T);
    expect([rec.bufferOffset, rec.desiredDataTransferLength, rec.r2tSN]).toEqual([8192, 8192, 1]);
    dataOut(c, { itt: 1, ttt: rec.targetTransferTag, dataSN: 0, offset: 8192, data: data.subarray(8192, 16384) });
    const resp = (await nextPdu(c)) as ScsiResponsePdu;
    expect(resp.opcode).toBe(Opcode.SCSI_RESPONSE);
    expect(resp.status).toBe(0);
    scsiCmd(c, { itt: 2, cmdSN: 2, cdb: read10(300, 64), read: data.length });
    expect((await collectRead(c, 2)).data.equals(data)).toBe(true);
  });

  it('immediate data with a bad digest: Reject 0x02, the command is dropped and its CmdSN waits for the retry', async () => {
    const c = await session();
    const data = pattern(4096, 1);
    scsiCmd(c, { itt: 7, cmdSN: 1, cdb: write10(600, 8), write: data.length, data });
    // A second write whose immediate data arrives with a bad digest (ITT 8, CmdSN 2).
    expect(((await nextPdu(c)) as ScsiResponsePdu).status).toBe(0);
    c.send(
      {
        opcode: Opcode.SCSI_COMMAND,
        immediate: false,
        final: true,
        read: false,
        write: true,
        attr: 1,
        lun: 0,
        itt: 8,
        expectedDataTransferLength: data.length,
        cmdSN: 2,
        expStatSN: c.expStatSN,
        cdb: write10(608, 8),
        data,
      },
      { corruptDataDigest: true },
    );
    const rej = (await nextPdu(c)) as RejectPdu;
    expect([rej.opcode, rej.reason]).toEqual([Opcode.REJECT, 0x02]);
    // CmdSN 3 waits behind the hole at 2.
    c.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: false, itt: 9, targetTransferTag: FF, cmdSN: 3, expStatSN: c.expStatSN });
    expect(await c.next(300)).toBe('timeout');
    // The retry (same ITT, same CmdSN) fills it; both are answered in order.
    scsiCmd(c, { itt: 8, cmdSN: 2, cdb: write10(608, 8), write: data.length, data });
    // Both answered (the write completes in the core, the NOP-In at once: any order).
    const got = [await nextPdu(c), await nextPdu(c)];
    const resp = got.find((p) => p.opcode === Opcode.SCSI_RESPONSE) as ScsiResponsePdu;
    expect([resp.itt, resp.status]).toEqual([8, 0]);
    expect(got.some((p) => p.opcode === Opcode.NOP_IN && p.itt === 9)).toBe(true);
    scsiCmd(c, { itt: 10, cmdSN: 4, cdb: read10(608, 8), read: data.length });
    expect((await collectRead(c, 10)).data.equals(data)).toBe(true);
  });

  it('R2T SNACK resends an open R2T as it was (same TTT, R2TSN, offset, length)', async () => {
    const c = await session();
    const data = pattern(16 * 1024, 4);
    scsiCmd(c, { itt: 1, cmdSN: 1, cdb: write10(700, 32), write: data.length });
    const r2t = (await nextPdu(c)) as R2TPdu;
    snack(c, { type: 0, itt: 1, begRun: 0, runLength: 1 });
    const again = (await nextPdu(c)) as R2TPdu;
    expect(again.opcode).toBe(Opcode.R2T);
    expect([again.targetTransferTag, again.r2tSN, again.bufferOffset, again.desiredDataTransferLength]).toEqual([
      r2t.targetTransferTag,
      r2t.r2tSN,
      r2t.bufferOffset,
      r2t.desiredDataTransferLength,
    ]);
    dataOut(c, { itt: 1, ttt: r2t.targetTransferTag, dataSN: 0, offset: 0, data });
    expect(((await nextPdu(c)) as ScsiResponsePdu).status).toBe(0);
    // A SNACK for a task that does not exist: Reject SNACK REJECT.
    snack(c, { type: 0, itt: 99, begRun: 0, runLength: 0 });
    expect(((await nextPdu(c)) as RejectPdu).reason).toBe(0x03);
  });

  it('an ERL 0 session still Rejects SNACK (protocol error)', async () => {
    const c = await session(0, false);
    snack(c, { type: 1, begRun: 0, runLength: 0 });
    const rej = (await nextPdu(c)) as RejectPdu;
    expect([rej.opcode, rej.reason]).toEqual([Opcode.REJECT, 0x04]);
  });
});
