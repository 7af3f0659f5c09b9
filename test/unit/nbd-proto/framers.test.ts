// Framers over streams of several messages: split at every offset, 1-byte
// chunks, length caps, bad magic, detach. Streams are hand-written hex.
import { describe, expect, it } from 'vitest';
import { hex } from './hex.js';
import {
  LunkitError,
  OptionFramer,
  ReplyFramer,
  RequestFramer,
  type NbdRequest,
  type OptionFrame,
  type ReplyFrame,
} from '../../../src/protocols/nbd/index.js';

function splits(stream: Buffer): Buffer[][] {
  const out: Buffer[][] = [[stream]];
  for (let i = 1; i < stream.length; i++) out.push([stream.subarray(0, i), stream.subarray(i)]);
  const ones: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) ones.push(stream.subarray(i, i + 1));
  out.push(ones);
  return out;
}

// --- Option stream: client flags, GO("ab", [BLOCK_SIZE]), STRUCTURED_REPLY, ABORT.
const OPTION_STREAM = hex(`
  00000003
  49484156454f5054 00000007 0000000a 00000002 6162 0001 0003
  49484156454f5054 00000008 00000000
  49484156454f5054 00000002 00000000`);

function runOptions(chunks: Buffer[], max?: number) {
  const flags: number[] = [];
  const opts: { option: number; data: string }[] = [];
  const errors: LunkitError[] = [];
  const f = new OptionFramer({
    maxOptionLength: max,
    onClientFlags: (x) => flags.push(x),
    onOption: (o: OptionFrame) => opts.push({ option: o.option, data: o.data.toString('hex') }),
    onError: (e) => errors.push(e),
  });
  for (const c of chunks) f.push(c);
  return { f, flags, opts, errors };
}

describe('OptionFramer', () => {
  it('gives the same options however the stream is split', () => {
    for (const chunks of splits(OPTION_STREAM)) {
      const { f, flags, opts, errors } = runOptions(chunks);
      expect(errors).toEqual([]);
      expect(flags).toEqual([3]);
      expect(opts).toEqual([
        { option: 7, data: '00000002616200010003' },
        { option: 8, data: '' },
        { option: 2, data: '' },
      ]);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('delivers a view (no copy) when the option lies in one chunk', () => {
    let data: Buffer | undefined;
    const f = new OptionFramer({ onOption: (o) => (data = o.data), onError: () => undefined });
    f.push(OPTION_STREAM);
    expect(data?.buffer).toBe(OPTION_STREAM.buffer);
  });

  it('caps the declared length before waiting for data', () => {
    const { opts, errors, f } = runOptions([hex('00000001 49484156454f5054 00000007 00010001')]);
    expect(opts).toEqual([]);
    expect(errors.map((e) => e.code)).toEqual(['ERR_NBD_TOO_LARGE']);
    expect(f.isStopped).toBe(true);
    const small = runOptions([hex('00000001 49484156454f5054 00000007 00000011')], 16);
    expect(small.errors.map((e) => e.code)).toEqual(['ERR_NBD_TOO_LARGE']);
  });

  it('bad magic is ERR_NBD_BAD_MAGIC, reported once, after good options', () => {
    const s = Buffer.concat([OPTION_STREAM, hex('49484156454f5055 00000002 00000000'), OPTION_STREAM]);
    for (const chunks of splits(s)) {
      const { opts, errors } = runOptions(chunks);
      expect(opts.length).toBe(3);
      expect(errors.map((e) => e.code)).toEqual(['ERR_NBD_BAD_MAGIC']);
    }
  });

  it('detach() from a callback hands over the unframed bytes', () => {
    const tail = hex('25609513 0000 0000');
    let rest: Buffer | undefined;
    const f: OptionFramer = new OptionFramer({
      expectClientFlags: false,
      onOption: () => (rest = f.detach()),
      onError: () => undefined,
    });
    f.push(Buffer.concat([hex('49484156454f5054 00000001 00000001 61'), tail]));
    expect(rest).toEqual(tail);
    expect(f.isStopped).toBe(true);
  });
});

// --- Request stream: WRITE(3 bytes), READ, FLUSH(FUA), WRITE(0 bytes), DISC.
const REQUEST_STREAM = hex(`
  25609513 0001 0001 0000000000000001 0000000000000200 00000003 aabbcc
  25609513 0000 0000 0000000000000002 0000000000000000 00001000
  25609513 0001 0003 0000000000000003 0000000000000000 00000000
  25609513 0000 0001 0000000000000004 0000000000000000 00000000
  25609513 0000 0002 0000000000000005 0000000000000000 00000000`);

function runRequests(chunks: Buffer[], o: { max?: number; discard?: number; extended?: boolean } = {}) {
  const got: { handle: bigint; type: number; flags: number; length: number; payload: string; dropped: boolean }[] = [];
  const errors: LunkitError[] = [];
  const f = new RequestFramer({
    extendedHeaders: o.extended,
    maxPayloadLength: o.max,
    maxDiscardLength: o.discard,
    onRequest: (r: NbdRequest, p, dropped) =>
      got.push({ handle: r.handle, type: r.type, flags: r.flags, length: r.length, payload: p.toString('hex'), dropped }),
    onError: (e) => errors.push(e),
  });
  for (const c of chunks) f.push(c);
  return { f, got, errors };
}

describe('RequestFramer', () => {
  it('gives the same requests however the stream is split', () => {
    for (const chunks of splits(REQUEST_STREAM)) {
      const { got, errors, f } = runRequests(chunks);
      expect(errors).toEqual([]);
      expect(got).toEqual([
        { handle: 1n, type: 1, flags: 1, length: 3, payload: 'aabbcc', dropped: false },
        { handle: 2n, type: 0, flags: 0, length: 0x1000, payload: '', dropped: false },
        { handle: 3n, type: 3, flags: 1, length: 0, payload: '', dropped: false },
        { handle: 4n, type: 1, flags: 0, length: 0, payload: '', dropped: false },
        { handle: 5n, type: 2, flags: 0, length: 0, payload: '', dropped: false },
      ]);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('extended headers: 32-byte requests, PAYLOAD_LEN carries a payload', () => {
    const s = hex(`
      21e41c71 0020 0001 0000000000000001 0000000000000000 0000000000000002 1122
      21e41c71 0020 0007 0000000000000002 0000000000000000 0000000000000004 00000001
      21e41c71 0000 0007 0000000000000003 0000000000000000 0000000100000000`);
    for (const chunks of splits(s)) {
      const { got, errors } = runRequests(chunks, { extended: true });
      expect(errors).toEqual([]);
      expect(got.map((g) => [g.handle, g.payload, g.length])).toEqual([
        [1n, '1122', 2],
        [2n, '00000001', 4],
        [3n, '', 0x100000000],
      ]);
    }
  });

  // proto.md (extension-ext-header): with extended headers the payload is
  // there exactly when NBD_CMD_FLAG_PAYLOAD_LEN (0x0020) is set, for any
  // command; a WRITE without the flag has none (its length is an effect length).
  it('extended headers: a WRITE without PAYLOAD_LEN has no payload on the wire', () => {
    const s = hex(`
      21e41c71 0000 0001 00000000000000a1 0000000000000200 0000000000000200
      21e41c71 0020 0001 00000000000000a2 0000000000000000 0000000000000003 aabbcc
      21e41c71 0000 0000 00000000000000a3 0000000000000000 0000000000001000
      21e41c71 0021 0001 00000000000000a4 0000000000000400 0000000000000001 dd
      21e41c71 0000 0002 00000000000000a5 0000000000000000 0000000000000000`);
    for (const chunks of splits(s)) {
      const { got, errors, f } = runRequests(chunks, { extended: true });
      expect(errors).toEqual([]);
      expect(got).toEqual([
        { handle: 0xa1n, type: 1, flags: 0, length: 0x200, payload: '', dropped: false },
        { handle: 0xa2n, type: 1, flags: 0x20, length: 3, payload: 'aabbcc', dropped: false },
        { handle: 0xa3n, type: 0, flags: 0, length: 0x1000, payload: '', dropped: false },
        { handle: 0xa4n, type: 1, flags: 0x21, length: 1, payload: 'dd', dropped: false },
        { handle: 0xa5n, type: 2, flags: 0, length: 0, payload: '', dropped: false },
      ]);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('compact headers: WRITE always carries `length` bytes, PAYLOAD_LEN on another command adds none', () => {
    const s = hex(`
      25609513 0020 0001 00000000000000b1 0000000000000000 00000002 0102
      25609513 0020 0000 00000000000000b2 0000000000000000 00000200
      25609513 0000 0002 00000000000000b3 0000000000000000 00000000`);
    for (const chunks of splits(s)) {
      const { got, errors, f } = runRequests(chunks);
      expect(errors).toEqual([]);
      expect(got.map((g) => [g.handle, g.type, g.payload])).toEqual([
        [0xb1n, 1, '0102'],
        [0xb2n, 0, ''],
        [0xb3n, 2, ''],
      ]);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('caps the WRITE payload (default 32 MiB) before allocating', () => {
    const big = hex('25609513 0000 0001 0000000000000001 0000000000000000 02000001');
    expect(runRequests([big]).errors.map((e) => e.code)).toEqual(['ERR_NBD_TOO_LARGE']);
    const ok = hex('25609513 0000 0001 0000000000000001 0000000000000000 02000000');
    const r = runRequests([ok]);
    expect(r.errors).toEqual([]);
    expect(r.f.bufferedBytes).toBe(0); // waiting for 32 MiB of data, none allocated yet
    // A READ's length is not a payload: never capped here.
    expect(runRequests([hex('25609513 0000 0000 0000000000000001 0000000000000000 ffffffff')]).got.length).toBe(1);
  });

  it('oversized payloads within maxDiscardLength are dropped and the stream stays in sync', () => {
    const s = Buffer.concat([
      hex('25609513 0000 0001 0000000000000009 0000000000000000 00000005 0102030405'),
      REQUEST_STREAM,
    ]);
    for (const chunks of splits(s)) {
      const { got, errors } = runRequests(chunks, { max: 4, discard: 8 });
      expect(errors).toEqual([]);
      expect(got[0]).toEqual({ handle: 9n, type: 1, flags: 0, length: 5, payload: '', dropped: true });
      expect(got.length).toBe(6);
      expect(got[1].payload).toBe('aabbcc');
    }
    expect(runRequests([s], { max: 4, discard: 4 }).errors.map((e) => e.code)).toEqual(['ERR_NBD_TOO_LARGE']);
  });

  it('bad magic mid-stream is ERR_NBD_BAD_MAGIC', () => {
    const s = Buffer.concat([REQUEST_STREAM, hex('25609514 0000 0000 0000000000000000 0000000000000000 00000000')]);
    for (const chunks of splits(s)) {
      const { got, errors } = runRequests(chunks);
      expect(got.length).toBe(5);
      expect(errors.map((e) => e.code)).toEqual(['ERR_NBD_BAD_MAGIC']);
    }
  });
});

// --- Reply stream: simple READ reply with 4 data bytes (handle 1), simple
// error reply for a READ (handle 2: no data follows), simple WRITE ack
// (handle 3), structured OFFSET_DATA chunk, structured NONE+DONE, extended
// BLOCK_STATUS_EXT chunk.
const REPLY_STREAM = hex(`
  67446698 00000000 0000000000000001 01020304
  67446698 00000005 0000000000000002
  67446698 00000000 0000000000000003
  668e33ef 0000 0001 0000000000000004 0000000a 0000000000000000 eeff
  668e33ef 0001 0000 0000000000000004 00000000
  6e8a278c 0001 0006 0000000000000005 0000000000000000 0000000000000018
    00000001 00000001 0000000000001000 0000000000000003`);

const READS = new Map<bigint, number>([
  [1n, 4],
  [2n, 4096],
]);

function runReplies(chunks: Buffer[], max?: number) {
  const got: string[] = [];
  const asked: bigint[] = [];
  const errors: LunkitError[] = [];
  const f = new ReplyFramer({
    maxPayloadLength: max,
    expectedReadLength: (h) => {
      asked.push(h);
      return READS.get(h);
    },
    onReply: (r: ReplyFrame) =>
      got.push(
        r.kind === 'simple'
          ? `s:${r.handle}:${r.error}:${r.data.toString('hex')}`
          : `c:${r.header.handle}:${r.header.type}:${r.header.flags}:${r.header.offset}:${r.payload.toString('hex')}`,
      ),
    onError: (e) => errors.push(e),
  });
  for (const c of chunks) f.push(c);
  return { f, got, asked, errors };
}

describe('ReplyFramer', () => {
  it('gives the same replies however the stream is split, asking once per successful simple reply', () => {
    for (const chunks of splits(REPLY_STREAM)) {
      const { got, asked, errors, f } = runReplies(chunks);
      expect(errors).toEqual([]);
      expect(got).toEqual([
        's:1:0:01020304',
        's:2:5:',
        's:3:0:',
        'c:4:1:0:0:0000000000000000eeff',
        'c:4:0:1:0:',
        'c:5:6:1:0:00000001000000010000000000001000' + '0000000000000003',
      ]);
      expect(asked).toEqual([1n, 3n]);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('caps chunk payloads and expected read lengths', () => {
    expect(runReplies([hex('668e33ef 0000 0001 0000000000000004 00000011')], 16).errors.map((e) => e.code)).toEqual([
      'ERR_NBD_TOO_LARGE',
    ]);
    // Handle 2 expects 4096 bytes; with a 1 KiB cap that is refused.
    expect(runReplies([hex('67446698 00000000 0000000000000002')], 1024).errors.map((e) => e.code)).toEqual([
      'ERR_NBD_TOO_LARGE',
    ]);
    expect(runReplies([hex('668e33ef 0000 0001 0000000000000004 02010001')]).errors.map((e) => e.code)).toEqual([
      'ERR_NBD_TOO_LARGE',
    ]);
  });

  it('bad magic is ERR_NBD_BAD_MAGIC after the good replies', () => {
    const s = Buffer.concat([REPLY_STREAM, hex('25609513 00000000 0000000000000000')]);
    for (const chunks of splits(s)) {
      const { got, errors } = runReplies(chunks);
      expect(got.length).toBe(6);
      expect(errors.map((e) => e.code)).toEqual(['ERR_NBD_BAD_MAGIC']);
    }
  });
});

describe('OptionFramer without an onClientFlags callback', () => {
  it('still consumes the client flags', () => {
    const opts: number[] = [];
    const f = new OptionFramer({ onOption: (o) => opts.push(o.option), onError: (e) => opts.push(-1, e.code.length) });
    f.push(hex('00000003 49484156454f5054 00000008 00000000'));
    expect(opts).toEqual([8]);
  });
});
