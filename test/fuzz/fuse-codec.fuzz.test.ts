// Time-boxed fuzz (fast-check) of the FUSE request decoder and the READDIR
// builder (src/protocols/fuse). Valid requests, written here from the
// fuse.h layouts and not by any lunkit encoder, are mutated: bytes
// overwritten, cut, extended, with and without fuse_in_header.len patched to
// match. Decoding must never throw, and every refusal must carry EIO or EINVAL
// (unknown opcodes are not refusals: they decode as 'other', answered ENOSYS).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DirentWriter,
  FuseErrno,
  decodeRequest,
  type FuseDirent,
} from '../../src/protocols/fuse/index.js';

// A pure codec needs no minute: about 12 s in all (STYLE.md §18); LUNKIT_FUZZ_MS changes it.
const TIME_LIMIT_MS = Number(process.env.LUNKIT_FUZZ_MS ?? 12_000);

/** fuse_in_header (40 bytes) + body, len filled in. */
function request(opcode: number, unique: number, nodeid: number, body: string): Buffer {
  const b = Buffer.from(body.replace(/\s+/g, ''), 'hex');
  const h = Buffer.alloc(40);
  h.writeUInt32LE(40 + b.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeUInt32LE(unique, 8);
  h.writeUInt32LE(nodeid, 16);
  h.writeUInt32LE(1000, 24);
  h.writeUInt32LE(1000, 28);
  h.writeUInt32LE(4242, 32);
  return Buffer.concat([h, b]);
}
const z = (n: number): string => '00'.repeat(n);

const seeds: Buffer[] = [
  request(26, 2, 0, `07000000 2d000000 00000200 fbffff73 fd050000 ${z(44)}`), // INIT 7.45
  request(26, 2, 0, '07000000 1f000000 00000200 ffff0000'), // INIT before 7.36
  request(1, 4, 1, '68656c6c6f00'), // LOOKUP "hello"
  request(2, 6, 5, '0200000000000000'), // FORGET
  request(42, 8, 0, `02000000 00000000 05000000000000000100000000000000 06000000000000000300000000000000`), // BATCH_FORGET
  request(3, 10, 1, `01000000 00000000 0300000000000000`), // GETATTR
  request(4, 12, 2, `68000000 00000000 07000000000000000000100000000000 ${z(8)} ${z(8)} 0000006500000000 ${z(8)} 00000000 0065cd1d 00000000 a4810000 00000000 e8030000 64000000 00000000`), // SETATTR
  request(14, 14, 2, '02800000 00000000'), // OPEN
  request(27, 16, 1, '00880100 00000000'), // OPENDIR
  request(18, 18, 2, '0300000000000000 02000000 01000000 cdab000000000000'), // RELEASE
  request(29, 20, 1, `0400000000000000 ${z(16)}`), // RELEASEDIR
  request(15, 22, 2, '0100000000000000 0010000000000000 00000200 02000000 8877665544332211 02800000 00000000'), // READ
  request(16, 24, 2, '0300000000000000 0002000000000000 05000000 01000000 0000000000000000 01800000 00000000 68656c6c6f'), // WRITE
  request(25, 26, 2, `0300000000000000 ${z(8)} cdab000000000000`), // FLUSH
  request(20, 28, 2, '0300000000000000 01000000 00000000'), // FSYNC
  request(30, 30, 1, `0400000000000000 ${z(8)}`), // FSYNCDIR
  request(17, 32, 1, ''), // STATFS
  request(34, 34, 2, '06000000 00000000'), // ACCESS
  request(28, 36, 1, `0400000000000000 0200000000000000 00100000 ${z(20)}`), // READDIR
  request(44, 38, 1, `0400000000000000 ${z(8)} 00100000 ${z(20)}`), // READDIRPLUS
  request(43, 40, 2, '0900000000000000 0010000000000000 0020000000000000 03000000 00000000'), // FALLOCATE
  request(46, 42, 2, '0900000000000000 0030000000000000 03000000 00000000'), // LSEEK
  request(36, 45, 0, '2c00000000000000'), // INTERRUPT
  request(38, 46, 0, ''), // DESTROY
  request(9, 48, 1, 'ed410000 12000000 6400'), // MKDIR: not decoded, 'other'
];

/** A seed with up to 8 bytes overwritten, optionally cut or extended, optionally len patched. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }), { nil: undefined }),
    fc.boolean(),
  )
  .map(([seed, edits, cut, extra, fixLen]) => {
    let b = Buffer.from(seed);
    for (const [pos, byte] of edits) b[pos % b.length] = byte;
    if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
    if (extra !== undefined) b = Buffer.concat([b, Buffer.from(extra)]);
    if (fixLen && b.length >= 4) b.writeUInt32LE(b.length, 0);
    return b;
  });

/** A consistent header (len right, small total_extlen) over a random opcode and body. */
const randomConsistent = fc
  .tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 200 }))
  .map(([opcode, extlen, body]) => {
    const b = Buffer.concat([Buffer.alloc(40), Buffer.from(body)]);
    b.writeUInt32LE(b.length, 0);
    b.writeUInt32LE(opcode, 4);
    b.writeUInt16LE(extlen, 36);
    return b;
  });

const randomBytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));

function check(buf: Buffer): void {
  const r = decodeRequest(buf);
  if (!r.ok) {
    expect([FuseErrno.EIO, FuseErrno.EINVAL]).toContain(r.error);
    expect(r.unique === undefined).toBe(buf.length < 40);
    expect(r.reason.length).toBeGreaterThan(0);
    return;
  }
  const { req } = r;
  expect(req.header.len).toBe(buf.length);
  if (req.opcode === 'write') {
    expect(req.data.length).toBe(req.size);
    expect(req.data.buffer).toBe(buf.buffer);
  }
  if (req.opcode === 'lookup') {
    expect(req.nameBytes.length).toBeGreaterThan(0);
    expect(req.nameBytes.length).toBeLessThanOrEqual(1024);
    expect(req.nameBytes.includes(0)).toBe(false);
  }
  if (req.opcode === 'batch_forget') expect(40 + 8 + req.forgets.length * 16).toBeLessThanOrEqual(buf.length);
  if (req.opcode === 'other') expect(req.code).toBe(buf.readUInt32LE(4));
}

describe('fuzz: FUSE request decoder', () => {
  it('never throws on mutated, random or consistently framed garbage; refusals are EIO or EINVAL', () => {
    fc.assert(
      fc.property(fc.oneof(mutated, randomConsistent, randomBytes), (buf) => {
        check(buf);
      }),
      { numRuns: 200_000, interruptAfterTimeLimit: TIME_LIMIT_MS * 0.7 },
    );
  });
});

/** Naive fuse_dirent parser (fs/fuse/readdir.c parse_dirfile, simplified). */
function parseDirents(payload: Buffer): { ino: bigint; off: bigint; type: number; name: string }[] {
  const out = [];
  let pos = 0;
  while (pos < payload.length) {
    const namelen = payload.readUInt32LE(pos + 16);
    out.push({
      ino: payload.readBigUInt64LE(pos),
      off: payload.readBigUInt64LE(pos + 8),
      type: payload.readUInt32LE(pos + 20),
      name: payload.toString('utf8', pos + 24, pos + 24 + namelen),
    });
    const rec = (24 + namelen + 7) & ~7;
    expect(payload.subarray(pos + 24 + namelen, pos + rec).every((b) => b === 0)).toBe(true);
    pos += rec;
  }
  expect(pos).toBe(payload.length);
  return out;
}

describe('fuzz: DirentWriter', () => {
  const entry = fc.record({
    ino: fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
    off: fc.bigInt({ min: 1n, max: (1n << 63n) - 1n }),
    type: fc.constantFrom(0, 1, 2, 4, 6, 8, 10, 12),
    name: fc.string({ unit: fc.constantFrom('a', 'b', '.', '-', 'é', '😀'), minLength: 1, maxLength: 60 }),
  });

  it('keeps a prefix of the entries, within the size, padded with zeros', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 40 }), fc.integer({ min: 0, max: 2048 }), (entries: FuseDirent[], size) => {
        const w = new DirentWriter(false, size);
        let accepted = 0;
        for (const e of entries) if (w.add(e)) accepted++;
        const reply = w.finish(7n);
        expect(reply.readUInt32LE(0)).toBe(reply.length);
        expect(reply.length - 16).toBeLessThanOrEqual(size);
        expect(w.overflowed).toBe(accepted < entries.length);
        const parsed = parseDirents(reply.subarray(16));
        expect(parsed).toEqual(entries.slice(0, accepted).map((e) => ({ ...e, name: e.name as string })));
      }),
      { numRuns: 20_000, interruptAfterTimeLimit: TIME_LIMIT_MS * 0.3 },
    );
  });
});
