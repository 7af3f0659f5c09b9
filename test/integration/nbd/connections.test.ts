// NbdServer.connections() lists live clients as plain JSON, and deleting an
// export ends the connections attached to it (requests in flight answered,
// later ones NBD_ESHUTDOWN, then close) unless endConnections is false.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { NbdClient } from '../../../src/nbd-client/index.js';
import type { NbdServer } from '../../../src/fabrics/nbd/index.js';

let rt: LunkitRuntime;
let server: NbdServer;
let url: (name: string) => string;

beforeAll(async () => {
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { a: { type: 'ramdisk', size: '1M' }, b: { type: 'ramdisk', size: '1M' }, c: { type: 'ramdisk', size: '1M' } },
      nbd: { listen: ['127.0.0.1:0'], exports: { a: { backstore: 'a' }, b: { backstore: 'b' }, c: { backstore: 'c' } } },
    }),
  );
  server = rt.nbd!;
  const port = rt.nbdAddresses()[0].port;
  url = (name) => `nbd://127.0.0.1:${port}/${name}`;
}, 30_000);

afterAll(async () => {
  await rt?.stop(0);
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('NbdServer.connections()', () => {
  it('lists each client with its export, addresses, mode and in-flight count, as plain JSON', async () => {
    const t0 = Date.now();
    const one = await NbdClient.connect(url('a'));
    const two = await NbdClient.connect(url('b'), { structuredReplies: false });
    try {
      await until(() => server.connections().filter((c) => c.export !== undefined).length === 2);
      const list = server.connections();
      expect(JSON.parse(JSON.stringify(list))).toEqual(list);
      const a = list.find((c) => c.export === 'a')!;
      const b = list.find((c) => c.export === 'b')!;
      expect(a).toMatchObject({ tls: false, structured: true, extendedHeaders: false, inFlight: 0 });
      expect(b).toMatchObject({ tls: false, structured: false, extendedHeaders: false, inFlight: 0 });
      expect(a.remote).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(a.local).toBe(`127.0.0.1:${rt.nbdAddresses()[0].port}`);
      expect(a.id).not.toBe(b.id);
      expect(a.since).toBeGreaterThanOrEqual(t0 - 1);
      expect(a.since).toBeLessThanOrEqual(Date.now());
    } finally {
      await one.disconnect();
      await two.disconnect();
    }
    await until(() => server.connections().length === 0);
  });
});

describe('deleteExport ends the connections attached to it', () => {
  it('answers requests already sent, then closes; other exports keep their clients', async () => {
    const victim = await NbdClient.connect(url('a'));
    const other = await NbdClient.connect(url('b'));
    const disconnected = new Promise<void>((r) => victim.once('disconnect', () => r()));
    await until(() => server.connections().filter((c) => c.export !== undefined).length === 2);

    // Several writes on the wire, then the export goes: each is either answered
    // normally (it was in flight) or refused with ESHUTDOWN (it arrived after),
    // or lost with the connection; none may hang.
    const data = Buffer.alloc(4096, 0x33);
    const writes = Array.from({ length: 8 }, (_, i) => victim.write(data, i * 4096).then(
      () => 'ok',
      (e: { code?: string; errno?: number }) => (e.code === 'ERR_NBD_SERVER_ERROR' ? `errno ${e.errno}` : String(e.code)),
    ));
    expect(server.deleteExport('a')).toBe(true);
    const outcomes = await Promise.all(writes);
    for (const o of outcomes) expect(['ok', 'errno 108', 'ERR_NBD_DISCONNECTED']).toContain(o);
    await disconnected;
    await until(() => !server.connections().some((c) => c.export === 'a'));

    // New clients cannot pick it; the other export's client is untouched.
    await expect(NbdClient.connect(url('a'))).rejects.toMatchObject({ code: 'ERR_NBD_OPTION_REFUSED' });
    expect((await other.read(0, 512)).length).toBe(512);
    expect(server.connections().map((c) => c.export)).toEqual(['b']);
    await other.disconnect();
    victim.destroy();
  });

  it('keeps the connections with endConnections: false', async () => {
    const c = await NbdClient.connect(url('c'));
    await until(() => server.connections().some((x) => x.export === 'c'));
    expect(server.deleteExport('c', { endConnections: false })).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect((await c.read(0, 4096)).length).toBe(4096);
    expect(server.connections().map((x) => x.export)).toEqual(['c']);
    await c.disconnect();
  });
});
