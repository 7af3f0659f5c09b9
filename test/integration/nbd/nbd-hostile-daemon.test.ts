// Hostile NBD clients against a real `lunkit daemon` (issue 17): its RSS and
// fd count (/proc, test/helpers/proc-usage.ts) stay within the configured
// budgets while a normal client on another export keeps writing and reading
// back checksummed data. Small budgets in the config so the bounds mean
// something: 64 MiB of payload held per connection, 256 KiB of queued output,
// 64 options, a 2 s handshake timeout, a 3 s idle timeout (which also ends a
// client that stops reading its replies).
//
// Needs dist/ (npx tsc -p tsconfig.build.json).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../../src/nbd-client/index.js';
import { cliOk, freePort, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { fdCount, sampleUsage } from '../../helpers/proc-usage.js';
import { CMD_READ, REP_ERR_POLICY, StreamReader, goRaw, option, rawConnect, request, until } from './nbd-wire-raw.js';

const MiB = 1024 * 1024;
const IN_FLIGHT_BYTES = 64 * MiB;
const READ_LEN = 32 * MiB;
/** V8 heap growth, GC lag and allocator slack on top of a budget. */
const SLACK = 96 * MiB;

let dir: string;
let daemon: DaemonProcess;
let pid: number;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-hostile-'));
  port = await freePort();
  const config = {
    backstores: { big: { type: 'ramdisk', size: '64M' }, work: { type: 'ramdisk', size: '8M' } },
    nbd: { listen: [`127.0.0.1:${port}`], exports: { big: { backstore: 'big' }, work: { backstore: 'work' } } },
    limits: {
      nbd: {
        inFlightBytes: IN_FLIGHT_BYTES,
        sendHighWaterBytes: 256 * 1024,
        maxOptions: 64,
        handshakeTimeout: 2,
        idleTimeout: 3,
        maxConnections: 2000,
        maxConnectionsPerAddress: 2000,
      },
    },
  };
  await writeFile(join(dir, 'lunkit.json'), JSON.stringify(config));
  daemon = await startDaemon({ dir, config: join(dir, 'lunkit.json') });
  pid = daemon.child.pid!;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * The normal client: 256 KiB writes at random offsets of `work`, each read
 * back and compared by sha256, until stop(). Resolves to the rounds done.
 */
function normalClient(): { stop(): Promise<number> } {
  let stopping = false;
  const run = (async () => {
    const c = await NbdClient.connect(`nbd://127.0.0.1:${port}/work`);
    let rounds = 0;
    try {
      while (!stopping) {
        const data = randomBytes(256 * 1024);
        const offset = Math.floor(Math.random() * 31) * 256 * 1024;
        await c.write(data, offset);
        const back = await c.read(offset, data.length);
        expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
        rounds++;
      }
    } finally {
      await c.disconnect();
    }
    return rounds;
  })();
  return {
    async stop() {
      stopping = true;
      return run;
    },
  };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Exports of the daemon's live NBD connections (`lunkit sessions --json`). */
async function nbdExports(): Promise<string[]> {
  const out = JSON.parse(await cliOk(daemon.socket, ['sessions', '--json'])) as { sessions: Array<{ fabric?: string; export?: string }> };
  return out.sessions.filter((c) => c.fabric === 'nbd' && c.export !== undefined).map((c) => c.export!);
}

/**
 * The daemon's RSS before an attack: the highest seen over `ms` while the
 * normal client runs (a single reading lands anywhere in a GC cycle).
 */
async function baselineRss(ms: number): Promise<number> {
  const s = sampleUsage(pid, 50);
  await sleep(ms);
  return s.stop().rssMax;
}

describe('a real daemon under hostile NBD clients', () => {
  it('10,000 options of 60 KiB each, pipelined: ERR_POLICY after 64, closed, RSS flat', async () => {
    const normal = normalClient();
    const base = await baselineRss(1000);
    const usage = sampleUsage(pid, 50);
    const r = new StreamReader(await rawConnect(port));
    r.resume();
    await r.greeting();
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    r.sock.write(flags);
    // An unknown option with 60 KiB of data, offered as fast as the server takes it.
    const one = option(0x4c4b, Buffer.alloc(60 * 1024, 0x5a));
    const sending = (async () => {
      for (let i = 0; i < 10_000 && !r.closed; i++) {
        if (!r.sock.write(one)) await new Promise<void>((res) => (r.closed ? res() : r.sock.once('drain', res).once('close', res)));
      }
    })();
    let answered = 0;
    let last = 0;
    while (last !== REP_ERR_POLICY) {
      last = (await r.optionReply()).type;
      if (last !== REP_ERR_POLICY) answered++;
    }
    expect(answered).toBe(64);
    expect(await r.waitClosed(10_000)).toBe(true);
    await sending;
    const u = usage.stop();
    const rounds = await normal.stop();
    console.log(`10,000 options: RSS base ${(base / MiB).toFixed(1)} MiB, max ${(u.rssMax / MiB).toFixed(1)} MiB; normal client ${rounds} verified rounds`);
    expect(u.rssMax - base).toBeLessThanOrEqual(SLACK);
    expect(rounds).toBeGreaterThan(0);
  }, 60_000);

  it('200 half-open connections are closed after the 2 s handshake timeout; fds come back down', async () => {
    const normal = normalClient();
    await sleep(300);
    const baseFds = fdCount(pid);
    const usage = sampleUsage(pid, 50);
    const half = await Promise.all(Array.from({ length: 200 }, async () => new StreamReader(await rawConnect(port))));
    try {
      for (const h of half) h.resume();
      await until(() => fdCount(pid) >= baseFds + 200, 10_000, 'daemon accepted all 200');
      for (const h of half) expect(await h.waitClosed(20_000)).toBe(true);
      await until(() => fdCount(pid) <= baseFds + 2, 10_000, 'fds back down');
    } finally {
      for (const h of half) h.sock.destroy();
    }
    const u = usage.stop();
    const rounds = await normal.stop();
    console.log(`200 half-open: fds base ${baseFds}, max ${u.fdMax}, end ${fdCount(pid)}; normal client ${rounds} verified rounds`);
    expect(u.fdMax).toBeLessThanOrEqual(baseFds + 200 + 8);
    expect(rounds).toBeGreaterThan(0);
  }, 60_000);

  it('an idle attached client is closed after the 3 s idle timeout; the busy normal client is not', async () => {
    const normal = normalClient();
    const idle = await goRaw(port, 'work');
    try {
      expect(await idle.waitClosed(20_000)).toBe(true);
    } finally {
      idle.sock.destroy();
    }
    // The normal client ran throughout: stop() rethrows any failure of it.
    expect(await normal.stop()).toBeGreaterThan(0);
    // Still serving.
    const c = await NbdClient.connect(`nbd://127.0.0.1:${port}/work`);
    expect((await c.read(0, 4096)).length).toBe(4096);
    await c.disconnect();
  }, 60_000);

  // Last: the replies it leaves behind take a while to be collected, and would
  // raise the other tests' baselines.
  it('32 MiB READs never read: RSS stays under inFlightBytes + one request + slack, the idle timeout ends it; the normal client verifies', async () => {
    const writer = await NbdClient.connect(`nbd://127.0.0.1:${port}/big`);
    await writer.write(randomBytes(READ_LEN), 0);
    await writer.disconnect();
    const normal = normalClient();
    const base = await baselineRss(1000);
    const usage = sampleUsage(pid, 50);
    const attacker = await goRaw(port, 'big');
    try {
      attacker.sock.pause();
      // 48 x 32 MiB = 1.5 GiB of replies asked for, none read.
      attacker.sock.write(Buffer.concat(Array.from({ length: 48 }, (_, i) => request(CMD_READ, BigInt(i + 1), 0, READ_LEN))));
      await sleep(2500);
      // Replies unread for the 3 s idle timeout: the daemon lets go of the
      // client (seen from the daemon: the paused socket here would show the
      // close only after reading every byte before it).
      const deadline = Date.now() + 15_000;
      while ((await nbdExports()).includes('big')) {
        if (Date.now() > deadline) throw new Error('the daemon did not close the stalled client');
        await sleep(200);
      }
    } finally {
      attacker.sock.destroy();
    }
    const u = usage.stop();
    const rounds = await normal.stop();
    console.log(`READ flood: RSS base ${(base / MiB).toFixed(1)} MiB, max ${(u.rssMax / MiB).toFixed(1)} MiB; normal client ${rounds} verified rounds`);
    expect(u.rssMax - base).toBeLessThanOrEqual(IN_FLIGHT_BYTES + READ_LEN + SLACK);
    expect(rounds).toBeGreaterThan(0);
  }, 60_000);
});
