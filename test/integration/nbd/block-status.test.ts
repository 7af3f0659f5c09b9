// base:allocation over a real socket: meta context haggling, BLOCK_STATUS
// from GET LBA STATUS, CACHE and FAST_ZERO, on a thin and a thick file LUN.
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { Wire } from '../../helpers/nbd-wire.js';
import {
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOptionRequest,
  encodeRequest,
} from '../../../src/protocols/nbd/index.js';

let rt: LunkitRuntime;
let port: number;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-bs-'));
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: {
        thin: { type: 'file', path: join(dir, 'thin.img'), size: '4M' },
        thick: { type: 'file', path: join(dir, 'thick.img'), size: '4M', thin: false },
      },
      nbd: { listen: ['127.0.0.1:0'], exports: { thin: { backstore: 'thin' }, thick: { backstore: 'thick' } } },
    }),
  );
  port = rt.nbdAddresses()[0].port;
}, 30_000);
afterAll(async () => {
  await rt?.stop(0);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function open(structured: boolean): Promise<Wire> {
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const w = new Wire(sock);
  await w.read(18);
  sock.write(encodeClientFlags(3));
  if (structured) {
    sock.write(encodeOptionRequest(8));
    expect((await w.optionReply()).type).toBe(1);
  }
  return w;
}

/** SET_META_CONTEXT base:allocation, then GO; returns the context id. */
async function attach(w: Wire, name: string): Promise<number> {
  w.sock.write(encodeOptionRequest(10, encodeMetaContextRequest({ exportName: name, queries: ['base:allocation'] })));
  const ctx = await w.optionReply();
  expect(ctx.type).toBe(4);
  expect(ctx.data.subarray(4).toString()).toBe('base:allocation');
  expect((await w.optionReply()).type).toBe(1);
  w.sock.write(encodeOptionRequest(7, encodeInfoRequest({ exportName: name, infos: [] })));
  for (let r = await w.optionReply(); r.type !== 1; r = await w.optionReply()) expect(r.type).toBe(3);
  return ctx.data.readUInt32BE(0);
}

function extents(payload: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let p = 4; p < payload.length; p += 8) out.push([payload.readUInt32BE(p), payload.readUInt32BE(p + 4)]);
  return out;
}

async function errnoOf(w: Wire, type: number, flags: number, offset: bigint, length: number, handle: bigint): Promise<number> {
  w.sock.write(encodeRequest({ flags, type, handle, offset, length }));
  const c = await w.chunk(handle);
  expect(c.flags & 1).toBe(1);
  return c.type === 0 ? 0 : c.payload.readUInt32BE(0);
}

describe('meta contexts', () => {
  it('LIST/SET need structured replies first', async () => {
    const w = await open(false);
    w.sock.write(encodeOptionRequest(9, encodeMetaContextRequest({ exportName: 'thin', queries: [] })));
    expect((await w.optionReply()).type).toBe(0x80000003);
    w.sock.destroy();
  });

  it('LIST with no query or "base:" lists base:allocation; other namespaces and exports do not', async () => {
    const w = await open(true);
    for (const queries of [[], ['base:']]) {
      w.sock.write(encodeOptionRequest(9, encodeMetaContextRequest({ exportName: 'thin', queries })));
      const r = await w.optionReply();
      expect(r.type).toBe(4);
      expect(r.data.subarray(4).toString()).toBe('base:allocation');
      expect((await w.optionReply()).type).toBe(1);
    }
    w.sock.write(encodeOptionRequest(9, encodeMetaContextRequest({ exportName: 'thin', queries: ['qemu:dirty-bitmap:a'] })));
    expect((await w.optionReply()).type).toBe(1);
    w.sock.write(encodeOptionRequest(10, encodeMetaContextRequest({ exportName: 'thin', queries: ['base:'] })));
    expect((await w.optionReply()).type).toBe(1); // SET takes full names only: nothing selected
    w.sock.write(encodeOptionRequest(9, encodeMetaContextRequest({ exportName: 'nope', queries: [] })));
    expect((await w.optionReply()).type).toBe(0x80000006);
    w.sock.destroy();
  });
});

describe('transmission', () => {
  it('BLOCK_STATUS on a thin LU: data where written, HOLE|ZERO after; REQ_ONE; CACHE; FAST_ZERO', async () => {
    const w = await open(true);
    const id = await attach(w, 'thin');
    w.sock.write(encodeRequest({ flags: 0, type: 1, handle: 1n, offset: 0n, length: 65536 }));
    w.sock.write(Buffer.alloc(65536, 0x5a));
    expect((await w.chunk(1n)).type).toBe(0);
    w.sock.write(encodeRequest({ flags: 0, type: 7, handle: 2n, offset: 0n, length: 1 << 20 }));
    const bs = await w.chunk(2n);
    expect(bs.type).toBe(5);
    expect(bs.payload.readUInt32BE(0)).toBe(id);
    const ex = extents(bs.payload);
    expect(ex[0]).toEqual([65536, 0]);
    expect(ex.slice(1).every(([, f]) => f === 3)).toBe(true);
    expect(ex.reduce((n, [l]) => n + l, 0)).toBe(1 << 20);
    w.sock.write(encodeRequest({ flags: 8, type: 7, handle: 3n, offset: 32768n, length: 1 << 20 }));
    expect(extents((await w.chunk(3n)).payload)).toEqual([[32768, 0]]);
    expect(await errnoOf(w, 7, 0, 4n << 20n, 512, 4n)).toBe(22); // past the end
    expect(await errnoOf(w, 5, 0, 0n, 65536, 5n)).toBe(0); // CACHE
    expect(await errnoOf(w, 6, 16, 0n, 65536, 6n)).toBe(0); // WRITE_ZEROES|FAST_ZERO: unmaps
    expect(await errnoOf(w, 6, 16 | 2, 0n, 65536, 7n)).toBe(95); // ...with NO_HOLE cannot be fast
    w.sock.destroy();
  });

  it('BLOCK_STATUS on a thick LU is one data extent; FAST_ZERO is ENOTSUP; no context is EINVAL', async () => {
    const w = await open(true);
    await attach(w, 'thick');
    w.sock.write(encodeRequest({ flags: 0, type: 7, handle: 1n, offset: 512n, length: 100000 }));
    expect(extents((await w.chunk(1n)).payload)).toEqual([[100000, 0]]);
    expect(await errnoOf(w, 6, 16, 0n, 4096, 2n)).toBe(95);
    expect(await errnoOf(w, 6, 0, 0n, 4096, 3n)).toBe(0);
    w.sock.destroy();
    const w2 = await open(true);
    w2.sock.write(encodeOptionRequest(7, encodeInfoRequest({ exportName: 'thin', infos: [] })));
    for (let r = await w2.optionReply(); r.type !== 1; r = await w2.optionReply()) expect(r.type).toBe(3);
    expect(await errnoOf(w2, 7, 0, 0n, 4096, 1n)).toBe(22);
    w2.sock.destroy();
  });
});
