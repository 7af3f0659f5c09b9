// NBD_OPT_EXTENDED_HEADERS and NBD_CMD_FLAG_DF on the server, driven with
// hand-written bytes (golden vectors, never our encoder): 32-byte requests,
// 32-byte extended replies carrying the request's offset, PAYLOAD_LEN for
// WRITE, BLOCK_STATUS_EXT with 64-bit lengths, a 64-bit effect length; DF
// only with structured replies (SEND_DF offered then, EINVAL otherwise).
// libnbd 1.14 here predates extended headers, so no real client covers them.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { Wire } from '../../helpers/nbd-wire.js';

let rt: LunkitRuntime;
let port: number;
let dir: string;
const GiB = 1024 ** 3;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-ext-'));
  rt = await LunkitRuntime.start(
    parseConfig({
      // A sparse 8 GiB thin file: room for effect lengths past 32 bits.
      backstores: { big: { type: 'file', path: join(dir, 'big.img'), size: 8 * GiB } },
      nbd: { listen: ['127.0.0.1:0'], exports: { big: { backstore: 'big' } } },
    }),
  );
  port = rt.nbdAddresses()[0].port;
}, 30_000);
afterAll(async () => {
  await rt?.stop(0);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u64 = (v: bigint): string => v.toString(16).padStart(16, '0');

// Option requests: "IHAVEOPT", option (4), length (4), data.
const OPT_STRUCTURED_REPLY = hex('49484156454f5054 00000008 00000000');
const OPT_EXTENDED_HEADERS = hex('49484156454f5054 0000000b 00000000');
const OPT_EXTENDED_HEADERS_WITH_DATA = hex('49484156454f5054 0000000b 00000001 00');
// SET_META_CONTEXT: export "big" (len 3), 1 query "base:allocation" (len 15).
const SET_META = Buffer.concat([hex('49484156454f5054 0000000a 0000001e 00000003 626967 00000001 0000000f'), Buffer.from('base:allocation')]);
// GO: export "big", one info request (BLOCK_SIZE 3).
const OPT_GO_BIG = hex('49484156454f5054 00000007 0000000b 00000003 626967 0001 0003');

async function open(): Promise<Wire> {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const w = new Wire(sock);
  expect((await w.read(18)).subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
  sock.write(hex('00000003'));
  return w;
}

/** Sends GO and returns the transmission flags from NBD_INFO_EXPORT. */
async function go(w: Wire): Promise<number> {
  w.sock.write(OPT_GO_BIG);
  let flags = -1;
  for (;;) {
    const r = await w.optionReply();
    if (r.type === 1) return flags;
    expect(r.type).toBe(3);
    if (r.data.readUInt16BE(0) === 0) flags = r.data.readUInt16BE(10);
  }
}

/** An extended request: magic 21e41c71, flags, type, cookie, offset, 64-bit length. */
function extReq(flags: number, type: number, cookie: bigint, offset: bigint, length: bigint): Buffer {
  return hex(`21e41c71 ${flags.toString(16).padStart(4, '0')} ${type.toString(16).padStart(4, '0')} ${u64(cookie)} ${u64(offset)} ${u64(length)}`);
}

interface ExtReply {
  flags: number;
  type: number;
  cookie: bigint;
  offset: bigint;
  payload: Buffer;
}

async function extReply(w: Wire): Promise<ExtReply> {
  const h = await w.read(32);
  expect(h.readUInt32BE(0)).toBe(0x6e8a278c);
  const length = h.readBigUInt64BE(24);
  return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: h.readBigUInt64BE(8), offset: h.readBigUInt64BE(16), payload: await w.read(Number(length)) };
}

describe('NBD_OPT_EXTENDED_HEADERS', () => {
  it('negotiates: data is ERR_INVALID, then ACK, then STRUCTURED_REPLY is ERR_EXT_HEADER_REQD', async () => {
    const w = await open();
    w.sock.write(OPT_EXTENDED_HEADERS_WITH_DATA);
    expect((await w.optionReply()).type).toBe(0x80000003);
    w.sock.write(OPT_EXTENDED_HEADERS);
    expect((await w.optionReply()).type).toBe(1);
    w.sock.write(OPT_STRUCTURED_REPLY);
    expect((await w.optionReply()).type).toBe(0x8000000a);
    // Meta contexts need no STRUCTURED_REPLY with extended headers.
    w.sock.write(SET_META);
    const mc = await w.optionReply();
    expect(mc.type).toBe(4);
    expect(mc.data.subarray(4).toString()).toBe('base:allocation');
    expect((await w.optionReply()).type).toBe(1);
    const flags = await go(w);
    expect(flags & 0x80).toBe(0x80); // SEND_DF: replies are structured
    expect(flags & 0x100).toBe(0x100); // CAN_MULTI_CONN
    w.sock.destroy();
  });

  it('WRITE with PAYLOAD_LEN, READ, errors and BLOCK_STATUS_EXT use 32-byte replies with the request offset', async () => {
    const w = await open();
    w.sock.write(OPT_EXTENDED_HEADERS);
    expect((await w.optionReply()).type).toBe(1);
    w.sock.write(SET_META);
    await w.optionReply();
    await w.optionReply();
    await go(w);

    const data = Buffer.alloc(4096, 0x5a);
    w.sock.write(Buffer.concat([extReq(0x0020, 1, 0x1111n, 1048576n, 4096n), data]));
    let r = await extReply(w);
    expect(r).toMatchObject({ flags: 1, type: 0, cookie: 0x1111n, offset: 1048576n });
    expect(r.payload.length).toBe(0);

    w.sock.write(extReq(0x0004, 0, 0x2222n, 1048576n, 4096n)); // READ with DF
    r = await extReply(w);
    expect(r).toMatchObject({ flags: 1, type: 1, cookie: 0x2222n, offset: 1048576n });
    expect(r.payload.length).toBe(8 + 4096);
    expect(r.payload.readBigUInt64BE(0)).toBe(1048576n);
    expect(r.payload.subarray(8).equals(data)).toBe(true);

    // WRITE without PAYLOAD_LEN: no payload follows on the wire (proto.md,
    // extended headers: its length is an effect length); refused with EINVAL
    // and the next header is read right after it. Then a READ with a payload.
    w.sock.write(extReq(0, 1, 0x3333n, 0n, 512n));
    r = await extReply(w);
    expect(r).toMatchObject({ type: 0x8001, cookie: 0x3333n });
    expect(r.payload.readUInt32BE(0)).toBe(22);
    // The stream stayed in sync: a READ right after it is answered normally.
    w.sock.write(extReq(0, 0, 0x3334n, 1048576n, 512n));
    r = await extReply(w);
    expect(r).toMatchObject({ flags: 1, type: 1, cookie: 0x3334n, offset: 1048576n });
    expect(r.payload.subarray(8).equals(data.subarray(0, 512))).toBe(true);
    w.sock.write(Buffer.concat([extReq(0x0020, 0, 0x4444n, 0n, 8n), Buffer.alloc(8)]));
    r = await extReply(w);
    expect(r).toMatchObject({ type: 0x8001, cookie: 0x4444n });
    expect(r.payload.readUInt32BE(0)).toBe(22);

    // BLOCK_STATUS over 5 GiB (a 64-bit effect length): descriptors with 64-bit lengths.
    w.sock.write(extReq(0, 7, 0x5555n, 0n, BigInt(5 * GiB)));
    r = await extReply(w);
    expect(r).toMatchObject({ flags: 1, type: 6, cookie: 0x5555n, offset: 0n });
    expect(r.payload.readUInt32BE(0)).toBe(1); // context id of base:allocation
    const count = r.payload.readUInt32BE(4);
    expect(r.payload.length).toBe(8 + 16 * count);
    const extents = Array.from({ length: count }, (_, i) => ({
      length: r.payload.readBigUInt64BE(8 + 16 * i),
      flags: r.payload.readBigUInt64BE(16 + 16 * i),
    }));
    expect(extents[0]).toEqual({ length: 1048576n, flags: 3n }); // hole + zero before the write
    expect(extents[1]).toEqual({ length: 4096n, flags: 0n }); // the data just written
    const total = extents.reduce((n, e) => n + e.length, 0n);
    expect(total > 0n && total <= BigInt(5 * GiB)).toBe(true);

    // TRIM over 5 GiB (several UNMAP commands inside), then the written block is a hole again.
    w.sock.write(extReq(0, 4, 0x6666n, 0n, BigInt(5 * GiB)));
    r = await extReply(w);
    expect(r).toMatchObject({ type: 0, cookie: 0x6666n });
    w.sock.write(extReq(0x0008, 7, 0x7777n, 1048576n, 4096n)); // REQ_ONE
    r = await extReply(w);
    expect(r.payload.readUInt32BE(4)).toBe(1);
    expect(r.payload.readBigUInt64BE(16) & 1n).toBe(1n);
    w.sock.destroy();
  });
});

describe('NBD_CMD_FLAG_DF', () => {
  it('with structured replies: SEND_DF offered and a DF READ is exactly one OFFSET_DATA chunk', async () => {
    const w = await open();
    w.sock.write(OPT_STRUCTURED_REPLY);
    expect((await w.optionReply()).type).toBe(1);
    expect((await go(w)) & 0x80).toBe(0x80);
    // Compact request: magic 25609513, flags DF (0x0004), READ, cookie, offset 0, length 64 KiB.
    w.sock.write(hex('25609513 0004 0000 00000000000000aa 0000000000000000 00010000'));
    const h = await w.read(20);
    expect(h.toString('hex')).toBe('668e33ef' + '0001' + '0001' + '00000000000000aa' + (8 + 65536).toString(16).padStart(8, '0'));
    expect((await w.read(8)).readBigUInt64BE(0)).toBe(0n);
    await w.read(65536);
    w.sock.destroy();
  });

  it('without structured replies: no SEND_DF, and DF is EINVAL', async () => {
    const w = await open();
    expect((await go(w)) & 0x80).toBe(0);
    w.sock.write(hex('25609513 0004 0000 00000000000000bb 0000000000000000 00001000'));
    expect((await w.read(16)).toString('hex')).toBe('67446698' + '00000016' + '00000000000000bb');
    // The stream is still in sync: a plain READ works.
    w.sock.write(hex('25609513 0000 0000 00000000000000cc 0000000000000000 00000200'));
    expect((await w.read(16)).toString('hex')).toBe('67446698' + '00000000' + '00000000000000cc');
    await w.read(512);
    w.sock.destroy();
  });
});
