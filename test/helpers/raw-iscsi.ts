// A bare-bones iSCSI initiator for tests that need to send exactly the PDU
// they want (malformed ones included) and see exactly what comes back.

import net from 'node:net';
import { PduFramer } from '../../src/protocols/iscsi/framer.js';
import { decodePdu, encodeBhs, type EncodablePdu } from '../../src/protocols/iscsi/pdu.js';
import { encodeFrame } from '../../src/protocols/iscsi/writer.js';
import { encodeTextKeys, parseTextKeys } from '../../src/protocols/iscsi/text.js';
import {
  Opcode,
  type DataInPdu,
  type DataOutPdu,
  type LoginRequestPdu,
  type LoginResponsePdu,
  type Pdu,
  type R2TPdu,
  type ScsiCommandPdu,
  type ScsiResponsePdu,
} from '../../src/protocols/iscsi/pdu-types.js';

export type Next = Pdu | 'timeout' | 'closed';

export class RawInitiator {
  private readonly queue: Pdu[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  cmdSN = 1;
  expStatSN = 0;
  headerDigest = false;
  /** Data digests on what we send (see useDigests()). */
  dataDigest = false;
  private readonly framer: PduFramer;

  private constructor(readonly socket: net.Socket) {
    const framer = new PduFramer({
      maxDataSegmentLength: 1 << 24,
      headerDigest: false,
      dataDigest: false,
      onPdu: (f) => {
        this.queue.push(decodePdu(f.bhs, f.ahs, f.data));
        this.wake();
      },
      onError: () => socket.destroy(),
    });
    this.framer = framer;
    socket.on('data', (c: Buffer) => framer.push(c));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** `localAddress` picks the source address (127.0.0.x for a second client address). */
  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawInitiator> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => resolve(new RawInitiator(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  writeRaw(b: Buffer): void {
    this.socket.write(b);
  }

  send<P extends Pdu>(pdu: EncodablePdu<P>, o: { corruptDataDigest?: boolean } = {}): void {
    const data = (pdu as { data?: Buffer }).data;
    const iov = encodeFrame(encodeBhs(pdu), data, { headerDigest: this.headerDigest, dataDigest: this.dataDigest });
    if (o.corruptDataDigest && this.dataDigest && data !== undefined && data.length > 0) {
      // The data digest is the last iovec: send a flipped copy.
      const d = Buffer.from(iov[iov.length - 1]);
      d[0] ^= 0xff;
      iov[iov.length - 1] = d;
    }
    for (const b of iov) this.socket.write(b);
  }

  /** Switch both directions to these digests (call right after the final Login Response). */
  useDigests(header: boolean, data: boolean): void {
    this.headerDigest = header;
    this.dataDigest = data;
    this.framer.setDigests(header, data);
  }

  /** The next PDU, or 'timeout' / 'closed'. */
  async next(timeoutMs = 2000): Promise<Next> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.queue.shift();
      if (p) {
        if ('statSN' in p && p.opcode !== Opcode.R2T && p.opcode !== Opcode.DATA_IN) this.expStatSN = (p.statSN + 1) >>> 0;
        return p;
      }
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** One Login Request (CSG/NSG as given) with these keys; returns the response or what happened instead. */
  async loginStep(
    keys: Array<[string, string]>,
    o: { isid?: number; tsih?: number; cid?: number; csg?: number; nsg?: number; transit?: boolean } = {},
  ): Promise<LoginResponsePdu | 'timeout' | 'closed'> {
    this.send<LoginRequestPdu>({
      opcode: Opcode.LOGIN_REQUEST,
      immediate: true,
      transit: o.transit ?? true,
      continue: false,
      csg: o.csg ?? 1,
      nsg: o.nsg ?? 3,
      versionMax: 0,
      versionMin: 0,
      isid: o.isid ?? 0x23d000000001,
      tsih: o.tsih ?? 0,
      cid: o.cid ?? 0,
      itt: 0x1000,
      cmdSN: this.cmdSN,
      expStatSN: this.expStatSN,
      data: encodeTextKeys(keys),
    });
    const r = await this.next();
    if (r === 'timeout' || r === 'closed') return r;
    if (r.opcode !== Opcode.LOGIN_RESPONSE) throw new Error(`expected a Login Response, got opcode ${r.opcode}`);
    return r;
  }

  /** Log straight into full feature phase (no authentication). */
  async login(
    initiator: string,
    target: string | undefined,
    o: { isid?: number; tsih?: number; cid?: number; extra?: Array<[string, string]> } = {},
  ): Promise<LoginResponsePdu> {
    const keys: Array<[string, string]> = [['InitiatorName', initiator]];
    if (target) keys.push(['TargetName', target], ['SessionType', 'Normal']);
    else keys.push(['SessionType', 'Discovery']);
    keys.push(...(o.extra ?? []));
    const r = await this.loginStep(keys, o);
    if (r === 'timeout' || r === 'closed') throw new Error(`login: ${r}`);
    if (r.statusClass !== 0) throw new Error(`login failed ${r.statusClass}/${r.statusDetail}`);
    return r;
  }

  static keys(p: { data: Buffer }): Map<string, string> {
    return new Map(parseTextKeys(p.data));
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------
// SCSI-level helpers over RawInitiator (MC/S and ERL tests).

export function read10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x28;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

export function write10(lba: number, blocks: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x2a;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
}

export function scsiCmd(
  c: RawInitiator,
  o: { itt: number; cmdSN: number; cdb: Buffer; read?: number; write?: number; data?: Buffer; immediate?: boolean; final?: boolean },
): void {
  c.send<ScsiCommandPdu>({
    opcode: Opcode.SCSI_COMMAND,
    immediate: o.immediate ?? false,
    final: o.final ?? true,
    read: o.read !== undefined,
    write: o.write !== undefined,
    attr: 1,
    lun: 0,
    itt: o.itt,
    expectedDataTransferLength: o.read ?? o.write ?? 0,
    cmdSN: o.cmdSN,
    expStatSN: c.expStatSN,
    cdb: o.cdb,
    data: o.data,
  });
}

export function dataOut(c: RawInitiator, o: { itt: number; ttt: number; dataSN: number; offset: number; data: Buffer; final?: boolean }, corrupt = false): void {
  c.send<DataOutPdu>(
    {
      opcode: Opcode.DATA_OUT,
      immediate: false,
      final: o.final ?? true,
      lun: 0,
      itt: o.itt,
      targetTransferTag: o.ttt,
      expStatSN: c.expStatSN,
      dataSN: o.dataSN,
      bufferOffset: o.offset,
      data: o.data,
    },
    { corruptDataDigest: corrupt },
  );
}

/** The next PDU that is not a NOP-In ping; fails on timeout/close. */
export async function nextPdu(c: RawInitiator, ms = 3000): Promise<Pdu> {
  for (;;) {
    const p: Next = await c.next(ms);
    if (p === 'timeout' || p === 'closed') throw new Error(`expected a PDU, got ${p}`);
    if (p.opcode === Opcode.NOP_IN && p.itt === 0xffffffff) continue;
    if (p.opcode === Opcode.DATA_IN && p.statusPresent) c.expStatSN = (p.statSN + 1) >>> 0;
    return p;
  }
}

/** Read a whole answer to a read: Data-In payloads and the status. */
export async function collectRead(c: RawInitiator, itt: number): Promise<{ data: Buffer; status: number; statSN: number; dataIns: DataInPdu[] }> {
  const parts: Buffer[] = [];
  const dataIns: DataInPdu[] = [];
  for (;;) {
    const p = await nextPdu(c);
    if (p.opcode === Opcode.DATA_IN && p.itt === itt) {
      dataIns.push({ ...p, data: Buffer.from(p.data) });
      parts.push(Buffer.from(p.data));
      if (p.statusPresent) return { data: Buffer.concat(parts), status: p.status, statSN: p.statSN, dataIns };
      continue;
    }
    if (p.opcode === Opcode.SCSI_RESPONSE && p.itt === itt) return { data: Buffer.concat(parts), status: p.status, statSN: p.statSN, dataIns };
    throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} itt ${p.itt}`);
  }
}

/** Answer R2Ts of a write until its SCSI Response. */
export async function finishWrite(c: RawInitiator, itt: number, data: Buffer): Promise<ScsiResponsePdu> {
  for (;;) {
    const p = await nextPdu(c);
    if (p.opcode === Opcode.R2T && p.itt === itt) {
      const r = p as R2TPdu;
      dataOut(c, { itt, ttt: r.targetTransferTag, dataSN: 0, offset: r.bufferOffset, data: data.subarray(r.bufferOffset, r.bufferOffset + r.desiredDataTransferLength) });
      continue;
    }
    if (p.opcode === Opcode.SCSI_RESPONSE && p.itt === itt) return p;
    throw new Error(`unexpected PDU opcode 0x${p.opcode.toString(16)} itt ${p.itt}`);
  }
}

export interface RawSession {
  conns: RawInitiator[];
  tsih: number;
  isid: number;
  cmdSN: number;
}

/** A session of `n` connections (CID 0..n-1); `extra` goes in the leading login. */
export async function openSession(port: number, initiator: string, iqn: string, n: number, o: { isid: number; extra?: Array<[string, string]>; open?: RawInitiator[] }): Promise<RawSession> {
  const lead = await RawInitiator.connect(port);
  o.open?.push(lead);
  const r = await lead.login(initiator, iqn, { isid: o.isid, extra: [['MaxConnections', String(Math.max(n, 1))], ...(o.extra ?? [])] });
  const conns = [lead];
  for (let cid = 1; cid < n; cid++) {
    const c = await RawInitiator.connect(port);
    o.open?.push(c);
    await c.login(initiator, iqn, { isid: o.isid, tsih: r.tsih, cid });
    conns.push(c);
  }
  await clearUnitAttention(lead, 1);
  return { conns, tsih: r.tsih, isid: o.isid, cmdSN: 1 };
}

/** An immediate TEST UNIT READY (no CmdSN used) takes the new nexus's POWER ON unit attention. */
export async function clearUnitAttention(c: RawInitiator, cmdSN: number): Promise<void> {
  scsiCmd(c, { itt: 0xfeed, cmdSN, cdb: Buffer.alloc(16), immediate: true });
  const p = await nextPdu(c);
  if (p.opcode !== Opcode.SCSI_RESPONSE) throw new Error('TEST UNIT READY: no SCSI Response');
}

