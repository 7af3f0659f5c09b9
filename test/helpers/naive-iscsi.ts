// A deliberately naive iSCSI client for edge tests: builds PDUs byte by byte
// (RFC 7143 §11), frames responses with a simple loop, and computes CRC32C
// bit by bit. It shares no code with src/protocols, so a bug there cannot hide
// behind the same bug here. (test/helpers/raw-iscsi.ts is the other kind: a
// raw initiator built on our own codecs.)

import { connect, type Socket } from 'node:net';

export function crc32cNaive(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** The digest as it travels: least significant byte first (RFC 7143 Appendix B.4 examples). */
export function digestBytes(buf: Buffer): Buffer {
  const d = Buffer.alloc(4);
  d.writeUInt32LE(crc32cNaive(buf), 0);
  return d;
}

function pad4(b: Buffer): Buffer {
  const p = (4 - (b.length % 4)) % 4;
  return p ? Buffer.concat([b, Buffer.alloc(p)]) : b;
}

export interface NaivePduOut {
  bhs: Buffer;
  data?: Buffer;
}

export interface NaivePduIn {
  opcode: number;
  bhs: Buffer;
  data: Buffer;
}

export interface NaiveLoginOptions {
  headerDigest?: boolean;
  dataDigest?: boolean;
}

export class NaiveIscsiClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  headerDigest = false;
  dataDigest = false;
  cmdSN = 1;
  expStatSN = 0;
  itt = 0x100;

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<NaiveIscsiClient> {
    return new Promise((res, rej) => {
      const s = connect({ host, port }, () => res(new NaiveIscsiClient(s)));
      s.once('error', rej);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => {
      const t = setTimeout(r, Math.max(1, ms));
      this.waiters.push(() => {
        clearTimeout(t);
        r();
      });
    });
  }

  /** Frame bytes: BHS [+ header digest] + data + padding [+ data digest]. */
  frame(pdu: NaivePduOut, opts: { corruptHeaderDigest?: boolean; corruptDataDigest?: boolean } = {}): Buffer {
    const bhs = Buffer.from(pdu.bhs);
    const data = pdu.data ?? Buffer.alloc(0);
    bhs.writeUIntBE(data.length, 5, 3);
    const parts: Buffer[] = [bhs];
    if (this.headerDigest) {
      const d = digestBytes(bhs);
      if (opts.corruptHeaderDigest) d[0] ^= 0xff;
      parts.push(d);
    }
    if (data.length) {
      const padded = pad4(data);
      parts.push(padded);
      if (this.dataDigest) {
        const d = digestBytes(padded);
        if (opts.corruptDataDigest) d[0] ^= 0xff;
        parts.push(d);
      }
    }
    return Buffer.concat(parts);
  }

  send(pdu: NaivePduOut, opts?: { corruptHeaderDigest?: boolean; corruptDataDigest?: boolean }): void {
    this.sock.write(this.frame(pdu, opts));
  }

  sendBytes(b: Buffer): void {
    this.sock.write(b);
  }

  /** Next PDU, or undefined when the connection closed or `ms` passed. */
  async next(ms = 3000): Promise<NaivePduIn | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hlen = 48 + (this.headerDigest ? 4 : 0);
      if (this.buf.length >= 48) {
        const ahs = this.buf[4] * 4;
        const dlen = this.buf.readUIntBE(5, 3);
        const dpad = dlen + ((4 - (dlen % 4)) % 4);
        const total = hlen + ahs + dpad + (dlen && this.dataDigest ? 4 : 0);
        if (this.buf.length >= total) {
          const bhs = Buffer.from(this.buf.subarray(0, 48));
          const data = Buffer.from(this.buf.subarray(hlen + ahs, hlen + ahs + dlen));
          this.buf = this.buf.subarray(total);
          const opcode = bhs[0] & 0x3f;
          // PDUs that carry a StatSN advance ExpStatSN (RFC 7143 §4.2.2.2).
          if ([0x21, 0x22, 0x24, 0x26, 0x3f].includes(opcode) || (opcode === 0x25 && bhs[1] & 0x01)) {
            this.expStatSN = (bhs.readUInt32BE(24) + 1) >>> 0;
          }
          return { opcode, bhs, data };
        }
      }
      if (this.closed) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await this.sleep(left);
    }
  }

  /** Resolves true when the target closes the connection within `ms`. */
  async waitClosed(ms = 3000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) {
      this.buf = Buffer.alloc(0);
      await this.sleep(deadline - Date.now());
    }
    return this.closed;
  }

  /** One-step login straight to full feature phase (no authentication). */
  async login(initiator: string, target: string, opts: NaiveLoginOptions = {}): Promise<NaivePduIn> {
    const keys = [
      `InitiatorName=${initiator}`,
      `TargetName=${target}`,
      'SessionType=Normal',
      `HeaderDigest=${opts.headerDigest ? 'CRC32C' : 'None'}`,
      `DataDigest=${opts.dataDigest ? 'CRC32C' : 'None'}`,
      'MaxRecvDataSegmentLength=65536',
      'ImmediateData=Yes',
      'InitialR2T=Yes',
      'FirstBurstLength=65536',
      'MaxBurstLength=262144',
    ];
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x43;
    bhs[1] = 0x87; // T, CSG=1, NSG=3
    bhs.writeUIntBE(0x400001000000 + Math.floor(Math.random() * 0xffffff), 8, 6);
    bhs.writeUInt32BE(this.itt++, 16);
    bhs.writeUInt32BE(this.cmdSN, 24);
    this.send({ bhs, data: Buffer.from(keys.join('\0') + '\0') });
    const resp = await this.next(5000);
    if (!resp || resp.opcode !== 0x23) throw new Error(`no login response (${resp?.opcode})`);
    if (resp.bhs[36] !== 0) throw new Error(`login failed: class ${resp.bhs[36]} detail ${resp.bhs[37]}`);
    this.expStatSN = (resp.bhs.readUInt32BE(24) + 1) >>> 0;
    // Digests apply from the first PDU after the final login response.
    this.headerDigest = !!opts.headerDigest;
    this.dataDigest = !!opts.dataDigest;
    return resp;
  }

  /** A SCSI Command PDU (SIMPLE, final) for a CDB of up to 16 bytes. */
  scsiCommand(cdb: number[], opts: { read?: boolean; write?: boolean; edtl?: number; cmdSN?: number; itt?: number; data?: Buffer } = {}): NaivePduOut {
    const bhs = Buffer.alloc(48);
    bhs[0] = 0x01;
    bhs[1] = 0x80 | (opts.read ? 0x40 : 0) | (opts.write ? 0x20 : 0) | 0x01;
    bhs.writeUInt32BE(opts.itt ?? this.itt++, 16);
    bhs.writeUInt32BE(opts.edtl ?? 0, 20);
    bhs.writeUInt32BE(opts.cmdSN ?? this.cmdSN++, 24);
    bhs.writeUInt32BE(this.expStatSN, 28);
    Buffer.from(cdb).copy(bhs, 32);
    return { bhs, data: opts.data };
  }

  close(): void {
    this.sock.destroy();
  }
}
