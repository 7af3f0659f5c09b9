// NbdMultiClient against real servers: nbdkit memory (which advertises
// CAN_MULTI_CONN) behind the log filter, which writes one line per connection
// and per request, so the connections opened, the spreading of requests and
// the order of writes and FLUSH are all seen from the server's side; lunkit's
// own NBD server (counted with NbdServer.connections()); and nbdkit with the
// multi-conn filter in disable mode, which gets one connection.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient, NbdMultiClient, isNbdClientError } from '../../../src/nbd-client/index.js';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import type { Logger } from '../../../src/util/log.js';
import { startNbdkit, type NbdPeer } from './peers.js';

const MiB = 1024 * 1024;
const opened: Array<NbdMultiClient | NbdClient> = [];
const peers: NbdPeer[] = [];

afterEach(async () => {
  for (const c of opened.splice(0)) c.destroy();
  for (const p of peers.splice(0)) await p.stop();
});

/** nbdkit with the log filter writing into its own temp directory. */
async function loggedNbdkit(plugin: string[], filters: string[] = []): Promise<{ peer: NbdPeer; log: () => Promise<string[]> }> {
  // The socket directory is made first so the log file can live in it.
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-nbdmc-'));
  const peer = await startNbdkit([...plugin, `logfile=${join(dir, 'log')}`], { socketDir: dir, extraArgs: ['--filter=log', ...filters.map((f) => `--filter=${f}`)] });
  peers.push({
    ...peer,
    stop: async () => {
      await peer.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
  return { peer, log: async () => (await readFile(join(dir, 'log'), 'utf8').catch(() => '')).split('\n') };
}

/** "connection=N" of every log line matching `what` (e.g. "Connect", "Write id"). */
function connectionsOf(lines: string[], what: RegExp): number[] {
  const out: number[] = [];
  for (const l of lines) {
    const m = /connection=(\d+) (.*)$/.exec(l);
    if (m && what.test(m[2])) out.push(Number(m[1]));
  }
  return out;
}

function collectLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (msg: string, f?: Record<string, unknown>): void => {
    lines.push(`${msg} ${JSON.stringify(f ?? {})}`);
  };
  return { lines, debug: put, info: put, warn: put, error: put };
}

describe('NbdMultiClient against nbdkit memory (CAN_MULTI_CONN)', () => {
  it('opens 4 connections, spreads writes and reads over them, and the data reads back identical', async () => {
    const { peer, log } = await loggedNbdkit(['memory', '64M']);
    const logger = collectLogger();
    const c = await NbdMultiClient.connect(peer.url(), { connections: 4, logger });
    opened.push(c);
    expect(c.canMultiConn).toBe(true);
    expect(c.connections).toBe(4);
    expect(c.limitedBy).toBeUndefined();
    expect(logger.lines.join('\n')).toMatch(/multi-conn.*"connections":4/);
    const data = randomBytes(16 * MiB);
    // 64 writes of 256 KiB at once: pieces go to the least loaded connection.
    await Promise.all(Array.from({ length: 64 }, (_, i) => c.write(data.subarray(i * 256 * 1024, (i + 1) * 256 * 1024), i * 256 * 1024)));
    await c.flush();
    const back = Buffer.alloc(16 * MiB);
    await Promise.all(Array.from({ length: 64 }, (_, i) => c.readInto(back.subarray(i * 256 * 1024, (i + 1) * 256 * 1024), i * 256 * 1024)));
    expect(back.equals(data)).toBe(true);
    // A fresh single-connection client sees the same bytes.
    const fresh = await NbdClient.connect(peer.url());
    opened.push(fresh);
    expect((await fresh.read(0, 16 * MiB)).equals(data)).toBe(true);
    await fresh.disconnect();
    await c.disconnect();
    const lines = await log();
    expect(new Set(connectionsOf(lines, /^Connect /)).size).toBe(5);
    const writers = new Set(connectionsOf(lines, /^Write id/));
    const readers = new Set(connectionsOf(lines, /^Read id/));
    expect(writers.size).toBe(4);
    expect(readers.size).toBeGreaterThanOrEqual(4);
    expect(connectionsOf(lines, /^Flush id/)).toHaveLength(1);
  });

  it('a FLUSH is sent only after the writes in flight on every connection completed', async () => {
    // Writes take 300 ms (delay filter, inside the log filter), so they are in flight when flush() is called.
    const { peer, log } = await loggedNbdkit(['memory', '16M', 'delay-write=300ms'], ['delay']);
    const c = await NbdMultiClient.connect(peer.url(), { connections: 4 });
    opened.push(c);
    expect(c.connections).toBe(4);
    // 8 x 512 KiB: each lane takes writes until 1 MiB is outstanding on it, so all 4 get some.
    const data = randomBytes(8 * 512 * 1024);
    const writes = Array.from({ length: 8 }, (_, i) => c.write(data.subarray(i * 524288, (i + 1) * 524288), i * 524288));
    await c.flush();
    await Promise.all(writes);
    await c.disconnect();
    const lines = await log();
    const flushAt = lines.findIndex((l) => / Flush id=/.test(l));
    const writeDone = lines.map((l, i) => (/\.\.\.Write id=\d+ return=0/.test(l) ? i : -1)).filter((i) => i >= 0);
    expect(writeDone).toHaveLength(8);
    expect(new Set(connectionsOf(lines, /^Write id/)).size).toBe(4);
    expect(flushAt).toBeGreaterThan(Math.max(...writeDone));
    const fresh = await NbdClient.connect(peer.url());
    opened.push(fresh);
    expect((await fresh.read(0, data.length)).equals(data)).toBe(true);
  });

  it('one connection when the export lacks CAN_MULTI_CONN (multi-conn filter, mode disable), and says why', async () => {
    const { peer, log } = await loggedNbdkit(['memory', '16M', 'multi-conn-mode=disable'], ['multi-conn']);
    const logger = collectLogger();
    const c = await NbdMultiClient.connect(peer.url(), { connections: 4, logger });
    opened.push(c);
    expect(c.canMultiConn).toBe(false);
    expect(c.connections).toBe(1);
    expect(c.limitedBy).toMatch(/CAN_MULTI_CONN/);
    expect(logger.lines.join('\n')).toMatch(/one connection.*CAN_MULTI_CONN/);
    const data = randomBytes(MiB);
    await c.write(data, 0);
    await c.flush();
    expect((await c.read(0, MiB)).equals(data)).toBe(true);
    await c.disconnect();
    expect(new Set(connectionsOf(await log(), /^Connect /)).size).toBe(1);
  });

  it('refuses a connection count outside 1..64', async () => {
    const err = await NbdMultiClient.connect('nbd://127.0.0.1:1/', { connections: 0 }).catch((e: unknown) => e);
    expect(isNbdClientError(err, 'ERR_NBD_INVALID_ARGUMENT')).toBe(true);
  });
});

describe("NbdMultiClient against lunkit's own NBD server", () => {
  let rt: LunkitRuntime;
  let port: number;
  beforeAll(async () => {
    rt = await LunkitRuntime.start(
      parseConfig({
        backstores: { disk: { type: 'ramdisk', size: '32M' } },
        nbd: { listen: ['127.0.0.1:0'], exports: { disk: { backstore: 'disk' } } },
      }),
    );
    port = rt.nbdAddresses()[0].port;
  }, 30_000);
  afterAll(async () => {
    await rt?.stop(0);
  });

  it('opens N connections (counted by the server) and reads back what it wrote through all of them', async () => {
    const c = await NbdMultiClient.connect(`nbd://127.0.0.1:${port}/disk`, { connections: 4 });
    opened.push(c);
    expect(c.connections).toBe(4);
    expect(rt.nbd!.connections().filter((i) => i.export === 'disk')).toHaveLength(4);
    const data = randomBytes(8 * MiB);
    await Promise.all(Array.from({ length: 32 }, (_, i) => c.write(data.subarray(i * 262144, (i + 1) * 262144), i * 262144)));
    await c.flush();
    const fresh = await NbdClient.connect(`nbd://127.0.0.1:${port}/disk`);
    opened.push(fresh);
    expect((await fresh.read(0, data.length)).equals(data)).toBe(true);
    await fresh.disconnect();
    await c.disconnect();
    await expect.poll(() => rt.nbd!.connections().length).toBe(0);
  });

  it('without reconnect, a lost connection fails its writes, its reads are sent again on the others; destroy closes all', async () => {
    // lunkit's server: nbdkit 1.32 aborts (connections.c "Assertion `sock >= 0'") when a
    // connection is closed while it sends READ replies on it.
    const c = await NbdMultiClient.connect(`nbd://127.0.0.1:${port}/disk`, { connections: 3 });
    opened.push(c);
    expect(c.connections).toBe(3);
    const lanes = (): NbdClient[] => (c as unknown as { lanes: Array<{ client: NbdClient }> }).lanes.map((l) => l.client);
    const data = randomBytes(4 * MiB);
    await c.write(data, 0);
    // Reads in flight on every lane; then one lane dies (as if its socket closed).
    const reads = Array.from({ length: 16 }, (_, i) => c.read(i * 262144, 262144));
    expect(lanes()[1].inFlight).toBeGreaterThan(0);
    lanes()[1].destroy();
    expect(c.connections).toBe(2);
    expect(c.state).toBe('connected');
    expect(Buffer.concat(await Promise.all(reads)).equals(data)).toBe(true);
    // A write in flight on a lane that dies fails (never re-sent elsewhere).
    const w = Array.from({ length: 8 }, (_, i) => c.write(data.subarray(0, 524288), i * 524288).then(() => 'ok', (e: unknown) => e));
    // The first lane (whose negotiated facts the client reports) goes; they stay readable.
    expect(lanes()[0].inFlight).toBeGreaterThan(0);
    lanes()[0].destroy();
    const outcomes = await Promise.all(w);
    expect(outcomes.filter((o) => isNbdClientError(o, 'ERR_NBD_DISCONNECTED')).length).toBeGreaterThan(0);
    expect(c.connections).toBe(1);
    expect(outcomes).toContain('ok');
    expect(c.size).toBe(32 * MiB);
    c.destroy();
    expect(c.state).toBe('closed');
    const err = await c.read(0, 512).catch((e: unknown) => e);
    expect(isNbdClientError(err, 'ERR_NBD_DISCONNECTED')).toBe(true);
  });
});
