// A bare-bones iSCSI initiator for tests that need to send exactly the PDU
// they want (malformed ones included) and see exactly what comes back.

import net from 'node:net';
import { PduFramer } from '../../src/protocols/iscsi/framer.js';
import { decodePdu, encodeBhs, type EncodablePdu } from '../../src/protocols/iscsi/pdu.js';
import { encodeFrame } from '../../src/protocols/iscsi/writer.js';
import { encodeTextKeys, parseTextKeys } from '../../src/protocols/iscsi/text.js';
import { Opcode, type LoginRequestPdu, type LoginResponsePdu, type Pdu } from '../../src/protocols/iscsi/pdu-types.js';

export type Next = Pdu | 'timeout' | 'closed';

export class RawInitiator {
  private readonly queue: Pdu[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  cmdSN = 1;
  expStatSN = 0;
  headerDigest = false;

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
    socket.on('data', (c: Buffer) => framer.push(c));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawInitiator> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawInitiator(s)));
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

  send<P extends Pdu>(pdu: EncodablePdu<P>): void {
    const data = (pdu as { data?: Buffer }).data;
    for (const b of encodeFrame(encodeBhs(pdu), data, { headerDigest: this.headerDigest, dataDigest: false })) this.socket.write(b);
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
  async login(initiator: string, target: string | undefined, o: { isid?: number; tsih?: number; extra?: Array<[string, string]> } = {}): Promise<LoginResponsePdu> {
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
