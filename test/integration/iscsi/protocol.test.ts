// Protocol rules checked PDU by PDU with a raw initiator: login status
// codes, CmdSN window, NOP, Text, Reject, malformed input, reinstatement.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawInitiator } from '../../helpers/raw-iscsi.js';
import { runTool, startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import {
  Opcode,
  type LogoutRequestPdu,
  type NopInPdu,
  type NopOutPdu,
  type RejectPdu,
  type ScsiCommandPdu,
  type TextRequestPdu,
  type TextResponsePdu,
  type LoginResponsePdu,
} from '../../../src/protocols/iscsi/pdu-types.js';

const INI = 'iqn.2024-01.org.lunkit.test:raw';
const FF = 0xffffffff;

describe('iSCSI target protocol handling', () => {
  let t: TestTarget;
  const open: RawInitiator[] = [];
  const connect = async () => {
    const c = await RawInitiator.connect(t.port);
    open.push(c);
    return c;
  };
  const nop = (c: RawInitiator, o: { itt?: number; cmdSN?: number; immediate?: boolean; data?: Buffer } = {}) =>
    c.send<NopOutPdu>({
      opcode: Opcode.NOP_OUT,
      immediate: o.immediate ?? false,
      itt: o.itt ?? 1,
      targetTransferTag: FF,
      cmdSN: o.cmdSN ?? c.cmdSN,
      expStatSN: c.expStatSN,
      data: o.data,
    });

  beforeAll(async () => {
    t = await startIscsiTarget({ lunSizes: [4 * 1024 * 1024] });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('login status (RFC 7143 §11.13.5)', () => {
    const status = (r: LoginResponsePdu | 'timeout' | 'closed') => (typeof r === 'string' ? r : [r.statusClass, r.statusDetail]);

    it('unknown target -> 0x0203 and the connection closes', async () => {
      const c = await connect();
      expect(status(await c.loginStep([['InitiatorName', INI], ['TargetName', 'iqn.2024-01.org.lunkit.test:nope']]))).toEqual([2, 3]);
      expect(await c.next()).toBe('closed');
    });

    it('no InitiatorName -> 0x0207', async () => {
      const c = await connect();
      expect(status(await c.loginStep([['TargetName', t.iqn]]))).toEqual([2, 7]);
    });

    it('normal session without TargetName -> 0x0207', async () => {
      const c = await connect();
      expect(status(await c.loginStep([['InitiatorName', INI], ['SessionType', 'Normal']]))).toEqual([2, 7]);
    });

    it('TSIH of no session -> 0x020a', async () => {
      const c = await connect();
      expect(status(await c.loginStep([['InitiatorName', INI], ['TargetName', t.iqn]], { tsih: 0x4242 }))).toEqual([2, 0x0a]);
    });

    it('a second connection to a session (MaxConnections=1) -> 0x0206', async () => {
      const a = await connect();
      const r = await a.login(INI, t.iqn, { isid: 0x23d000000101 });
      const b = await connect();
      expect(status(await b.loginStep([['InitiatorName', INI], ['TargetName', t.iqn]], { isid: 0x23d000000101, tsih: r.tsih, cid: 1 }))).toEqual([2, 6]);
    });

    it('a successful login returns a TSIH, TargetPortalGroupTag and our MaxRecvDataSegmentLength', async () => {
      const c = await connect();
      const r = await c.login(INI, t.iqn, { extra: [['MaxRecvDataSegmentLength', '65536']] });
      expect(r.tsih).not.toBe(0);
      expect(r.transit).toBe(true);
      expect(r.nsg).toBe(3);
      const keys = RawInitiator.keys(r);
      expect(keys.get('TargetPortalGroupTag')).toBe('1');
      expect(Number(keys.get('MaxRecvDataSegmentLength'))).toBeGreaterThanOrEqual(8192);
      expect(r.expCmdSN).toBe(1);
    });

    it('unknown keys are answered NotUnderstood, out-of-range values Reject', async () => {
      const c = await connect();
      const r = await c.login(INI, t.iqn, { extra: [['X-com.example.Foo', '1'], ['MaxBurstLength', '12']] });
      const keys = RawInitiator.keys(r);
      expect(keys.get('X-com.example.Foo')).toBe('NotUnderstood');
      expect(keys.get('MaxBurstLength')).toBe('Reject');
    });
  });

  it('garbage before login drops the connection; the server keeps serving', async () => {
    const c = await connect();
    c.writeRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.padEnd(64, ' ')));
    expect(await c.next()).toBe('closed');
    const r = await runTool('iscsi-inq', [t.url(0)]);
    expect(r.code).toBe(0);
  });

  it('a PDU other than Login before full feature phase drops the connection', async () => {
    const c = await connect();
    nop(c);
    expect(await c.next()).toBe('closed');
  });

  it('answers NOP-Out pings with the same data and advances StatSN', async () => {
    const c = await connect();
    const login = await c.login(INI, t.iqn);
    nop(c, { itt: 5, data: Buffer.from('ping!') });
    const r = (await c.next()) as NopInPdu;
    expect(r.opcode).toBe(Opcode.NOP_IN);
    expect(r.itt).toBe(5);
    expect(r.targetTransferTag).toBe(FF);
    expect(r.data.toString()).toBe('ping!');
    expect(r.statSN).toBe((login.statSN + 1) >>> 0);
    expect(r.expCmdSN).toBe(2);
  });

  it('drops commands whose CmdSN is outside [ExpCmdSN, MaxCmdSN] silently (§3.2.2.1)', async () => {
    const c = await connect();
    const login = await c.login(INI, t.iqn);
    nop(c, { itt: 1, cmdSN: (login.maxCmdSN + 1) >>> 0 });
    expect(await c.next(300)).toBe('timeout');
    nop(c, { itt: 2, cmdSN: (login.expCmdSN - 1) >>> 0 });
    expect(await c.next(300)).toBe('timeout');
    nop(c, { itt: 3, cmdSN: login.expCmdSN });
    const r = (await c.next()) as NopInPdu;
    expect(r.itt).toBe(3);
  });

  it('holds a command ahead of ExpCmdSN until the gap is filled', async () => {
    const c = await connect();
    const login = await c.login(INI, t.iqn);
    nop(c, { itt: 11, cmdSN: login.expCmdSN + 1 });
    expect(await c.next(200)).toBe('timeout');
    nop(c, { itt: 10, cmdSN: login.expCmdSN });
    expect(((await c.next()) as NopInPdu).itt).toBe(10);
    expect(((await c.next()) as NopInPdu).itt).toBe(11);
  });

  it('rejects an unknown opcode with COMMAND NOT SUPPORTED and the header', async () => {
    const c = await connect();
    await c.login(INI, t.iqn);
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x1c;
    bhs[1] = 0x80;
    bhs.writeUInt32BE(0x77, 16);
    c.writeRaw(bhs);
    const r = (await c.next()) as RejectPdu;
    expect(r.opcode).toBe(Opcode.REJECT);
    expect(r.reason).toBe(0x05);
    expect(r.data.subarray(0, 48).equals(bhs)).toBe(true);
    // The connection is still in sync.
    nop(c, { itt: 9 });
    expect(((await c.next()) as NopInPdu).itt).toBe(9);
  });

  it('a data segment over our MaxRecvDataSegmentLength gets a Reject and the connection closes', async () => {
    const c = await connect();
    const login = await c.login(INI, t.iqn);
    const ours = Number(RawInitiator.keys(login).get('MaxRecvDataSegmentLength') ?? 8192);
    nop(c, { itt: 4, data: Buffer.alloc(ours + 4) });
    const r = (await c.next()) as RejectPdu;
    expect(r.opcode).toBe(Opcode.REJECT);
    expect(r.reason).toBe(0x04);
    expect(await c.next()).toBe('closed');
  });

  it('rejects SCSI commands in a discovery session', async () => {
    const c = await connect();
    await c.login(INI, undefined);
    c.send<ScsiCommandPdu>({
      opcode: Opcode.SCSI_COMMAND,
      itt: 1,
      read: false,
      write: false,
      attr: 1,
      lun: 0,
      expectedDataTransferLength: 0,
      cmdSN: c.cmdSN,
      expStatSN: c.expStatSN,
      cdb: Buffer.alloc(16),
    });
    const r = (await c.next()) as RejectPdu;
    expect(r.opcode).toBe(Opcode.REJECT);
  });

  it('SendTargets=All in a discovery session lists the target and its portal', async () => {
    const c = await connect();
    await c.login(INI, undefined);
    c.send<TextRequestPdu>({
      opcode: Opcode.TEXT_REQUEST,
      continue: false,
      itt: 2,
      targetTransferTag: FF,
      cmdSN: c.cmdSN,
      expStatSN: c.expStatSN,
      data: Buffer.from('SendTargets=All\0'),
    });
    const r = (await c.next()) as TextResponsePdu;
    expect(r.opcode).toBe(Opcode.TEXT_RESPONSE);
    expect(r.final).toBe(true);
    expect(r.data.toString()).toBe(`TargetName=${t.iqn}\0TargetAddress=127.0.0.1:${t.port},1\0`);
  });

  it('Logout closes the session and the connection', async () => {
    const c = await connect();
    const login = await c.login(INI, t.iqn, { isid: 0x23d000000777 });
    expect(t.server.sessions().some((s) => s.tsih === login.tsih)).toBe(true);
    c.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, reasonCode: 0, itt: 3, cid: 0, cmdSN: c.cmdSN, expStatSN: c.expStatSN });
    const r = await c.next();
    expect(r).not.toBe('timeout');
    expect((r as { opcode: number }).opcode).toBe(Opcode.LOGOUT_RESPONSE);
    expect(await c.next()).toBe('closed');
    expect(t.server.sessions().some((s) => s.tsih === login.tsih)).toBe(false);
  });

  it('a new login with the same ISID reinstates the session (§6.3.5)', async () => {
    const a = await connect();
    const first = await a.login(INI, t.iqn, { isid: 0x23d000000999 });
    const b = await connect();
    const second = await b.login(INI, t.iqn, { isid: 0x23d000000999 });
    expect(second.tsih).not.toBe(first.tsih);
    expect(await a.next()).toBe('closed');
    nop(b, { itt: 1 });
    expect(((await b.next()) as NopInPdu).itt).toBe(1);
    expect(t.server.sessions().filter((s) => s.isid === '23d000000999')).toHaveLength(1);
  });
});
