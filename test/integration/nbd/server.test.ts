// The NBD server fabric over a real socket, driven byte by byte: edge
// validation answers with the right errno and the stream stays in sync.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { Wire } from '../../helpers/nbd-wire.js';
import { encodeClientFlags, encodeInfoRequest, encodeOptionRequest, encodeRequest } from '../../../src/protocols/nbd/index.js';

let rt: LunkitRuntime;
let port: number;

beforeAll(async () => {
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { ram: { type: 'ramdisk', size: '1M' } },
      nbd: { listen: ['127.0.0.1:0'], exports: { rw: { backstore: 'ram' }, ro: { backstore: 'ram', readOnly: true } } },
    }),
  );
  port = rt.nbdAddresses()[0].port;
});
afterAll(async () => {
  await rt?.stop(0);
});

/** Connects, sends GO for `name`, skips the INFO replies; returns the wire ready for requests. */
async function attach(name: string, structured = false): Promise<Wire> {
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const w = new Wire(sock);
  const greeting = await w.read(18);
  expect(greeting.subarray(0, 16).toString('latin1')).toBe('NBDMAGICIHAVEOPT');
  sock.write(encodeClientFlags(3));
  if (structured) {
    sock.write(encodeOptionRequest(8));
    const h = await w.read(20);
    expect(h.readUInt32BE(12)).toBe(1); // ACK
  }
  sock.write(encodeOptionRequest(7, encodeInfoRequest({ exportName: name, infos: [3] })));
  for (;;) {
    const h = await w.read(20);
    const type = h.readUInt32BE(12);
    await w.read(h.readUInt32BE(16));
    if (type === 1) break;
    expect(type).toBe(3); // INFO
  }
  return w;
}

async function simple(w: Wire, type: number, offset: bigint, length: number, handle: bigint, data?: Buffer): Promise<number> {
  w.sock.write(encodeRequest({ flags: 0, type, handle, offset, length }));
  if (data) w.sock.write(data);
  const r = await w.read(16);
  expect(r.readUInt32BE(0)).toBe(0x67446698);
  expect(r.readBigUInt64BE(8)).toBe(handle);
  return r.readUInt32BE(4);
}

describe('NBD transmission edge checks', () => {
  it('writes and reads back; bad requests get errnos and the stream stays in sync', async () => {
    const w = await attach('rw');
    const data = Buffer.alloc(4096, 0xab);
    expect(await simple(w, 1, 8192n, 4096, 1n, data)).toBe(0);
    expect(await simple(w, 99, 0n, 0, 2n)).toBe(22); // unknown command: EINVAL
    expect(await simple(w, 0, 100n, 512, 3n)).toBe(22); // unaligned read: EINVAL
    expect(await simple(w, 1, 1048576n - 512n, 1024, 4n, Buffer.alloc(1024))).toBe(28); // past-end write: ENOSPC
    expect(await simple(w, 0, 1048576n, 512, 5n)).toBe(22); // past-end read: EINVAL
    expect(await simple(w, 0, 8192n, 4096, 6n)).toBe(0);
    expect((await w.read(4096)).equals(data)).toBe(true);
    expect(await simple(w, 6, 8192n, 4096, 7n)).toBe(0); // WRITE_ZEROES
    expect(await simple(w, 3, 0n, 0, 8n)).toBe(0); // FLUSH
    expect(await simple(w, 0, 8192n, 512, 9n)).toBe(0);
    expect((await w.read(512)).every((b) => b === 0)).toBe(true);
    w.sock.write(encodeRequest({ flags: 0, type: 2, handle: 10n, offset: 0n, length: 0 })); // DISC
    await expect(w.read(1)).rejects.toThrow('closed');
  });

  it('a read-only export answers writes with EPERM', async () => {
    const w = await attach('ro');
    expect(await simple(w, 1, 0n, 512, 1n, Buffer.alloc(512))).toBe(1);
    expect(await simple(w, 6, 0n, 512, 2n)).toBe(1);
    w.sock.destroy();
  });

  it('structured replies: READ is one OFFSET_DATA chunk, errors are ERROR chunks', async () => {
    const w = await attach('rw', true);
    w.sock.write(encodeRequest({ flags: 0, type: 0, handle: 5n, offset: 512n, length: 512 }));
    const h = await w.read(20);
    expect(h.readUInt32BE(0)).toBe(0x668e33ef);
    expect(h.readUInt16BE(4)).toBe(1); // DONE
    expect(h.readUInt16BE(6)).toBe(1); // OFFSET_DATA
    expect(h.readUInt32BE(16)).toBe(8 + 512);
    expect((await w.read(8)).readBigUInt64BE(0)).toBe(512n);
    await w.read(512);
    w.sock.write(encodeRequest({ flags: 0, type: 0, handle: 6n, offset: 3n, length: 512 }));
    const e = await w.read(20);
    expect(e.readUInt16BE(6)).toBe(0x8001); // ERROR
    const p = await w.read(e.readUInt32BE(16));
    expect(p.readUInt32BE(0)).toBe(22);
    w.sock.destroy();
  });

  it('GO on an unknown export is NBD_REP_ERR_UNKNOWN and haggling goes on', async () => {
    const sock = connect(port, '127.0.0.1');
    const w = new Wire(sock);
    await w.read(18);
    sock.write(encodeClientFlags(3));
    sock.write(encodeOptionRequest(7, encodeInfoRequest({ exportName: 'nope', infos: [] })));
    const h = await w.read(20);
    expect(h.readUInt32BE(12)).toBe(0x80000006);
    await w.read(h.readUInt32BE(16));
    sock.write(encodeOptionRequest(2)); // ABORT
    expect((await w.read(20)).readUInt32BE(12)).toBe(1);
    sock.destroy();
  });
});
