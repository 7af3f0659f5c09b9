// The NBD client against a scripted server whose every byte is written by
// hand (fake-server.ts): golden request bytes, split delivery, replies out of
// order, structured chunks, errors, refused options, old servers, a server
// closing mid-request, deadlines and reconnect with replay.
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NbdClient, isNbdClientError, type NbdClientOptions } from '../../../src/nbd-client/index.js';
import type { Wire } from '../../helpers/nbd-wire.js';
import {
  SIZE,
  ascii,
  be16,
  be32,
  be64,
  chunk,
  fakeServer,
  greeting,
  optReply,
  readOption,
  readRequest,
  simpleReply,
  standardHandshake,
  type FakeServer,
} from './fake-server.js';

let server: FakeServer | undefined;
let client: NbdClient | undefined;
afterEach(async () => {
  client?.destroy();
  client = undefined;
  await server?.close();
  server = undefined;
});

async function withServer(script: (w: Wire, sock: net.Socket, index: number) => Promise<void>, opts: NbdClientOptions = {}): Promise<NbdClient> {
  server = await fakeServer(script);
  client = await NbdClient.connect(server.url, { connectTimeoutMs: 3000, ...opts });
  return client;
}

/** Write bytes one at a time so every framer boundary is crossed. */
async function dribble(sock: net.Socket, b: Buffer): Promise<void> {
  for (const byte of b) {
    sock.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
}

describe('handshake', () => {
  it('negotiates structured replies, base:allocation and block sizes with GO', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      await readRequest(w).catch(() => undefined);
    });
    expect(c.size).toBe(SIZE);
    expect(c.negotiatedVia).toBe('go');
    expect(c.structuredReplies).toBe(true);
    expect(c.metaContexts.get('base:allocation')).toBe(1);
    expect(c.export.blockSize).toEqual({ minimum: 512, preferred: 4096, maximum: 65536 });
    expect([c.canFlush, c.canFua, c.canTrim, c.canWriteZeroes, c.canCache, c.readOnly]).toEqual([true, true, true, true, false, false]);
  });

  it('an unknown export refused by GO is ERR_NBD_OPTION_REFUSED with the reply type and message', async () => {
    server = await fakeServer(async (w, s) => {
      s.write(greeting(0x0003));
      await w.read(4);
      await readOption(w);
      s.write(optReply(8, 1));
      await readOption(w);
      s.write(optReply(10, 0x80000006, ascii('no such export')));
      const go = await readOption(w);
      expect(go.option).toBe(7);
      s.write(optReply(7, 0x80000006, ascii('no such export')));
      // The client says goodbye with NBD_OPT_ABORT.
      expect((await readOption(w)).option).toBe(2);
      s.write(optReply(2, 1));
    });
    const err = await NbdClient.connect(server.url + 'missing').catch((e: unknown) => e);
    expect(isNbdClientError(err, 'ERR_NBD_OPTION_REFUSED')).toBe(true);
    expect(err).toMatchObject({ option: 7, replyType: 0x80000006 });
    expect((err as Error).message).toContain('no such export');
  });

  it('falls back to EXPORT_NAME when GO is unsupported (structured replies kept)', async () => {
    const c = await withServer(async (w, s) => {
      s.write(greeting(0x0001)); // fixed newstyle, no NO_ZEROES
      expect([...(await w.read(4))]).toEqual([0, 0, 0, 1]);
      await readOption(w);
      s.write(optReply(8, 0x80000001));
      const go = await readOption(w);
      expect(go.option).toBe(7);
      s.write(optReply(7, 0x80000001));
      const en = await readOption(w);
      expect(en).toEqual({ option: 1, data: Buffer.from('disk') });
      s.write(Buffer.from([...be64(SIZE), ...be16(0x0003), ...new Array<number>(124).fill(0)]));
      await readRequest(w).catch(() => undefined);
    }, { exportName: 'disk' });
    expect(c.negotiatedVia).toBe('export-name');
    expect(c.structuredReplies).toBe(false);
    expect(c.readOnly).toBe(true);
    expect(c.size).toBe(SIZE);
  });

  it('a plain newstyle server (no FIXED_NEWSTYLE) gets EXPORT_NAME right away', async () => {
    const c = await withServer(async (w, s) => {
      s.write(greeting(0x0002)); // NO_ZEROES only
      expect([...(await w.read(4))]).toEqual([0, 0, 0, 2]);
      expect(await readOption(w)).toEqual({ option: 1, data: Buffer.alloc(0) });
      s.write(Buffer.from([...be64(SIZE), ...be16(0x0001)]));
      await readRequest(w).catch(() => undefined);
    });
    expect(c.negotiatedVia).toBe('export-name');
    expect(c.size).toBe(SIZE);
  });

  it('lists exports with descriptions and ends with ABORT', async () => {
    server = await fakeServer(async (w, s) => {
      s.write(greeting(0x0003));
      await w.read(4);
      expect(await readOption(w)).toEqual({ option: 3, data: Buffer.alloc(0) });
      s.write(optReply(3, 2, [...be32(4), ...ascii('disk'), ...ascii('the disk')]));
      s.write(optReply(3, 2, [...be32(0)]));
      s.write(optReply(3, 1));
      expect((await readOption(w)).option).toBe(2);
      s.write(optReply(2, 1));
    });
    expect(await NbdClient.list(server.url)).toEqual([
      { name: 'disk', description: 'the disk' },
      { name: '', description: '' },
    ]);
  });
});

describe('transmission', () => {
  it('sends golden WRITE bytes with FUA and reads a simple reply', async () => {
    let seen: Buffer | undefined;
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const h = Buffer.from(await w.read(28 + 4));
      seen = h;
      s.write(simpleReply(h.subarray(8, 16), 0));
    });
    await c.write(Buffer.from([1, 2, 3, 4]), 0x10200, { fua: true });
    // magic, flags FUA, type WRITE, cookie (any), offset 0x10200, length 4, data
    expect([...seen!.subarray(0, 8)]).toEqual([0x25, 0x60, 0x95, 0x13, 0, 1, 0, 1]);
    expect([...seen!.subarray(16)]).toEqual([0, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 4, 1, 2, 3, 4]);
  });

  it('assembles a structured READ from data and hole chunks delivered one byte at a time', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const r = await readRequest(w);
      expect([r.type, r.offset, r.length]).toEqual([0, 4096, 16]);
      const reply = Buffer.concat([
        chunk(r.cookie, 0, 2, [...be64(4096 + 8), ...be32(8)]), // OFFSET_HOLE 8 bytes at +8
        chunk(r.cookie, 0, 1, [...be64(4096), 9, 9, 9, 9, 9, 9, 9, 9]), // OFFSET_DATA at +0
        chunk(r.cookie, 1, 0, []), // NONE, DONE
      ]);
      await dribble(s, reply);
    });
    const buf = Buffer.alloc(16, 0xee);
    await c.readInto(buf, 4096);
    expect([...buf]).toEqual([9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('matches replies that come back out of order', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const a = await readRequest(w);
      const b = await readRequest(w);
      const d = await readRequest(w);
      for (const r of [d, b, a]) s.write(chunk(r.cookie, 1, 1, [...be64(r.offset), ...new Array<number>(r.length).fill(r.offset / 512)]));
    });
    const [x, y, z] = await Promise.all([c.read(512, 512), c.read(1024, 512), c.read(1536, 512)]);
    expect([x[0], y[0], z[0]]).toEqual([1, 2, 3]);
  });

  it('splits a READ larger than the maximum block size', async () => {
    const lengths: number[] = [];
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s, { maxBlock: 65536 });
      for (let i = 0; i < 3; i++) {
        const r = await readRequest(w);
        lengths.push(r.length);
        s.write(chunk(r.cookie, 1, 1, [...be64(r.offset), ...new Array<number>(r.length).fill(i + 1)]));
      }
    });
    const data = await c.read(0, 150_000);
    expect(lengths).toEqual([65536, 65536, 150_000 - 131072]);
    expect([data[0], data[65536], data[149_999]]).toEqual([1, 2, 3]);
  });

  it('a server error becomes ERR_NBD_SERVER_ERROR with the errno (simple and structured)', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const a = await readRequest(w);
      s.write(simpleReply(a.cookie, 28)); // ENOSPC on a WRITE
      const b = await readRequest(w);
      // NBD_REPLY_TYPE_ERROR: EIO with a message, DONE.
      s.write(chunk(b.cookie, 1, 0x8001, [...be32(5), ...be16(3), ...ascii('bad')]));
    });
    const e1 = await c.write(Buffer.alloc(512), 0).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 'ERR_NBD_SERVER_ERROR', errno: 28, nodeCode: 'ENOSPC' });
    const e2 = await c.read(0, 512).catch((e: unknown) => e);
    expect(e2).toMatchObject({ code: 'ERR_NBD_SERVER_ERROR', errno: 5, nodeCode: 'EIO' });
    expect((e2 as Error).message).toContain('bad');
  });

  it('block status returns absolute extents from the base:allocation context', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const r = await readRequest(w);
      expect([r.type, r.offset, r.length]).toEqual([7, 8192, 65536]);
      s.write(chunk(r.cookie, 1, 5, [...be32(1), ...be32(4096), ...be32(0), ...be32(61440), ...be32(3)]));
    });
    expect(await c.blockStatus(8192, 65536)).toEqual([
      { offset: 8192, length: 4096, flags: 0, hole: false, zero: false },
      { offset: 12288, length: 61440, flags: 3, hole: true, zero: true },
    ]);
  });

  it('refuses commands the export did not advertise without sending them', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s, { flags: 0x0001 | 0x0002 }); // read-only, nothing else
      await readRequest(w).catch(() => undefined);
    });
    for (const p of [c.write(Buffer.alloc(512), 0), c.flush(), c.trim(0, 512), c.writeZeroes(0, 512), c.cache(0, 512)]) {
      await expect(p).rejects.toMatchObject({ code: 'ERR_NBD_UNSUPPORTED' });
    }
  });

  it('a server closing mid-request rejects every pending request with ERR_NBD_DISCONNECTED', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      await readRequest(w);
      await readRequest(w);
      s.destroy();
    });
    const results = await Promise.allSettled([c.read(0, 512), c.write(Buffer.alloc(512), 512)]);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_NBD_DISCONNECTED' });
    expect(c.state).toBe('closed');
    await expect(c.read(0, 512)).rejects.toMatchObject({ code: 'ERR_NBD_DISCONNECTED' });
  });

  it('a request without a reply ends with ERR_NBD_TIMEOUT; its late reply is skipped', async () => {
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const late = await readRequest(w);
      await new Promise((r) => setTimeout(r, 300));
      s.write(chunk(late.cookie, 1, 1, [...be64(0), ...new Array<number>(512).fill(7)]));
      const next = await readRequest(w);
      s.write(chunk(next.cookie, 1, 1, [...be64(512), ...new Array<number>(512).fill(8)]));
    }, { requestTimeoutMs: 150 });
    const buf = Buffer.alloc(512);
    await expect(c.readInto(buf, 0)).rejects.toMatchObject({ code: 'ERR_NBD_TIMEOUT' });
    await new Promise((r) => setTimeout(r, 250));
    expect(buf[0]).toBe(0); // late data did not land in the caller's buffer
    expect((await c.read(512, 512))[0]).toBe(8);
  });

  it('reconnects after a lost connection and replays the request that had not completed', async () => {
    const c = await withServer(async (w, s, index) => {
      await standardHandshake(w, s);
      const r = await readRequest(w);
      if (index === 0) {
        s.destroy();
        return;
      }
      s.write(chunk(r.cookie, 1, 1, [...be64(r.offset), ...new Array<number>(r.length).fill(5)]));
    }, { reconnect: { retries: 3, initialDelayMs: 10 } });
    const events: string[] = [];
    c.on('disconnect', () => events.push('disconnect'));
    c.on('reconnected', () => events.push('reconnected'));
    expect((await c.read(0, 512))[0]).toBe(5);
    expect(events).toEqual(['disconnect', 'reconnected']);
    expect(server!.connections).toBe(2);
  });

  it('gives up after the retries with ERR_NBD_DISCONNECTED', async () => {
    const c = await withServer(async (w, s, index) => {
      if (index > 0) {
        s.destroy();
        return;
      }
      await standardHandshake(w, s);
      await readRequest(w);
      s.destroy();
    }, { reconnect: { retries: 2, initialDelayMs: 10 } });
    await expect(c.read(0, 512)).rejects.toMatchObject({ code: 'ERR_NBD_DISCONNECTED' });
    expect(c.state).toBe('failed');
  });

  it('disconnect() waits for replies, then sends NBD_CMD_DISC', async () => {
    let disc: number[] = [];
    const c = await withServer(async (w, s) => {
      await standardHandshake(w, s);
      const r = await readRequest(w);
      await new Promise((res) => setTimeout(res, 50));
      s.write(simpleReply(r.cookie, 0));
      const h = await w.read(28);
      disc = [...h.subarray(0, 8)];
    });
    const flushed = c.flush();
    await c.disconnect();
    await flushed;
    expect(disc).toEqual([0x25, 0x60, 0x95, 0x13, 0, 0, 0, 2]);
  });
});
