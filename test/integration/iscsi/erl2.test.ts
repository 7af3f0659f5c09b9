// ERL 2 on the target (RFC 7143 §6.2.2, §7.1, §11.5.1, §11.14): a failed
// connection's tasks are held, Logout reason 2 from another connection or a
// reinstatement with the same CID releases them, TASK REASSIGN moves them to
// a live connection (reads resend from ExpDataSN + status, writes ask again
// with R2T, finished tasks resend their status), and Time2Retain expiry frees
// everything.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RawInitiator, collectRead, dataOut, finishWrite, nextPdu, openSession, read10, scsiCmd, write10 } from '../../helpers/raw-iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { ScsiCore } from '../../../src/core/engine.js';
import type { BackstoreOps } from '../../../src/core/types.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { IscsiTargetServer } from '../../../src/fabrics/iscsi/server.js';
import { DEFAULT_TPG_ATTRIBUTES } from '../../../src/fabrics/iscsi/config.js';
import {
  Opcode,
  type DataInPdu,
  type LogoutRequestPdu,
  type LogoutResponsePdu,
  type R2TPdu,
  type ScsiResponsePdu,
  type TaskMgmtRequestPdu,
  type TaskMgmtResponsePdu,
} from '../../../src/protocols/iscsi/pdu-types.js';

const INI = 'iqn.2024-01.org.lunkit.test:erl2';
const TASK_REASSIGN = 8;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function reassign(c: RawInitiator, o: { itt: number; ref: number; refCmdSN: number; cmdSN: number; expDataSN?: number }): void {
  c.send<TaskMgmtRequestPdu>({
    opcode: Opcode.TASK_MGMT_REQUEST,
    immediate: true,
    final: true,
    function: TASK_REASSIGN,
    lun: 0,
    itt: o.itt,
    referencedTaskTag: o.ref,
    cmdSN: o.cmdSN,
    expStatSN: c.expStatSN,
    refCmdSN: o.refCmdSN,
    expDataSN: o.expDataSN ?? 0,
  });
}

function logout(c: RawInitiator, o: { itt: number; reason: number; cid: number; cmdSN: number }): void {
  c.send<LogoutRequestPdu>({ opcode: Opcode.LOGOUT_REQUEST, immediate: true, itt: o.itt, reasonCode: o.reason, cid: o.cid, cmdSN: o.cmdSN, expStatSN: c.expStatSN });
}

async function tmfResponse(c: RawInitiator): Promise<number> {
  const p = (await nextPdu(c)) as TaskMgmtResponsePdu;
  expect(p.opcode).toBe(Opcode.TASK_MGMT_RESPONSE);
  return p.response;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('iSCSI target ERL 2', () => {
  let t: TestTarget;
  const open: RawInitiator[] = [];
  let isid = 0x23d000000500;
  const erl2 = (retain = 20): Array<[string, string]> => [
    ['ErrorRecoveryLevel', '2'],
    ['DefaultTime2Wait', '0'],
    ['DefaultTime2Retain', String(retain)],
  ];

  beforeAll(async () => {
    t = await startIscsiTarget({
      lunSizes: [4 * 1024 * 1024],
      parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0', DefaultTime2Retain: '20' },
    });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a write cut off mid-transfer: still allegiant until Logout reason 2, then TASK REASSIGN asks again with R2T', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: isid++, extra: erl2(), open });
    const [a, b] = s.conns;
    const data = pattern(64 * 1024, 3);
    scsiCmd(a, { itt: 1, cmdSN: 1, cdb: write10(50, 128), write: data.length });
    const r2t = (await nextPdu(a)) as R2TPdu;
    expect(r2t.opcode).toBe(Opcode.R2T);
    // Half the burst, then the connection dies.
    dataOut(a, { itt: 1, ttt: r2t.targetTransferTag, dataSN: 0, offset: 0, data: data.subarray(0, 8192), final: false });
    a.close();
    await sleep(100);
    reassign(b, { itt: 100, ref: 1, refCmdSN: 1, cmdSN: 2 });
    expect(await tmfResponse(b)).toBe(3); // task still allegiant
    logout(b, { itt: 101, reason: 2, cid: 0, cmdSN: 2 });
    const lr = (await nextPdu(b)) as LogoutResponsePdu;
    expect([lr.opcode, lr.response, lr.time2Wait, lr.time2Retain]).toEqual([Opcode.LOGOUT_RESPONSE, 0, 0, 20]);
    reassign(b, { itt: 102, ref: 1, refCmdSN: 1, cmdSN: 2 });
    expect(await tmfResponse(b)).toBe(0);
    // The write continues on B: R2Ts for what is missing, then the status.
    const resp = await finishWrite(b, 1, data);
    expect(resp.status).toBe(0);
    scsiCmd(b, { itt: 2, cmdSN: 2, cdb: read10(50, 128), read: data.length });
    expect((await collectRead(b, 2)).data.equals(data)).toBe(true);
    // The session kept its TSIH throughout.
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)?.connections.map((c) => c.cid)).toEqual([1]);
  });

  it('a finished read whose status was never acknowledged: TASK REASSIGN resends from ExpDataSN and the status on the new connection', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: isid++, extra: erl2(), open });
    const [a, b] = s.conns;
    const data = pattern(32 * 1024, 11);
    scsiCmd(b, { itt: 5, cmdSN: 1, cdb: write10(900, 64), write: data.length });
    expect((await finishWrite(b, 5, data)).status).toBe(0);
    scsiCmd(a, { itt: 6, cmdSN: 2, cdb: read10(900, 64), read: data.length });
    const rd = await collectRead(a, 6);
    expect(rd.dataIns.length).toBe(4);
    a.close();
    await sleep(100);
    logout(b, { itt: 7, reason: 2, cid: 0, cmdSN: 3 });
    expect(((await nextPdu(b)) as LogoutResponsePdu).response).toBe(0);
    reassign(b, { itt: 8, ref: 6, refCmdSN: 2, cmdSN: 3, expDataSN: 2 });
    const tmf = (await nextPdu(b)) as TaskMgmtResponsePdu;
    expect([tmf.opcode, tmf.response]).toEqual([Opcode.TASK_MGMT_RESPONSE, 0]);
    const again = await collectRead(b, 6);
    expect(again.dataIns.map((p: DataInPdu) => p.dataSN)).toEqual([2, 3]);
    expect(again.data.equals(data.subarray(16384))).toBe(true);
    expect(again.status).toBe(0);
    // B's own StatSN sequence (the next after its TMF response), not A's.
    expect(again.statSN).toBe(tmf.statSN + 1);
    // A task that does not exist.
    reassign(b, { itt: 9, ref: 77, refCmdSN: 2, cmdSN: 3 });
    expect(await tmfResponse(b)).toBe(1);
  });

  it('connection reinstatement (same CID) releases the tasks: a finished write resends its status', async () => {
    const s = await openSession(t.port, INI, t.iqn, 1, { isid: isid++, extra: erl2(), open });
    const [a] = s.conns;
    const data = pattern(4096, 2);
    scsiCmd(a, { itt: 3, cmdSN: 1, cdb: write10(1200, 8), write: data.length, data });
    const first = (await nextPdu(a)) as ScsiResponsePdu;
    expect(first.status).toBe(0);
    // Reinstate CID 0 while the old socket is still open: the target drops it.
    const a2 = await RawInitiator.connect(t.port);
    open.push(a2);
    await a2.login(INI, t.iqn, { isid: s.isid, tsih: s.tsih, cid: 0 });
    expect(await a.next()).toBe('closed');
    reassign(a2, { itt: 4, ref: 3, refCmdSN: 1, cmdSN: 2 });
    expect(await tmfResponse(a2)).toBe(0);
    const resp = (await nextPdu(a2)) as ScsiResponsePdu;
    expect([resp.opcode, resp.itt, resp.status]).toEqual([Opcode.SCSI_RESPONSE, 3, 0]);
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)).toBeDefined();
  });

  it('Time2Retain expiry frees the held tasks; a session with no connection left ends then', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: isid++, extra: erl2(1), open });
    const [a, b] = s.conns;
    scsiCmd(a, { itt: 1, cmdSN: 1, cdb: write10(10, 8), write: 4096 });
    expect((await nextPdu(a)).opcode).toBe(Opcode.R2T);
    a.close();
    await sleep(1500);
    logout(b, { itt: 2, reason: 2, cid: 0, cmdSN: 2 });
    expect(((await nextPdu(b)) as LogoutResponsePdu).response).toBe(1); // CID not found any more
    reassign(b, { itt: 3, ref: 1, refCmdSN: 1, cmdSN: 2 });
    expect(await tmfResponse(b)).toBe(1);
    // The command's CmdSN slot was given back: the window is full width again.
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)?.cmdsInFlight).toBe(0);
    // The last connection fails too: the session waits Time2Retain, then ends.
    b.close();
    await sleep(200);
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)).toBeDefined();
    await sleep(1300);
    expect(t.server.sessions().find((x) => x.tsih === s.tsih)).toBeUndefined();
  });

  it('Logout reason 2 on the connection it removes: its tasks are held, then reassigned elsewhere', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: isid++, extra: erl2(), open });
    const [a, b] = s.conns;
    const data = pattern(8192, 9);
    scsiCmd(a, { itt: 1, cmdSN: 1, cdb: write10(2000, 16), write: data.length });
    const r2t = (await nextPdu(a)) as R2TPdu;
    expect(r2t.opcode).toBe(Opcode.R2T);
    logout(a, { itt: 2, reason: 2, cid: 0, cmdSN: 2 });
    const lr = (await nextPdu(a)) as LogoutResponsePdu;
    expect([lr.opcode, lr.response, lr.time2Retain]).toEqual([Opcode.LOGOUT_RESPONSE, 0, 20]);
    expect(await a.next()).toBe('closed');
    reassign(b, { itt: 3, ref: 1, refCmdSN: 1, cmdSN: 2 });
    expect(await tmfResponse(b)).toBe(0);
    expect((await finishWrite(b, 1, data)).status).toBe(0);
    scsiCmd(b, { itt: 4, cmdSN: 2, cdb: read10(2000, 16), read: data.length });
    expect((await collectRead(b, 4)).data.equals(data)).toBe(true);
  });

  it('below ERL 2: TASK REASSIGN answers 4 and Logout reason 2 answers 2', async () => {
    const s = await openSession(t.port, INI, t.iqn, 2, { isid: isid++, extra: [['ErrorRecoveryLevel', '1']], open });
    const [, b] = s.conns;
    reassign(b, { itt: 1, ref: 1, refCmdSN: 1, cmdSN: 1 });
    expect(await tmfResponse(b)).toBe(4);
    logout(b, { itt: 2, reason: 2, cid: 0, cmdSN: 1 });
    expect(((await nextPdu(b)) as LogoutResponsePdu).response).toBe(2);
  });
});

describe('iSCSI target ERL 2 with a command still running in the core', () => {
  let server: IscsiTargetServer;
  let store: RamdiskBackstore;
  let port = 0;
  let readDelayMs = 0;
  const iqn = 'iqn.2024-01.org.lunkit.test:erl2-slow';
  const open: RawInitiator[] = [];

  beforeAll(async () => {
    const core = new ScsiCore();
    store = new RamdiskBackstore({ name: 'slow0', size: 4 * 1024 * 1024, blockSize: 512 });
    // The same ramdisk, with reads held back while readDelayMs is set.
    const slow: BackstoreOps = {
      kind: store.kind,
      name: store.name,
      size: store.size,
      blockSize: store.blockSize,
      // Only what this wrapper implements (the core checks caps against methods).
      caps: { ...store.caps, canUnmap: false, canWriteZeroes: false, canExtents: false },
      read: async (buf, offset) => {
        if (readDelayMs > 0) await sleep(readDelayMs);
        return store.read(buf, offset);
      },
      write: (buf, offset) => store.write(buf, offset),
      flush: () => store.flush(),
      close: () => Promise.resolve(),
    };
    server = new IscsiTargetServer(core);
    await server.addTarget({
      iqn,
      tpgs: [
        {
          tag: 1,
          enabled: true,
          portals: [{ host: '127.0.0.1', port: 0 }],
          luns: [{ lun: 0, device: core.createDevice(slow, { name: 'slow0' }) }],
          acls: [],
          attributes: { ...DEFAULT_TPG_ATTRIBUTES, generateNodeAcls: true },
          parameters: { MaxConnections: '4', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0', DefaultTime2Retain: '20' },
        },
      ],
    });
    await server.listen();
    port = server.addresses()[0].port;
  });
  afterEach(() => {
    readDelayMs = 0;
    for (const c of open.splice(0)) c.close();
  });
  afterAll(async () => {
    await server?.close({ graceMs: 0 });
    await store?.close();
  });

  it('a read in the core when its connection dies answers on the connection it is reassigned to', async () => {
    const s = await openSession(port, INI, iqn, 2, { isid: 0x23d000000600, extra: [['ErrorRecoveryLevel', '2'], ['DefaultTime2Wait', '0']], open });
    const [a, b] = s.conns;
    const data = pattern(16 * 1024, 21);
    scsiCmd(b, { itt: 1, cmdSN: 1, cdb: write10(40, 32), write: data.length });
    expect((await finishWrite(b, 1, data)).status).toBe(0);
    readDelayMs = 600;
    scsiCmd(a, { itt: 2, cmdSN: 2, cdb: read10(40, 32), read: data.length });
    await sleep(50);
    a.close();
    await sleep(50);
    logout(b, { itt: 3, reason: 2, cid: 0, cmdSN: 3 });
    expect(((await nextPdu(b)) as LogoutResponsePdu).response).toBe(0);
    reassign(b, { itt: 4, ref: 2, refCmdSN: 2, cmdSN: 3 });
    expect(await tmfResponse(b)).toBe(0);
    const rd = await collectRead(b, 2);
    expect(rd.status).toBe(0);
    expect(rd.data.equals(data)).toBe(true);
  });
});
