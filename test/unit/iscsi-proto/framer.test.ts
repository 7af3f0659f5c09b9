import { describe, expect, it } from 'vitest';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { PduFramer, type RawPdu } from '../../../src/protocols/iscsi/framer.js';
import type { LunkitError } from '../../../src/protocols/errors.js';
import { hex, VECTORS, type Vector } from './vectors.js';

// The wire form of a PDU, built naively here (not with writer.ts): header,
// header digest (LSB first), data, zero padding, data digest over data+padding.
function le32(n: number): Buffer {
  return Buffer.from([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
}
function wire(v: Pick<Vector, 'bhs' | 'ahs' | 'data'>, hd: boolean, dd: boolean): Buffer {
  const parts: Buffer[] = [v.bhs, v.ahs];
  if (hd) parts.push(le32(nativeCrc32c(Buffer.concat([v.bhs, v.ahs])) >>> 0));
  if (v.data.length > 0) {
    const padded = Buffer.concat([v.data, Buffer.alloc((4 - (v.data.length % 4)) % 4)]);
    parts.push(padded);
    if (dd) parts.push(le32(nativeCrc32c(padded) >>> 0));
  }
  return Buffer.concat(parts);
}

interface Seen {
  pdus: RawPdu[];
  errors: LunkitError[];
  framer: PduFramer;
}
function collect(hd: boolean, dd: boolean, max = 1 << 20): Seen {
  const s: Seen = { pdus: [], errors: [], framer: undefined as unknown as PduFramer };
  s.framer = new PduFramer({
    maxDataSegmentLength: max,
    headerDigest: hd,
    dataDigest: dd,
    onPdu: (f) => s.pdus.push(f),
    onError: (e) => s.errors.push(e),
  });
  return s;
}
function summary(p: RawPdu): string {
  return `${p.bhs.toString('hex')}/${p.ahs.toString('hex')}/${p.data.toString('hex')}/${p.headerDigestOk}/${p.dataDigestOk}`;
}

// Several PDUs with AHS, with padding (6-, 5- and 20-byte data), without data.
const ODD: Vector = {
  name: 'odd',
  bhs: hex(`05800000 00000005 ${'00'.repeat(8)} 00000001 00000001 ${'00'.repeat(24)}`),
  ahs: Buffer.alloc(0),
  data: Buffer.from('hello'),
  pdu: VECTORS[0].pdu,
};
const STREAM_VECTORS = [...VECTORS, ODD];

describe('PduFramer', () => {
  for (const [hd, dd] of [
    [false, false],
    [true, true],
    [true, false],
    [false, true],
  ] as const) {
    describe(`headerDigest=${hd} dataDigest=${dd}`, () => {
      const stream = Buffer.concat(STREAM_VECTORS.map((v) => wire(v, hd, dd)));
      const expected = STREAM_VECTORS.map((v) => `${v.bhs.toString('hex')}/${v.ahs.toString('hex')}/${v.data.toString('hex')}/true/true`);

      it('one chunk: every PDU, views into the chunk', () => {
        const s = collect(hd, dd);
        s.framer.push(stream);
        expect(s.errors).toEqual([]);
        expect(s.pdus.map(summary)).toEqual(expected);
        for (const p of s.pdus) {
          expect(p.bhs.buffer).toBe(stream.buffer);
          if (p.data.length > 0) expect(p.data.buffer).toBe(stream.buffer);
        }
        expect(s.framer.bufferedBytes).toBe(0);
      });

      it('split at every offset gives identical PDUs', () => {
        for (let cut = 0; cut <= stream.length; cut++) {
          const s = collect(hd, dd);
          s.framer.push(stream.subarray(0, cut));
          s.framer.push(stream.subarray(cut));
          expect(s.errors).toEqual([]);
          expect(s.pdus.map(summary), `cut at ${cut}`).toEqual(expected);
        }
      });

      it('1-byte chunks give identical PDUs', () => {
        const s = collect(hd, dd);
        for (let i = 0; i < stream.length; i++) s.framer.push(stream.subarray(i, i + 1));
        expect(s.errors).toEqual([]);
        expect(s.pdus.map(summary)).toEqual(expected);
        expect(s.framer.bufferedBytes).toBe(0);
      });

      it('headers that straddle chunks are copies, safe from later reuse of the chunks', () => {
        const s = collect(hd, dd);
        const chunks: Buffer[] = [];
        for (let i = 0; i < stream.length; i += 7) chunks.push(Buffer.from(stream.subarray(i, i + 7)));
        for (const c of chunks) s.framer.push(c);
        for (const c of chunks) c.fill(0xcc);
        // Every BHS is 48 bytes > 7, so it was assembled into its own buffer.
        expect(s.pdus.map((p) => p.bhs.toString('hex'))).toEqual(STREAM_VECTORS.map((v) => v.bhs.toString('hex')));
      });
    });
  }

  describe('length caps', () => {
    it('a data segment above MaxRecvDataSegmentLength is an error as soon as the BHS arrives', () => {
      const s = collect(false, false, 8192);
      const bhs = hex(`05800000 00002001 ${'00'.repeat(40)}`); // DataSegmentLength 8193
      s.framer.push(bhs);
      expect(s.pdus).toEqual([]);
      expect(s.errors.map((e) => e.code)).toEqual(['ERR_PDU_TOO_LARGE']);
      expect(s.framer.isStopped).toBe(true);
      s.framer.push(Buffer.alloc(9000));
      expect(s.errors).toHaveLength(1);
      expect(s.pdus).toEqual([]);
    });

    it('exactly MaxRecvDataSegmentLength is accepted', () => {
      const s = collect(false, false, 8192);
      const v = { bhs: hex(`05800000 00002000 ${'00'.repeat(40)}`), ahs: Buffer.alloc(0), data: Buffer.alloc(8192, 3) };
      s.framer.push(wire(v, false, false));
      expect(s.errors).toEqual([]);
      expect(s.pdus).toHaveLength(1);
    });

    it('a 16 MiB declared length is refused before any data (no allocation)', () => {
      const s = collect(false, false, 262144);
      s.framer.push(hex(`05800000 00ffffff ${'00'.repeat(40)}`));
      expect(s.errors.map((e) => e.code)).toEqual(['ERR_PDU_TOO_LARGE']);
    });

    it('setMaxDataSegmentLength applies to the next PDU', () => {
      const s = collect(false, false, 8192);
      const v = { bhs: hex(`05800000 00002000 ${'00'.repeat(40)}`), ahs: Buffer.alloc(0), data: Buffer.alloc(8192) };
      s.framer.push(wire(v, false, false));
      s.framer.setMaxDataSegmentLength(4096);
      s.framer.push(wire(v, false, false));
      expect(s.pdus).toHaveLength(1);
      expect(s.errors.map((e) => e.code)).toEqual(['ERR_PDU_TOO_LARGE']);
    });
  });

  describe('digest errors', () => {
    const v = VECTORS.find((x) => x.data.length === 6)!; // Data-In with padding

    it('a bad header digest stops the framer with ERR_PDU_HEADER_DIGEST', () => {
      const w = wire(v, true, true);
      w[48] ^= 0x01;
      const s = collect(true, true);
      s.framer.push(Buffer.concat([w, wire(v, true, true)]));
      expect(s.pdus).toEqual([]);
      expect(s.errors.map((e) => e.code)).toEqual(['ERR_PDU_HEADER_DIGEST']);
    });

    it('a corrupted header byte is caught by the header digest', () => {
      const w = wire(v, true, false);
      w[20] ^= 0x80;
      const s = collect(true, false);
      s.framer.push(w);
      expect(s.errors.map((e) => e.code)).toEqual(['ERR_PDU_HEADER_DIGEST']);
    });

    it('a bad data digest is delivered with dataDigestOk=false and the stream stays in sync', () => {
      const bad = wire(v, false, true);
      bad[48 + 2] ^= 0xff; // a data byte
      const s = collect(false, true);
      s.framer.push(Buffer.concat([bad, wire(v, false, true)]));
      expect(s.errors).toEqual([]);
      expect(s.pdus.map((p) => p.dataDigestOk)).toEqual([false, true]);
    });

    it('a corrupted padding byte is caught by the data digest', () => {
      const bad = wire(v, false, true);
      bad[48 + 7] = 1; // padding after 6 data bytes
      const s = collect(false, true);
      s.framer.push(bad);
      expect(s.pdus.map((p) => p.dataDigestOk)).toEqual([false]);
    });
  });

  it('setDigests inside onPdu applies from the next PDU (login -> full feature)', () => {
    const a = VECTORS[0];
    const pdus: RawPdu[] = [];
    const errors: LunkitError[] = [];
    const framer: PduFramer = new PduFramer({
      maxDataSegmentLength: 65536,
      headerDigest: false,
      dataDigest: false,
      onPdu: (f) => {
        pdus.push(f);
        if (pdus.length === 1) framer.setDigests(true, true);
      },
      onError: (e) => errors.push(e),
    });
    framer.push(Buffer.concat([wire(a, false, false), wire(a, true, true), wire(a, true, true)]));
    expect(errors).toEqual([]);
    expect(pdus).toHaveLength(3);
  });

  it('stop() inside onPdu drops the rest', () => {
    const a = VECTORS[0];
    const pdus: RawPdu[] = [];
    const framer: PduFramer = new PduFramer({
      maxDataSegmentLength: 65536,
      headerDigest: false,
      dataDigest: false,
      onPdu: (f) => {
        pdus.push(f);
        framer.stop();
      },
      onError: () => undefined,
    });
    framer.push(Buffer.concat([wire(a, false, false), wire(a, false, false)]));
    expect(pdus).toHaveLength(1);
  });

  describe('dataTarget: a data segment that straddles chunks is assembled where the receiver says', () => {
    function withTarget(hd: boolean, dd: boolean): Seen & { targets: Buffer[]; asked: number[] } {
      const s = { ...collect(hd, dd), targets: [] as Buffer[], asked: [] as number[] };
      s.framer = new PduFramer({
        maxDataSegmentLength: 1 << 20,
        headerDigest: hd,
        dataDigest: dd,
        onPdu: (f) => s.pdus.push(f),
        onError: (e) => s.errors.push(e),
        dataTarget: (bhs, length) => {
          expect(bhs.length).toBe(48);
          s.asked.push(length);
          const t = Buffer.alloc(length, 0xee);
          s.targets.push(t);
          return t;
        },
      });
      return s;
    }

    for (const [hd, dd] of [
      [false, false],
      [true, true],
    ] as const) {
      const stream = Buffer.concat(STREAM_VECTORS.map((v) => wire(v, hd, dd)));
      const expected = STREAM_VECTORS.map((v) => `${v.bhs.toString('hex')}/${v.ahs.toString('hex')}/${v.data.toString('hex')}/true/true`);

      it(`digests ${hd}/${dd}: split at every offset gives identical PDUs; straddling data lands in the target`, () => {
        for (let cut = 0; cut <= stream.length; cut++) {
          const s = withTarget(hd, dd);
          s.framer.push(stream.subarray(0, cut));
          s.framer.push(stream.subarray(cut));
          expect(s.errors).toEqual([]);
          expect(s.pdus.map(summary), `cut at ${cut}`).toEqual(expected);
          // A data segment is either a view of the stream or the target it was copied into: never a third buffer.
          for (const p of s.pdus) if (p.data.length > 0) expect(p.data.buffer === stream.buffer || s.targets.includes(p.data)).toBe(true);
        }
      });

      it(`digests ${hd}/${dd}: not asked when the segment lies in one chunk`, () => {
        const s = withTarget(hd, dd);
        s.framer.push(stream);
        expect(s.asked).toEqual([]);
        expect(s.pdus.map(summary)).toEqual(expected);
      });
    }

    it('a target of the wrong size is not used; a bad data digest is still caught in the target', () => {
      const v = ODD;
      const bad = wire(v, false, true);
      bad[48 + 2] ^= 0xff;
      const targets: Buffer[] = [];
      const pdus: RawPdu[] = [];
      const framer = new PduFramer({
        maxDataSegmentLength: 65536,
        headerDigest: false,
        dataDigest: true,
        onPdu: (f) => pdus.push(f),
        onError: () => undefined,
        dataTarget: (_bhs, length) => {
          const t = Buffer.alloc(targets.length === 0 ? length : length + 1);
          targets.push(t);
          return t;
        },
      });
      const both = Buffer.concat([bad, wire(v, false, true)]);
      // Cut inside each data segment.
      framer.push(both.subarray(0, 50));
      framer.push(both.subarray(50, bad.length + 50));
      framer.push(both.subarray(bad.length + 50));
      expect(pdus.map((p) => p.dataDigestOk)).toEqual([false, true]);
      expect(pdus[0].data).toBe(targets[0]);
      expect(pdus[1].data).not.toBe(targets[1]);
      expect(pdus[1].data.toString()).toBe('hello');
    });
  });
});
