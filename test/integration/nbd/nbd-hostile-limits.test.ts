// Hostile NBD clients against an in-process server (issue 17): what the
// server holds is read from NbdServer.connections()/stats(), so each bound is
// checked exactly; nbd-hostile-daemon.test.ts measures a real daemon's RSS
// and fds under the same attacks.
//
// - a client that sends 32 MiB READs and never reads the replies: the server
//   stops reading once limits.inFlightBytes of replies are held, and serves
//   every reply, data intact, once the client reads;
// - a client pipelining NBD_OPT_LIST with large replies and never reading:
//   haggling stops reading at limits.sendHighWaterBytes of queued output;
// - 10,000 options: limits.maxOptions are answered, the next gets
//   NBD_REP_ERR_POLICY and the connection ends; LIST adds two per export;
// - handshake and idle timeouts (and a live change of the idle timeout).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { NbdClient } from '../../../src/nbd-client/index.js';
import type { NbdServer } from '../../../src/fabrics/nbd/index.js';
import {
  CMD_READ,
  OPT,
  REP_ACK,
  REP_ERR_POLICY,
  REP_SERVER,
  StreamReader,
  exportRequest,
  goRaw,
  option,
  rawConnect,
  request,
  settled,
  until,
} from './nbd-wire-raw.js';

const MiB = 1024 * 1024;
const READ_LEN = 32 * MiB;
const IN_FLIGHT_BYTES = 64 * MiB;
const HIGH_WATER = 256 * 1024;
const DESCRIPTION = 'd'.repeat(4000);
const LISTED = 40;

let rt: LunkitRuntime;
let server: NbdServer;
let port: number;

beforeAll(async () => {
  const exports: Record<string, { backstore: string; description?: string }> = {
    big: { backstore: 'big' },
    small: { backstore: 'small' },
    slow: { backstore: 'slow' },
  };
  for (let i = 0; i < LISTED; i++) exports[`listed-${i}`] = { backstore: 'small', description: DESCRIPTION };
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: {
        big: { type: 'ramdisk', size: '64M' },
        small: { type: 'ramdisk', size: '1M' },
        slow: { type: 'ramdisk', size: '1M', filters: [{ type: 'delay', read: '2500ms' }] },
      },
      nbd: { listen: ['127.0.0.1:0'], exports },
      limits: { nbd: { inFlightBytes: IN_FLIGHT_BYTES, sendHighWaterBytes: HIGH_WATER, maxOptions: 100_000 } },
    }),
  );
  server = rt.nbd!;
  port = rt.nbdAddresses()[0].port;
}, 60_000);

afterAll(async () => {
  await rt?.stop(0);
});

/** Raw clients of the running test, destroyed after it whatever happened. */
const opened: StreamReader[] = [];

afterEach(async () => {
  for (const r of opened.splice(0)) r.sock.destroy();
  await until(() => server.connections().length === 0, 10_000, 'connections of the last test closed');
});

const baseLimits = { inFlightBytes: IN_FLIGHT_BYTES, sendHighWaterBytes: HIGH_WATER, maxOptions: 100_000 };

function onlyConnection(): ReturnType<NbdServer['connections']>[number] {
  const list = server.connections();
  expect(list).toHaveLength(1);
  return list[0];
}

describe('backpressure', () => {
  it('32 MiB READs never read: the server stops at limits.inFlightBytes, then serves every reply intact', async () => {
    server.setLimits(baseLimits);
    const pattern = randomBytes(READ_LEN);
    const expected = createHash('sha256').update(pattern).digest('hex');
    const writer = await NbdClient.connect(`nbd://127.0.0.1:${port}/big`);
    await writer.write(pattern, 0);
    await writer.disconnect();
    await until(() => server.connections().length === 0, 5000, 'writer gone');

    const r = await goRaw(port, 'big');
    opened.push(r);
    r.sock.pause(); // from here on the client reads nothing
    const count = 12; // 384 MiB asked for: six times the budget
    const pausesBefore = server.stats().readPausesBudget;
    r.sock.write(Buffer.concat(Array.from({ length: count }, (_, i) => request(CMD_READ, BigInt(i + 1), 0, READ_LEN))));
    const held = await settled(() => onlyConnection(), 500, 20_000);
    // Over the budget by at most one request, and reading stopped.
    expect(held.paused).toBe(true);
    expect(held.inFlightBytes).toBeLessThanOrEqual(IN_FLIGHT_BYTES + READ_LEN);
    expect(held.inFlight).toBeLessThanOrEqual((IN_FLIGHT_BYTES + READ_LEN) / READ_LEN);
    // Queued output is those replies (and their 16-byte headers), no more.
    expect(held.queuedBytes).toBeLessThanOrEqual(IN_FLIGHT_BYTES + READ_LEN + 16 * count);
    expect(server.stats()).toMatchObject({ paused: 1, inFlightBytes: held.inFlightBytes });
    expect(server.stats().readPausesBudget).toBeGreaterThan(pausesBefore);

    r.resume();
    const handles = new Set<bigint>();
    for (let i = 0; i < count; i++) {
      const rep = await r.simpleReply(READ_LEN);
      expect(rep.error).toBe(0);
      expect(rep.sha256).toBe(expected);
      handles.add(rep.handle);
    }
    expect(handles.size).toBe(count);
    await until(() => onlyConnection().inFlight === 0, 5000, 'in flight drained');
    expect(onlyConnection()).toMatchObject({ inFlight: 0, inFlightBytes: 0, paused: false });
    r.sock.destroy();
    await until(() => server.connections().length === 0, 5000, 'closed');
  }, 120_000);

  it('a client that closes while reading is stopped: the requests still queued are not run', async () => {
    server.setLimits(baseLimits);
    const reads = (): number => rt.core.statsSnapshot().luns.find((l) => l.name === 'big')!.reads;
    const r = await goRaw(port, 'big');
    opened.push(r);
    r.sock.pause();
    r.sock.write(Buffer.concat(Array.from({ length: 12 }, (_, i) => request(CMD_READ, BigInt(i + 1), 0, READ_LEN))));
    const held = await settled(() => onlyConnection(), 500, 20_000);
    expect(held.paused).toBe(true);
    const before = reads();
    r.sock.destroy();
    await until(() => server.connections().length === 0, 10_000, 'closed');
    await new Promise((res) => setTimeout(res, 300));
    // Freeing the budget of the dropped replies restarted nothing.
    expect(reads()).toBe(before);
  }, 60_000);

  it('NBD_OPT_LIST pipelined and never read: haggling stops at limits.sendHighWaterBytes, then answers them all', async () => {
    server.setLimits(baseLimits);
    const r = new StreamReader(await rawConnect(port));
    opened.push(r);
    const lists = 300; // about 48 MB of replies
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    r.sock.write(Buffer.concat([flags, ...Array.from({ length: lists }, () => option(OPT.LIST))]));
    const held = await settled(() => onlyConnection(), 500, 20_000);
    const oneList = LISTED * (20 + 4 + 'listed-00'.length + DESCRIPTION.length) + 200;
    expect(held.export).toBeUndefined();
    expect(held.paused).toBe(true);
    expect(held.queuedBytes).toBeLessThanOrEqual(HIGH_WATER + oneList);

    r.resume();
    await r.greeting();
    for (let i = 0; i < lists; i++) {
      let servers = 0;
      for (;;) {
        const rep = await r.optionReply();
        if (rep.type === REP_SERVER) servers++;
        else {
          expect(rep.type).toBe(REP_ACK);
          break;
        }
      }
      expect(servers).toBe(LISTED + 3);
    }
    r.sock.destroy();
    await until(() => server.connections().length === 0, 5000, 'closed');
  }, 120_000);
});

describe('option budget (limits.maxOptions)', () => {
  it('10,000 options: maxOptions answered, the next gets NBD_REP_ERR_POLICY, then the server disconnects', async () => {
    server.setLimits({ ...baseLimits, maxOptions: 64 });
    const before = server.stats().tooManyOptions;
    const r = new StreamReader(await rawConnect(port));
    opened.push(r);
    r.resume();
    await r.greeting();
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    r.sock.write(Buffer.concat([flags, ...Array.from({ length: 10_000 }, () => option(OPT.STRUCTURED_REPLY))]));
    for (let i = 0; i < 64; i++) expect((await r.optionReply()).type).toBe(REP_ACK);
    const refused = await r.optionReply();
    expect(refused.type).toBe(REP_ERR_POLICY);
    expect(refused.data.toString()).toMatch(/too many options/);
    expect(await r.waitClosed(10_000)).toBe(true);
    expect(server.stats().tooManyOptions).toBe(before + 1);
  }, 30_000);

  it('after NBD_OPT_LIST two more options per export are allowed (nbdinfo --list asks INFO of each)', async () => {
    server.setLimits({ ...baseLimits, maxOptions: 4 });
    const exports = server.exportNames().length;
    const r = new StreamReader(await rawConnect(port));
    opened.push(r);
    r.resume();
    await r.greeting();
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    const infos = 4 + 2 * exports - 1;
    r.sock.write(Buffer.concat([flags, option(OPT.LIST), ...Array.from({ length: infos + 1 }, () => option(OPT.INFO, exportRequest('small')))]));
    let answered = 0;
    let last = 0;
    while (last !== REP_ERR_POLICY) {
      const rep = await r.optionReply();
      last = rep.type;
      if (rep.type === REP_ACK) answered++;
    }
    // The LIST and every INFO within 4 + 2 per export were answered with ACK.
    expect(answered).toBe(1 + infos);
    expect(await r.waitClosed(10_000)).toBe(true);
  }, 30_000);
});

describe('EXPORT_NAME', () => {
  // The live fuzzer's finding: a name over 4096 bytes got an option reply
  // (EXPORT_NAME has none) and the connection then hung until the handshake
  // timeout. It has no error reply, so the server closes at once.
  it('a name over 4096 bytes closes the connection with no reply', async () => {
    server.setLimits(baseLimits);
    const r = new StreamReader(await rawConnect(port));
    opened.push(r);
    r.resume();
    await r.greeting();
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    r.sock.write(Buffer.concat([flags, option(OPT.EXPORT_NAME, Buffer.alloc(5000, 0x61))]));
    expect(await r.waitClosed(5_000)).toBe(true);
    await expect(r.optionReply()).rejects.toThrow(/connection closed with 0 of/);
  }, 30_000);
});

describe('timeouts', () => {
  it('handshake timeout: silent and slow haggling clients are closed, an attached client is not', async () => {
    server.setLimits({ ...baseLimits, handshakeTimeout: 1 });
    const before = server.stats().handshakeTimeouts;
    const normal = await NbdClient.connect(`nbd://127.0.0.1:${port}/small`);
    const silent = await Promise.all(Array.from({ length: 20 }, async () => new StreamReader(await rawConnect(port))));
    opened.push(...silent);
    for (const s of silent) s.resume();
    // One that keeps haggling (an option now and then) is cut all the same.
    const slow = new StreamReader(await rawConnect(port));
    opened.push(slow);
    slow.resume();
    await slow.greeting();
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    slow.sock.write(flags);
    const ticker = setInterval(() => slow.sock.write(option(OPT.STRUCTURED_REPLY)), 200);
    try {
      for (const s of [...silent, slow]) expect(await s.waitClosed(15_000)).toBe(true);
    } finally {
      clearInterval(ticker);
    }
    expect(server.stats().handshakeTimeouts - before).toBe(21);
    // The attached client outlived the timeout.
    expect((await normal.read(0, 4096)).length).toBe(4096);
    await normal.disconnect();
    await until(() => server.connections().length === 0, 5000, 'closed');
  }, 60_000);

  it('idle timeout: an idle connection is closed; a busy one and one waiting on a slow request are not', async () => {
    server.setLimits({ ...baseLimits, idleTimeout: 1 });
    const before = server.stats().idleTimeouts;
    const idle = await goRaw(port, 'small');
    opened.push(idle);
    const busy = await NbdClient.connect(`nbd://127.0.0.1:${port}/small`);
    const slow = await NbdClient.connect(`nbd://127.0.0.1:${port}/slow`);
    // A read the delay filter holds for 2.5 s: longer than the idle timeout.
    const slowRead = slow.read(0, 4096);
    const t0 = Date.now();
    while (Date.now() - t0 < 3000) {
      await busy.read(0, 4096);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(await idle.waitClosed(10_000)).toBe(true);
    expect((await slowRead).length).toBe(4096);
    expect((await busy.read(0, 4096)).length).toBe(4096);
    expect(server.stats().idleTimeouts - before).toBeGreaterThanOrEqual(1);
    await busy.disconnect();
    await slow.disconnect().catch(() => {});
    await until(() => server.connections().length === 0, 10_000, 'closed');
  }, 60_000);

  it('idle timeout: a client that stops reading its replies is idle too, and loses what it held', async () => {
    server.setLimits({ ...baseLimits, idleTimeout: 1 });
    const before = server.stats().idleTimeouts;
    const r = await goRaw(port, 'big');
    opened.push(r);
    r.sock.pause();
    r.sock.write(Buffer.concat(Array.from({ length: 48 }, (_, i) => request(CMD_READ, BigInt(i + 1), 0, READ_LEN))));
    await until(() => server.connections()[0]?.paused === true, 10_000, 'paused');
    await until(() => server.connections().length === 0, 10_000, 'stalled client closed');
    expect(server.stats().idleTimeouts - before).toBe(1);
    server.setLimits(baseLimits);
  }, 30_000);

  it('handshake timeout set live applies to connections already haggling (counted from accept)', async () => {
    server.setLimits({ ...baseLimits, handshakeTimeout: 600 });
    const r = new StreamReader(await rawConnect(port));
    opened.push(r);
    r.resume();
    await r.greeting();
    await new Promise((res) => setTimeout(res, 300));
    expect(r.closed).toBe(false);
    server.setLimits({ ...baseLimits, handshakeTimeout: 1 });
    expect(await r.waitClosed(10_000)).toBe(true);
    server.setLimits(baseLimits);
  }, 30_000);

  it('idle timeout set live applies to connections already attached', async () => {
    server.setLimits({ ...baseLimits, idleTimeout: 0 });
    const idle = await goRaw(port, 'small');
    opened.push(idle);
    await new Promise((r) => setTimeout(r, 300));
    expect(idle.closed).toBe(false);
    server.setLimits({ ...baseLimits, idleTimeout: 1 });
    expect(await idle.waitClosed(10_000)).toBe(true);
    server.setLimits(baseLimits);
  }, 30_000);
});
