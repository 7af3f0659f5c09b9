// A scripted NBD server for client tests. Every byte it sends is written by
// hand here (never by the production encoder): each test script reads what
// the client sent and answers with literal byte vectors.

import net from 'node:net';
import { expect } from 'vitest';
import { Wire } from '../../helpers/nbd-wire.js';

export const be16 = (v: number): number[] => [(v >>> 8) & 255, v & 255];
export const be32 = (v: number): number[] => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
export const be64 = (v: number): number[] => [...be32(Math.floor(v / 2 ** 32)), ...be32(v >>> 0)];
export const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** 'NBDMAGIC' 'IHAVEOPT' + 16-bit handshake flags. */
export const greeting = (flags: number): Buffer => Buffer.from([...ascii('NBDMAGIC'), ...ascii('IHAVEOPT'), ...be16(flags)]);
const REP_MAGIC = [0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9];
export const optReply = (opt: number, type: number, data: number[] = []): Buffer =>
  Buffer.from([...REP_MAGIC, ...be32(opt), ...be32(type), ...be32(data.length), ...data]);
export const simpleReply = (cookie: Buffer, error: number, data: number[] | Buffer = []): Buffer =>
  Buffer.concat([Buffer.from([0x67, 0x44, 0x66, 0x98, ...be32(error)]), cookie, Buffer.from(data)]);
export const chunk = (cookie: Buffer, flags: number, type: number, payload: number[] | Buffer): Buffer =>
  Buffer.concat([Buffer.from([0x66, 0x8e, 0x33, 0xef, ...be16(flags), ...be16(type)]), cookie, Buffer.from(be32(payload.length)), Buffer.from(payload)]);

export interface Req {
  flags: number;
  type: number;
  /** The 8 cookie bytes, echoed verbatim in replies. */
  cookie: Buffer;
  offset: number;
  length: number;
  data: Buffer;
}

/** Read one client option: checks IHAVEOPT, returns option and data. */
export async function readOption(w: Wire): Promise<{ option: number; data: Buffer }> {
  const h = await w.read(16);
  expect(h.subarray(0, 8).toString('latin1')).toBe('IHAVEOPT');
  return { option: h.readUInt32BE(8), data: Buffer.from(await w.read(h.readUInt32BE(12))) };
}

/** Read one transmission request (with WRITE data). */
export async function readRequest(w: Wire): Promise<Req> {
  const h = Buffer.from(await w.read(28));
  expect([...h.subarray(0, 4)]).toEqual([0x25, 0x60, 0x95, 0x13]);
  const r: Req = { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: h.subarray(8, 16), offset: Number(h.readBigUInt64BE(16)), length: h.readUInt32BE(24), data: Buffer.alloc(0) };
  if (r.type === 1) r.data = Buffer.from(await w.read(r.length));
  return r;
}

export const SIZE = 1024 * 1024;
/** SEND_FLUSH | SEND_FUA | SEND_TRIM | SEND_WRITE_ZEROES | HAS_FLAGS. */
export const FLAGS_RW = 0x0001 | 0x0004 | 0x0008 | 0x0020 | 0x0040;

/**
 * The standard fixed newstyle handshake the client performs by default:
 * STRUCTURED_REPLY (acked), SET_META_CONTEXT base:allocation (id 1), GO with
 * NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE (512 / 4096 / maxBlock).
 */
export async function standardHandshake(w: Wire, sock: net.Socket, opts: { flags?: number; maxBlock?: number } = {}): Promise<void> {
  sock.write(greeting(0x0003));
  expect([...(await w.read(4))]).toEqual([0, 0, 0, 3]);
  let o = await readOption(w);
  expect(o).toEqual({ option: 8, data: Buffer.alloc(0) });
  sock.write(optReply(8, 1));
  o = await readOption(w);
  expect(o.option).toBe(10);
  // name length 0, one query of 15 bytes: "base:allocation"
  expect([...o.data]).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 15, ...ascii('base:allocation')]);
  sock.write(optReply(10, 4, [0, 0, 0, 1, ...ascii('base:allocation')]));
  sock.write(optReply(10, 1));
  o = await readOption(w);
  expect(o.option).toBe(7);
  // name length 0, two info requests: BLOCK_SIZE (3), DESCRIPTION (2)
  expect([...o.data]).toEqual([0, 0, 0, 0, 0, 2, 0, 3, 0, 2]);
  sock.write(optReply(7, 3, [0, 0, ...be64(SIZE), ...be16(opts.flags ?? FLAGS_RW)]));
  sock.write(optReply(7, 3, [0, 3, ...be32(512), ...be32(4096), ...be32(opts.maxBlock ?? 65536)]));
  sock.write(optReply(7, 1));
}

export interface FakeServer {
  port: number;
  url: string;
  connections: number;
  close(): Promise<void>;
}

/** Accepts connections and runs script(wire, socket, index) on each. */
export async function fakeServer(script: (w: Wire, sock: net.Socket, index: number) => Promise<void>): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const errors: unknown[] = [];
  let n = 0;
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const w = new Wire(sock);
    script(w, sock, n++).catch((e: unknown) => {
      if (!w.closed) errors.push(e);
    });
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    url: `nbd://127.0.0.1:${port}/`,
    get connections() {
      return n;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => srv.close(() => res()));
      if (errors.length > 0) throw errors[0];
    },
  };
}
