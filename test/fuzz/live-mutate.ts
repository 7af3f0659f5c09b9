// Mutations for the live fuzzer (live-iscsi-lanes.ts, live-nbd-lanes.ts):
// a seeded generator, byte-level operators, and field-aware ones that know
// where an iSCSI PDU (RFC 7143 §11.2) or an NBD option/request (proto.md)
// keeps its opcode, flags, tags, sequence numbers and lengths. Each mutated
// message comes with the list of operators applied, printed with its bytes
// when a case fails.
//
// The stream models say how many more bytes the peer needs before the
// message it is reading ends (0: at a message boundary). A lane only sends
// its probe at a boundary; mid-message (a truncated PDU, a length made
// larger) it either completes the message with zeros or half-closes and
// expects the peer to close.

import { digestBytes } from '../../src/protocols/iscsi/crc32c.js';
import type { Seed } from './live-corpus.js';

/** sfc32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number, stream = 0) {
    this.a = 0x9e3779b9;
    this.b = seed >>> 0;
    this.c = stream >>> 0;
    this.d = 1;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

export interface Mutated {
  bytes: Buffer;
  /** Operators applied, in order (for the failure report). */
  ops: string[];
}

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING32 = [0, 1, 2, 0x1ff, 0x200, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

function flipBits(rng: Rng, b: Buffer, from: number, to: number, ops: string[]): void {
  if (to <= from) return;
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    const pos = from + rng.int(to - from);
    const bit = rng.int(8);
    b[pos] ^= 1 << bit;
    ops.push(`flip@${pos}.${bit}`);
  }
}

function setByte(rng: Rng, b: Buffer, from: number, to: number, ops: string[]): void {
  if (to <= from) return;
  const pos = from + rng.int(to - from);
  b[pos] = rng.chance(0.5) ? rng.pick(INTERESTING8) : rng.int(256);
  ops.push(`byte@${pos}=${b[pos]}`);
}

function set32(rng: Rng, b: Buffer, pos: number, ops: string[], name: string): void {
  const cur = b.readUInt32BE(pos);
  const v = rng.chance(0.3) ? (cur + rng.pick([-2, -1, 1, 2, 0x100, 0x10000])) >>> 0 : rng.chance(0.6) ? rng.pick(INTERESTING32) : rng.u32();
  b.writeUInt32BE(v, pos);
  ops.push(`${name}@${pos}=0x${v.toString(16)}`);
}

/** Another seed's bytes behind this message: whole (mostly) or only its start. */
function spliceTail(rng: Rng, others: readonly Seed[], ops: string[], frame: (b: Buffer) => Buffer = (b) => b): Buffer | undefined {
  if (others.length === 0) return undefined;
  const o = rng.pick(others);
  const whole = frame(o.bytes);
  const tail = rng.chance(0.8) ? whole : whole.subarray(0, 1 + rng.int(whole.length));
  ops.push(`splice ${o.name}[0,${tail.length})`);
  return tail;
}

/** Key=value text (RFC 7143 §6) mutated where it matters: separators, lengths, counts. */
function mutateText(rng: Rng, data: Buffer, ops: string[]): Buffer {
  const s = data.toString('latin1');
  switch (rng.int(6)) {
    case 0:
      ops.push('text-no-nul');
      return Buffer.from(s.replace(/\0/g, ''), 'latin1');
    case 1:
      ops.push('text-long-value');
      return Buffer.concat([data, Buffer.from(`X-com.example.long=${'A'.repeat(1 + rng.int(20000))}\0`)]);
    case 2: {
      const n = 1 + rng.int(600);
      ops.push(`text-${n}-keys`);
      let t = '';
      for (let i = 0; i < n; i++) t += `X-k${i}=${i}\0`;
      return Buffer.concat([data, Buffer.from(t)]);
    }
    case 3:
      ops.push('text-dup-keys');
      return Buffer.concat([data, data]);
    case 4:
      ops.push('text-no-equals');
      return Buffer.from(s.replace(/=/g, rng.chance(0.5) ? '' : '=='), 'latin1');
    default: {
      const pairs = s.split('\0').filter((p) => p.length > 0);
      const key = pairs.length > 0 ? rng.pick(pairs).split('=')[0] : 'MaxRecvDataSegmentLength';
      const value = rng.pick(['', '0', '-1', '4294967296', '99999999999999999999', 'Yes,No', 'CRC32C,', '\u00ff', 'None,None,None']);
      ops.push(`text-${key}=${JSON.stringify(value)}`);
      return Buffer.concat([data, Buffer.from(`${key}=${value}\0`, 'latin1')]);
    }
  }
}

// ---------------------------------------------------------------------------
// iSCSI

export interface IscsiFraming {
  headerDigest: boolean;
  dataDigest: boolean;
}

export interface IscsiParts {
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
}

/** A corpus PDU (no digests) split into BHS, AHS and data segment. */
export function splitIscsi(bytes: Buffer): IscsiParts {
  const ahsLen = bytes[4] * 4;
  const dsl = bytes.readUIntBE(5, 3);
  return {
    bhs: Buffer.from(bytes.subarray(0, 48)),
    ahs: Buffer.from(bytes.subarray(48, 48 + ahsLen)),
    data: Buffer.from(bytes.subarray(48 + ahsLen, 48 + ahsLen + dsl)),
  };
}

/** BHS + AHS + header digest + data + padding + data digest, as on the wire. */
export function frameIscsi(p: IscsiParts, f: IscsiFraming): Buffer {
  const header = Buffer.concat([p.bhs, p.ahs]);
  const out: Buffer[] = [header];
  if (f.headerDigest) out.push(digestBytes(header));
  if (p.data.length > 0) {
    const padded = Buffer.concat([p.data, Buffer.alloc((4 - (p.data.length % 4)) % 4)]);
    out.push(padded);
    if (f.dataDigest) out.push(digestBytes(padded));
  }
  return Buffer.concat(out);
}

const ISCSI_OPCODES = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x1c, 0x1e, 0x20, 0x21, 0x3f, 0x07, 0x0f];
const SCSI_OPCODES = [0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x1a, 0x25, 0x28, 0x2a, 0x2f, 0x35, 0x41, 0x42, 0x55, 0x5a, 0x5e, 0x5f, 0x83, 0x84, 0x88, 0x89, 0x8a, 0x8f, 0x91, 0x93, 0x9e, 0xa0, 0xa3, 0xa8, 0xaa, 0xff];

/**
 * One mutated PDU from a seed: 1-3 field or byte operators; lengths are kept
 * consistent unless an operator broke them on purpose; digests are recomputed
 * over the mutated bytes unless one is corrupted on purpose.
 */
export function mutateIscsi(rng: Rng, seed: IscsiParts, f: IscsiFraming, others: readonly Seed[]): Mutated {
  const p: IscsiParts = { bhs: Buffer.from(seed.bhs), ahs: Buffer.from(seed.ahs), data: Buffer.from(seed.data) };
  const ops: string[] = [];
  let rawLengths = false;
  let corruptHeaderDigest = false;
  let corruptDataDigest = false;
  let cut = -1;
  let tail: Buffer | undefined;
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    switch (rng.int(15)) {
      case 0:
        flipBits(rng, p.bhs, 0, 48, ops);
        break;
      case 1:
        setByte(rng, p.bhs, 0, 48, ops);
        break;
      case 2:
        p.bhs[0] = (p.bhs[0] & 0x40) | (rng.chance(0.8) ? rng.pick(ISCSI_OPCODES) : rng.int(64));
        ops.push(`opcode=0x${p.bhs[0].toString(16)}`);
        break;
      case 3:
        p.bhs[1] = rng.int(256);
        ops.push(`flags=0x${p.bhs[1].toString(16)}`);
        break;
      case 4:
      case 5:
        set32(rng, p.bhs, rng.pick([16, 20, 24, 28, 32, 36, 40, 44]), ops, 'field');
        break;
      case 6:
        for (let k = 8; k < 16; k++) p.bhs[k] = rng.chance(0.7) ? 0 : rng.int(256);
        p.bhs[9] = rng.pick([0, 1, 2, 7, 255]);
        ops.push(`lun=${p.bhs.subarray(8, 16).toString('hex')}`);
        break;
      case 7:
        if (rng.chance(0.5)) p.bhs[32] = rng.pick(SCSI_OPCODES);
        else flipBits(rng, p.bhs, 32, 48, ops);
        if (rng.chance(0.3)) p.bhs.writeUInt32BE(rng.pick(INTERESTING32), 32 + rng.pick([2, 6, 10]));
        ops.push(`cdb=${p.bhs.subarray(32, 48).toString('hex')}`);
        break;
      case 8: {
        rawLengths = true;
        const v = rng.pick([0, 1, p.data.length - 1, p.data.length + 1, p.data.length + 4, 8192, 8193, 65536, 262144, 262145, 0xffffff, rng.int(0x1000000)]);
        p.bhs.writeUIntBE(Math.max(0, v), 5, 3);
        ops.push(`dsl=${Math.max(0, v)}`);
        break;
      }
      case 9:
        if (rng.chance(0.3)) {
          rawLengths = true;
          p.bhs[4] = rng.int(256);
          ops.push(`ahslen=${p.bhs[4]}`);
        } else {
          // A real AHS: Extended CDB (1), Bidirectional Read Expected Data Length (2), or an unknown type.
          const len = rng.pick([1, 4, 5, 13, 200]);
          const ahs = Buffer.alloc(3 + len + ((4 - ((3 + len) % 4)) % 4));
          ahs.writeUInt16BE(len, 0);
          ahs[2] = rng.pick([1, 2, 0x3f, 0x40]);
          rng.bytes(len).copy(ahs, 3);
          p.ahs = Buffer.concat([p.ahs, ahs]);
          ops.push(`ahs type ${ahs[2]} len ${len}`);
        }
        break;
      case 10:
        if (p.data.length > 0) flipBits(rng, p.data, 0, p.data.length, ops);
        else p.data = rng.bytes(1 + rng.int(64));
        break;
      case 11:
        p.data = mutateText(rng, p.data, ops);
        break;
      case 12:
        if (rng.chance(0.5)) {
          p.data = Buffer.concat([p.data, rng.bytes(1 + rng.int(rng.chance(0.2) ? 300_000 : 9000))]);
          ops.push(`data-grow=${p.data.length}`);
        } else {
          p.data = p.data.subarray(0, rng.int(p.data.length + 1));
          ops.push(`data-shrink=${p.data.length}`);
        }
        break;
      case 13:
        if (f.headerDigest && rng.chance(0.5)) corruptHeaderDigest = true;
        else if (f.dataDigest) corruptDataDigest = true;
        else if (rng.chance(0.3)) cut = rng.int(48 + p.ahs.length + p.data.length);
        else flipBits(rng, p.bhs, 0, 8, ops);
        if (corruptHeaderDigest || corruptDataDigest || cut >= 0) ops.push(corruptHeaderDigest ? 'bad-header-digest' : corruptDataDigest ? 'bad-data-digest' : `cut=${cut}`);
        break;
      default:
        tail = spliceTail(rng, others, ops, (b) => frameIscsi(splitIscsi(b), f));
    }
  }
  if (!rawLengths) {
    p.bhs[4] = Math.ceil(p.ahs.length / 4);
    p.bhs.writeUIntBE(Math.min(p.data.length, 0xffffff), 5, 3);
  }
  let bytes = frameIscsi(p, f);
  const headerLen = 48 + p.ahs.length;
  if (corruptHeaderDigest) bytes[headerLen + rng.int(4)] ^= 0x5a;
  if (corruptDataDigest && p.data.length > 0) bytes[bytes.length - 1 - rng.int(4)] ^= 0xa5;
  if (cut >= 0) bytes = bytes.subarray(0, cut);
  if (tail) bytes = Buffer.concat([bytes, tail]);
  return { bytes, ops };
}

/** How an iSCSI target's framer (RFC 7143 §11.2) walks the bytes it is sent. */
export class IscsiStreamModel {
  private header = Buffer.alloc(0);
  private need = 0;
  /**
   * `guard(opcode, buf, at)` is shown the first two bytes of every header
   * the target will read (opcode and flags, buf[at] being the flags byte,
   * which it may rewrite before the bytes are sent), also when the header
   * is split between two pushes.
   */
  constructor(
    private readonly f: IscsiFraming,
    private readonly guard: (opcode: number, buf: Buffer, at: number) => void = () => {},
  ) {}
  push(bytes: Buffer): void {
    let i = 0;
    while (i < bytes.length) {
      if (this.need > 0) {
        const take = Math.min(this.need, bytes.length - i);
        this.need -= take;
        i += take;
        continue;
      }
      if (this.header.length === 0 && bytes.length - i >= 2) this.guard(bytes[i], bytes, i + 1);
      else if (this.header.length === 1) this.guard(this.header[0], bytes, i);
      const take = Math.min(48 - this.header.length, bytes.length - i);
      this.header = Buffer.concat([this.header, bytes.subarray(i, i + take)]);
      i += take;
      if (this.header.length === 48) {
        const dsl = this.header.readUIntBE(5, 3);
        this.need = this.header[4] * 4 + (this.f.headerDigest ? 4 : 0) + dsl + ((4 - (dsl % 4)) % 4) + (this.f.dataDigest && dsl > 0 ? 4 : 0);
        this.header = Buffer.alloc(0);
      }
    }
  }
  /** Bytes the target still waits for before the current PDU is complete (0: at a boundary). */
  get pending(): number {
    return this.need > 0 ? this.need : this.header.length > 0 ? 48 - this.header.length : 0;
  }
}

// ---------------------------------------------------------------------------
// NBD (proto.md)

const NBD_OPTIONS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x1234, 0x8000_0000, 0xffff_ffff];
const NBD_LENGTHS = [0, 1, 511, 512, 4096, 1 << 20, (1 << 25) - 1, 1 << 25, (1 << 25) + 1, 0x7fff_ffff, 0xffff_ffff];

/** An option request (IHAVEOPT, option, length, data) with 1-3 operators. */
export function mutateNbdOption(rng: Rng, seed: Buffer, others: readonly Seed[]): Mutated {
  let data: Buffer = Buffer.from(seed.subarray(16));
  const head = Buffer.from(seed.subarray(0, 16));
  const ops: string[] = [];
  let rawLength = false;
  let tail: Buffer | undefined;
  let cut = -1;
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    switch (rng.int(10)) {
      case 0:
        flipBits(rng, head, 0, 16, ops);
        break;
      case 1:
      case 2:
        head.writeUInt32BE(rng.pick(NBD_OPTIONS), 8);
        ops.push(`option=${head.readUInt32BE(8)}`);
        break;
      case 3:
        rawLength = true;
        head.writeUInt32BE(rng.pick([...NBD_LENGTHS, data.length + 1, Math.max(0, data.length - 1)]), 12);
        ops.push(`length=${head.readUInt32BE(12)}`);
        break;
      case 4:
        if (data.length >= 4) {
          // The export name's (or a query's) own length field.
          const at = rng.chance(0.7) ? 0 : rng.int(data.length - 3);
          data.writeUInt32BE(rng.pick(NBD_LENGTHS), at);
          ops.push(`inner-length@${at}=${data.readUInt32BE(at)}`);
        } else {
          data = rng.bytes(1 + rng.int(64));
          ops.push(`data=${data.length}`);
        }
        break;
      case 5:
      case 6:
        if (data.length > 0) flipBits(rng, data, 0, data.length, ops);
        else setByte(rng, head, 8, 12, ops);
        break;
      case 7:
        data = Buffer.concat([data, rng.chance(0.5) ? rng.bytes(1 + rng.int(5000)) : Buffer.alloc(rng.int(70_000), 0x41)]);
        ops.push(`data-grow=${data.length}`);
        break;
      case 8:
        if (rng.chance(0.3)) {
          cut = rng.int(16 + data.length);
          ops.push(`cut=${cut}`);
        } else {
          data = data.subarray(0, rng.int(data.length + 1));
          ops.push(`data-shrink=${data.length}`);
        }
        break;
      default:
        tail = spliceTail(rng, others, ops);
    }
  }
  if (!rawLength) head.writeUInt32BE(data.length, 12);
  let bytes = Buffer.concat([head, data]);
  if (cut >= 0) bytes = bytes.subarray(0, cut);
  if (tail) bytes = Buffer.concat([bytes, tail]);
  return { bytes, ops };
}

/** The server's view of option haggling bytes: 16-byte header, then `length` bytes. */
export class NbdOptionStreamModel {
  private header = Buffer.alloc(0);
  private need = 0;
  /** `onOption` hears each option number as its header completes. */
  constructor(private readonly onOption: (option: number) => void = () => {}) {}
  push(bytes: Buffer): void {
    let i = 0;
    while (i < bytes.length) {
      if (this.need > 0) {
        const take = Math.min(this.need, bytes.length - i);
        this.need -= take;
        i += take;
        continue;
      }
      const take = Math.min(16 - this.header.length, bytes.length - i);
      this.header = Buffer.concat([this.header, bytes.subarray(i, i + take)]);
      i += take;
      if (this.header.length === 16) {
        this.need = this.header.readUInt32BE(12);
        this.onOption(this.header.readUInt32BE(8));
        this.header = Buffer.alloc(0);
      }
    }
  }
  get pending(): number {
    return this.need > 0 ? this.need : this.header.length > 0 ? 16 - this.header.length : 0;
  }
}

export const NBD_CMD_FLAG_PAYLOAD_LEN = 0x20;

/** A request (compact 28-byte or extended 32-byte header, payload for writes) with 1-3 operators. */
export function mutateNbdRequest(rng: Rng, seed: Buffer, extended: boolean, others: readonly Seed[]): Mutated {
  const hlen = extended ? 32 : 28;
  const head = Buffer.from(seed.subarray(0, hlen));
  let payload: Buffer = Buffer.from(seed.subarray(hlen));
  const ops: string[] = [];
  let rawLength = false;
  let cut = -1;
  let tail: Buffer | undefined;
  const writeLength = (v: number): void => {
    if (extended) head.writeBigUInt64BE(BigInt(v), 24);
    else head.writeUInt32BE(v >>> 0, 24);
  };
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    switch (rng.int(11)) {
      case 0:
        flipBits(rng, head, 4, hlen, ops);
        break;
      case 1:
      case 2:
        head.writeUInt16BE(rng.chance(0.7) ? 1 << rng.int(16) : rng.int(0x10000), 4);
        ops.push(`flags=0x${head.readUInt16BE(4).toString(16)}`);
        break;
      case 3:
        head.writeUInt16BE(rng.chance(0.8) ? rng.int(12) : rng.int(0x10000), 6);
        ops.push(`type=${head.readUInt16BE(6)}`);
        break;
      case 4:
      case 5: {
        const off = rng.pick([0n, 1n, 511n, (16n << 20n) - 512n, 16n << 20n, (16n << 20n) + 4096n, (1n << 63n) - 1n, (1n << 64n) - 1n, BigInt(rng.u32())]);
        head.writeBigUInt64BE(off, 16);
        ops.push(`offset=${off}`);
        break;
      }
      case 6: {
        rawLength = true;
        if (extended && rng.chance(0.3)) head.writeBigUInt64BE(rng.pick([1n << 32n, 1n << 40n, (1n << 64n) - 1n]), 24);
        else writeLength(rng.pick(NBD_LENGTHS));
        ops.push(`length=${extended ? head.readBigUInt64BE(24) : head.readUInt32BE(24)}`);
        break;
      }
      case 7:
        if (payload.length > 0) flipBits(rng, payload, 0, payload.length, ops);
        else if (rng.chance(0.3)) {
          payload = rng.bytes(1 + rng.int(2048));
          ops.push(`payload=${payload.length}`);
        } else writeLength(rng.pick(NBD_LENGTHS));
        break;
      case 8:
        if (rng.chance(0.3)) {
          cut = rng.int(hlen + payload.length);
          ops.push(`cut=${cut}`);
        } else {
          head.writeUInt32BE(rng.pick([0x25609513, 0x21e41c71, 0x67446698, 0, 0xffff_ffff]), 0);
          ops.push(`magic=0x${head.readUInt32BE(0).toString(16)}`);
        }
        break;
      default:
        tail = spliceTail(rng, others, ops);
    }
  }
  if (!rawLength && payload.length > 0) writeLength(payload.length);
  let bytes = Buffer.concat([head, payload]);
  if (cut >= 0) bytes = bytes.subarray(0, cut);
  if (tail) bytes = Buffer.concat([bytes, tail]);
  return { bytes, ops };
}

/** The server's view of transmission bytes: a header, then a payload for WRITE or PAYLOAD_LEN. */
export class NbdRequestStreamModel {
  private header = Buffer.alloc(0);
  private need = 0;
  /**
   * `onRequest` hears each request as its header completes; `rewrite` may
   * change a header that lies whole in one pushed buffer before it is sent.
   */
  constructor(
    private readonly extended: boolean,
    private readonly onRequest: (cookie: bigint, type: number, length: number) => void = () => {},
    private readonly rewrite: (header: Buffer) => void = () => {},
  ) {}
  push(bytes: Buffer): void {
    const hlen = this.extended ? 32 : 28;
    let i = 0;
    while (i < bytes.length) {
      if (this.need > 0) {
        const take = Math.min(this.need, bytes.length - i);
        this.need -= take;
        i += take;
        continue;
      }
      if (this.header.length === 0 && bytes.length - i >= hlen) this.rewrite(bytes.subarray(i, i + hlen));
      const take = Math.min(hlen - this.header.length, bytes.length - i);
      this.header = Buffer.concat([this.header, bytes.subarray(i, i + take)]);
      i += take;
      if (this.header.length === hlen) {
        const type = this.header.readUInt16BE(6);
        const flags = this.header.readUInt16BE(4);
        const length = this.extended ? Number(this.header.readBigUInt64BE(24)) : this.header.readUInt32BE(24);
        this.need = type === 1 || (this.extended && flags & NBD_CMD_FLAG_PAYLOAD_LEN) ? length : 0;
        this.onRequest(this.header.readBigUInt64BE(8), type, length);
        this.header = Buffer.alloc(0);
      }
    }
  }
  get pending(): number {
    return this.need > 0 ? this.need : this.header.length > 0 ? (this.extended ? 32 : 28) - this.header.length : 0;
  }
}
