// MC/S on the target (RFC 7143 §4.2.2.x, §6.3, §11.14): connections joining a
// session by TSIH + new CID, one CmdSN window across them, StatSN per
// connection, connection allegiance, Logout of one connection, the
// MaxConnections limit. Raw PDUs, so every field is the test's choice.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawInitiator, collectRead, finishWrite, nextPdu, openSession, read10, scsiCmd, write10 } from '../../helpers/raw-iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import {
  Opcode,
  type LoginResponsePdu,
  type LogoutRequestPdu,
  type LogoutResponsePdu,
  type NopInPdu,
  type NopOutPdu,
  type ScsiResponsePdu,
} from '../../../src/protocols/iscsi/pdu-types.js';

const INI = 'iqn.2024-01.org.lunkit.test:mcs';
const FF = 0xffffffff;

describe('iSCSI target MC/S', () => {
  let t: TestTarget;
  const open: RawInitiator[] = [];

  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [4 * 1024 * 1024], parameters: { MaxConnections: '4', ErrorRecoveryLevel: '0' } });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('declares MaxConnections from the TPG parameters and joins connections by TSIH + CID', async () => {
    const lead = await RawInitiator.connect(t.port);
    open.push(lead);
    const r = await lead.login(INI, t.iqn, { isid: 0x23d000000201, extra: [['MaxConnections', '8']] });
    expect(RawInitiator.keys(r).get('MaxConnections')).toBe('4');
    const c2 = await RawInitiator.connect(t.port);
    open.push(c2);
    const r2 = await c2.login(INI, t.iqn, { isid: 0x23d000000201, tsih: r.tsih, cid: 1 });
    expect(r2.tsih).toBe(r.tsih);
    const info = t.server.sessions().find((s) => s.tsih === r.tsih);
    expect(info?.connections.map((c) => c.cid).sort()).toEqual([0, 1]);
  });

  it('refuses a connection past MaxConnections with TOO_MANY_CONNECTIONS (0x0206)', async () => {
    const s = await openSession(t.port, INI, t.iqn, 4, { isid: 0x23d000000202, open });
    const extra = await RawInitiator.connect(t.port);
    open.push(extra);
    const r = (await extra.loginStep([['InitiatorName', INI], ['TargetName', t.iqn]], { isid: s.isid, tsih: s.tsih, cid: 9 })) as LoginResponsePdu;
    expect([r.statusClass, r.statusDetail]).toEqual([2, 6]);
  });

  it('orders commands from several connections by one session-wide CmdSN', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: 0x23d000000203, open });
    const [a, b] = s.conns;
    // CmdSN 2 arrives first on B: it must wait for CmdSN 1 on A.
    const data = Buffer.alloc(512, 0x3c);
    scsiCmd(b, { itt: 20, cmdSN: 2, cdb: read10(7, 1), read: 512 });
    expect(await b.next(300)).toBe('timeout');
    scsiCmd(a, { itt: 10, cmdSN: 1, cdb: write10(7, 1), write: 512, data });
    const wr = await nextPdu(a);
    expect(wr.opcode).toBe(Opcode.SCSI_RESPONSE);
    expect((wr as ScsiResponsePdu).status).toBe(0);
    // The read on B was released by CmdSN 1 (both SIMPLE, so the core may
    // run them in any order once delivered).
    const rd = await collectRead(b, 20);
    expect(rd.status).toBe(0);
    // One window: the read's response on B shows ExpCmdSN 3.
    expect(rd.dataIns[0].expCmdSN).toBe(3);
    // Now the data is there for a read on B, CmdSN 3.
    scsiCmd(b, { itt: 21, cmdSN: 3, cdb: read10(7, 1), read: 512 });
    expect((await collectRead(b, 21)).data.equals(data)).toBe(true);
    // A sees the same window.
    a.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: true, itt: 11, targetTransferTag: FF, cmdSN: 4, expStatSN: a.expStatSN });
    expect(((await nextPdu(a)) as NopInPdu).expCmdSN).toBe(4);
  });

  it('keeps StatSN per connection and answers each task on its own connection', async () => {
    const s = await openSession(t.port, INI, t.iqn, 4, { isid: 0x23d000000204, open });
    const statSNs: number[][] = s.conns.map(() => []);
    let cmdSN = 1;
    // Three rounds of a NOP-Out on each connection, interleaved.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < s.conns.length; i++) {
        const c = s.conns[i];
        c.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: false, itt: 100 + round * 10 + i, targetTransferTag: FF, cmdSN: cmdSN++, expStatSN: c.expStatSN });
      }
    }
    for (let i = 0; i < s.conns.length; i++) {
      for (let round = 0; round < 3; round++) {
        const p = (await nextPdu(s.conns[i])) as NopInPdu;
        expect(p.opcode).toBe(Opcode.NOP_IN);
        expect(p.itt).toBe(100 + round * 10 + i);
        statSNs[i].push(p.statSN);
      }
    }
    for (const sns of statSNs) {
      expect(sns[1]).toBe(sns[0] + 1);
      expect(sns[2]).toBe(sns[0] + 1 + 1);
    }
  });

  it('a write with R2T on one connection, then a read of it on another', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: 0x23d000000205, open });
    const [a, b] = s.conns;
    const data = Buffer.alloc(128 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 0xff;
    scsiCmd(a, { itt: 1, cmdSN: 1, cdb: write10(100, 256), write: data.length });
    const resp = await finishWrite(a, 1, data);
    expect(resp.status).toBe(0);
    scsiCmd(b, { itt: 1, cmdSN: 2, cdb: read10(100, 256), read: data.length });
    const rd = await collectRead(b, 1);
    expect(rd.status).toBe(0);
    expect(rd.data.equals(data)).toBe(true);
  });

  it('four connections: writes and reads spread round-robin, sent in scrambled CmdSN order, all land', async () => {
    const s = await openSession(t.port, INI, t.iqn, 4, { isid: 0x23d00000020a, open });
    const n = 24;
    const blocks = 8;
    const payload = (i: number) => Buffer.alloc(blocks * 512, (i * 37 + 1) & 0xff);
    // Writes with immediate data, CmdSN 1..n, sent in reverse order: none may
    // run before CmdSN 1 arrives (last), then all complete.
    for (let i = n - 1; i >= 0; i--) {
      const c = s.conns[i % 4];
      scsiCmd(c, { itt: 1000 + i, cmdSN: 1 + i, cdb: write10(i * blocks, blocks), write: blocks * 512, data: payload(i) });
      if (i === n - 1) expect(await c.next(200)).toBe('timeout');
    }
    for (let i = 0; i < n; i++) {
      const r = (await nextPdu(s.conns[i % 4])) as ScsiResponsePdu;
      expect(r.opcode).toBe(Opcode.SCSI_RESPONSE);
      expect(r.status).toBe(0);
    }
    // Reads of each range on a different connection than its write, one in
    // flight per connection (so each connection's answers come in order).
    for (let w = 0; w < n; w += 4) {
      for (let i = w; i < w + 4; i++) scsiCmd(s.conns[(i + 1) % 4], { itt: 2000 + i, cmdSN: 1 + n + i, cdb: read10(i * blocks, blocks), read: blocks * 512 });
      for (let i = w; i < w + 4; i++) expect((await collectRead(s.conns[(i + 1) % 4], 2000 + i)).data.equals(payload(i))).toBe(true);
    }
  });

  it('Logout reason 1 closes one connection; the others keep working; reason 0 ends the session', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: 0x23d000000206, open });
    const [a, b] = s.conns;
    a.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: false, itt: 5, reasonCode: 1, cid: 0, cmdSN: 1, expStatSN: a.expStatSN });
    const lr = (await nextPdu(a)) as LogoutResponsePdu;
    expect(lr.opcode).toBe(Opcode.LOGOUT_RESPONSE);
    expect(lr.response).toBe(0);
    expect(await a.next()).toBe('closed');
    // CmdSN 1 was the logout's; B goes on at 2.
    b.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: false, itt: 6, targetTransferTag: FF, cmdSN: 2, expStatSN: b.expStatSN });
    const nop = await nextPdu(b);
    expect(nop.opcode).toBe(Opcode.NOP_IN);
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)?.connections.map((c) => c.cid)).toEqual([1]);
    b.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: false, itt: 7, reasonCode: 0, cid: 1, cmdSN: 3, expStatSN: b.expStatSN });
    expect(((await nextPdu(b)) as LogoutResponsePdu).response).toBe(0);
    expect(await b.next()).toBe('closed');
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)).toBeUndefined();
  });

  it('Logout reason 0 on one connection closes every connection of the session', async () => {
    const s = await openSession(t.port, INI, t.iqn, 3, { isid: 0x23d000000207, open });
    const [a, b, c] = s.conns;
    b.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: false, itt: 5, reasonCode: 0, cid: 1, cmdSN: 1, expStatSN: b.expStatSN });
    expect(((await nextPdu(b)) as LogoutResponsePdu).response).toBe(0);
    expect(await a.next()).toBe('closed');
    expect(await c.next()).toBe('closed');
  });

  it('a dropped connection ends only itself at ERL 0; the session ends with its last one', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: 0x23d000000208, open });
    const [a, b] = s.conns;
    a.close();
    await new Promise((r) => setTimeout(r, 100));
    b.send<NopOutPdu>({ opcode: Opcode.NOP_OUT, immediate: false, itt: 6, targetTransferTag: FF, cmdSN: 1, expStatSN: b.expStatSN });
    expect((await nextPdu(b)).opcode).toBe(Opcode.NOP_IN);
    b.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)).toBeUndefined();
  });

  it('ABORT TASK from another connection finds the task (session-wide ITT lookup)', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: 0x23d000000209, open });
    const [a, b] = s.conns;
    // A write waiting for its R2T data is a task of A.
    scsiCmd(a, { itt: 42, cmdSN: 1, cdb: write10(0, 8), write: 4096 });
    expect((await nextPdu(a)).opcode).toBe(Opcode.R2T);
    b.send({ opcode: Opcode.TASK_MGMT_REQUEST, immediate: true, function: 1, lun: 0, itt: 43, referencedTaskTag: 42, cmdSN: 2, expStatSN: b.expStatSN, refCmdSN: 1, expDataSN: 0 });
    const r = await nextPdu(b);
    expect(r.opcode).toBe(Opcode.TASK_MGMT_RESPONSE);
    expect((r as { response: number }).response).toBe(0);
  });
});

describe('iSCSI target without MC/S parameters', () => {
  let t: TestTarget;
  const open: RawInitiator[] = [];
  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [1024 * 1024] });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('declares the LIO defaults MaxConnections=1, ErrorRecoveryLevel=0', async () => {
    const c = await RawInitiator.connect(t.port);
    open.push(c);
    const r = await c.login(INI, t.iqn, { isid: 0x23d000000301, extra: [['MaxConnections', '4'], ['ErrorRecoveryLevel', '2']] });
    const k = RawInitiator.keys(r);
    expect(k.get('MaxConnections')).toBe('1');
    expect(k.get('ErrorRecoveryLevel')).toBe('0');
  });
});
