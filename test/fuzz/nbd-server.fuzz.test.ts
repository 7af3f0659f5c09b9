// Time-boxed fuzz (fast-check) of a live lunkit NBD server: random bytes and
// valid messages with mutated bytes, lengths and flags, in option haggling
// (including STARTTLS followed by garbage instead of a TLS handshake) and in
// the transmission phase after a real GO (compact, structured and extended
// headers). Whatever arrives, the process must not crash, no promise may be
// left rejected, and afterwards a good client (libnbd's nbdinfo and a
// hand-driven READ) is still served.
//
// Seed messages are hand-written bytes (proto.md "Option haggling",
// "Request message"), not our encoder.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LunkitRuntime } from '../../src/daemon/runtime.js';
import { parseConfig } from '../../src/daemon/config.js';
import { makeTestCerts } from '../integration/nbd/tls-certs.js';

const run = promisify(execFile);
// About 40 s in all (STYLE.md §18); LUNKIT_FUZZ_MS changes it.
const TIME_LIMIT_MS = Number(process.env.LUNKIT_FUZZ_MS ?? 40_000);
let rt: LunkitRuntime;
let port: number;
let dir: string;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => {
  unhandled.push(e);
};

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const CLIENT_FLAGS = hex('00000003');
const MAGIC = '49484156454f5054';

/** Option request: IHAVEOPT, option, length, data. */
function opt(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = hex(`${MAGIC} ${option.toString(16).padStart(8, '0')} ${data.length.toString(16).padStart(8, '0')}`);
  return Buffer.concat([h, data]);
}

const NAME_DISK = hex('00000004 6469736b'); // length 4, "disk"
const GO_DISK = opt(7, Buffer.concat([NAME_DISK, hex('0001 0003')]));
const optionSeeds = [
  opt(3),
  opt(6, Buffer.concat([NAME_DISK, hex('0002 0001 0002')])),
  GO_DISK,
  opt(8),
  opt(11),
  opt(9, Buffer.concat([NAME_DISK, hex('00000001 00000005'), Buffer.from('base:')])),
  opt(10, Buffer.concat([NAME_DISK, hex('00000001 0000000f'), Buffer.from('base:allocation')])),
  opt(1, Buffer.from('disk')),
  opt(5),
  opt(2),
];

/** Compact request: magic, flags, type, cookie, offset, 32-bit length. */
function req(flags: number, type: number, offset: number, length: number): Buffer {
  const b = hex('25609513');
  const rest = Buffer.alloc(24);
  rest.writeUInt16BE(flags, 0);
  rest.writeUInt16BE(type, 2);
  rest.writeBigUInt64BE(0x1234n, 4);
  rest.writeBigUInt64BE(BigInt(offset), 12);
  rest.writeUInt32BE(length, 20);
  return Buffer.concat([b, rest]);
}

/** Extended request: magic 21e41c71, 64-bit length. */
function extReq(flags: number, type: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(0x21e41c71, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(0x5678n, 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeBigUInt64BE(BigInt(length), 24);
  return b;
}

const requestSeeds = [
  req(0, 0, 0, 4096),
  Buffer.concat([req(1, 1, 4096, 512), Buffer.alloc(512, 7)]),
  req(0, 3, 0, 0),
  req(1, 4, 0, 65536),
  req(0x12, 6, 8192, 65536),
  req(0, 5, 0, 4096),
  req(8, 7, 0, 1 << 20),
  req(4, 0, 512, 512),
  extReq(0, 0, 0, 4096),
  Buffer.concat([extReq(0x20, 1, 0, 512), Buffer.alloc(512, 9)]),
  extReq(0, 7, 0, 1 << 24),
];

function mutate(seeds: Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
    )
    .map(([seed, edits, cut]) => {
      const b = Buffer.from(seed);
      for (const [pos, val] of edits) b[pos % b.length] = val;
      // Sometimes a truncated message: the server must wait, not misparse.
      return cut === undefined ? b : b.subarray(0, 1 + (cut % b.length));
    });
}

const randomBytes = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a));

async function openSocket(): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host: '127.0.0.1', port }, () => res(s));
    s.on('error', () => {});
    s.once('error', rej);
  });
}

/** Writes, then waits until the peer closes or `ms` pass; never throws. */
function exchange(sock: Socket, bytes: Buffer, ms: number): Promise<void> {
  return new Promise((res) => {
    if (sock.destroyed) return res();
    const done = (): void => {
      clearTimeout(t);
      res();
    };
    const t = setTimeout(done, ms);
    sock.once('close', done);
    sock.write(bytes, () => {});
  });
}

/** Reads until `n` bytes arrived (or gives up after `ms`). */
function readBytes(sock: Socket, n: number, ms: number): Promise<Buffer> {
  return new Promise((res) => {
    let buf = Buffer.alloc(0);
    const finish = (): void => {
      clearTimeout(t);
      sock.off('data', onData);
      res(buf);
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= n) finish();
    };
    const t = setTimeout(finish, ms);
    sock.on('data', onData);
  });
}

/** The good client: nbdinfo sees the export, and a hand-driven GO + READ returns data. */
async function stillServes(): Promise<void> {
  const { stdout } = await run('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/disk`], { timeout: 15_000 });
  expect(stdout.trim()).toBe(String(16 * 1024 * 1024));
  const s = await openSocket();
  const greeting = readBytes(s, 18, 5000);
  expect((await greeting).subarray(0, 8).toString('latin1')).toBe('NBDMAGIC');
  const replies = readBytes(s, 1, 5000);
  s.write(Buffer.concat([CLIENT_FLAGS, GO_DISK]));
  expect((await replies).length).toBeGreaterThan(0);
  s.destroy();
}

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-fuzz-'));
  const certs = await makeTestCerts(dir);
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { ram: { type: 'ramdisk', size: '16M' } },
      nbd: {
        listen: ['127.0.0.1:0'],
        tls: { certFile: certs.certFile, keyFile: certs.keyFile, require: false },
        exports: { disk: { backstore: 'ram' } },
      },
    }),
  );
  port = rt.nbdAddresses()[0].port;
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await rt?.stop(1000);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fuzzing a live NBD server', () => {
  it('survives random and mutated option haggling (STARTTLS included), and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(mutate(optionSeeds), fc.constantFrom(...optionSeeds), randomBytes), { minLength: 1, maxLength: 5 }), async (msgs) => {
        const s = await openSocket();
        await exchange(s, CLIENT_FLAGS, 2);
        for (const m of msgs) await exchange(s, m, 4);
        s.destroy();
      }),
      { numRuns: 2000, interruptAfterTimeLimit: TIME_LIMIT_MS * 0.4 },
    );
    await stillServes();
    expect(unhandled).toEqual([]);
  });

  it('survives mutated requests after a real GO (compact, structured, extended), and keeps serving', async () => {
    const setups = [Buffer.alloc(0), opt(8), opt(11)];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...setups),
        fc.array(fc.oneof(mutate(requestSeeds), fc.constantFrom(...requestSeeds), randomBytes), { minLength: 1, maxLength: 6 }),
        async (setup, msgs) => {
          const s = await openSocket();
          await exchange(s, Buffer.concat([CLIENT_FLAGS, setup, GO_DISK]), 15);
          for (const m of msgs) await exchange(s, m, 4);
          s.destroy();
        },
      ),
      { numRuns: 2000, interruptAfterTimeLimit: TIME_LIMIT_MS * 0.6 },
    );
    await stillServes();
    expect(unhandled).toEqual([]);
  });
});
