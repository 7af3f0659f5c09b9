// Time-boxed fuzz (fast-check) of a live lunkit iSCSI target: random bytes,
// and valid PDUs with mutated bytes, before and after a real login. Whatever
// arrives, the target must not crash and must keep serving other sessions
// (checked with libiscsi's iscsi-inq while and after the fuzzer runs).
//
// Seed PDUs are built by hand here (RFC 7143 §11), not by our encoder.

import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LunkitRuntime } from '../../src/daemon/runtime.js';
import { parseConfig } from '../../src/daemon/config.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.lunkit:fuzz';
// About a minute in CI (STYLE.md §18); LUNKIT_FUZZ_MS shortens it locally.
const TIME_LIMIT_MS = Number(process.env.LUNKIT_FUZZ_MS ?? 60_000);
let rt: LunkitRuntime;
let port: number;

function pad4(b: Buffer): Buffer {
  const p = (4 - (b.length % 4)) % 4;
  return p ? Buffer.concat([b, Buffer.alloc(p)]) : b;
}

function bhs(fill: (b: Buffer) => void, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(48);
  fill(b);
  b.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([b, pad4(data)]);
}

function loginPdu(initiator: string): Buffer {
  const keys = Buffer.from(`InitiatorName=${initiator}\0TargetName=${IQN}\0SessionType=Normal\0HeaderDigest=None\0DataDigest=None\0`);
  return bhs((b) => {
    b[0] = 0x43; // I + Login Request
    b[1] = 0x87; // T, CSG=1 (operational), NSG=3 (full feature)
    b.writeUIntBE(0x23d000000001 + Math.floor(Math.random() * 1000), 8, 6); // ISID
    b.writeUInt32BE(1, 16); // ITT
    b.writeUInt32BE(1, 24); // CmdSN
  }, keys);
}

function scsiReadPdu(cmdSN: number): Buffer {
  return bhs((b) => {
    b[0] = 0x01;
    b[1] = 0x80 | 0x40 | 0x01; // F, R, SIMPLE
    b.writeUInt32BE(7, 16); // ITT
    b.writeUInt32BE(512, 20); // EDTL
    b.writeUInt32BE(cmdSN, 24);
    b[32] = 0x28; // READ(10)
    b[39] = 1; // 1 block
  });
}

function nopOutPdu(cmdSN: number): Buffer {
  return bhs((b) => {
    b[0] = 0x40;
    b[1] = 0x80;
    b.writeUInt32BE(9, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(cmdSN, 24);
  });
}

function textPdu(cmdSN: number): Buffer {
  return bhs((b) => {
    b[0] = 0x04;
    b[1] = 0x80;
    b.writeUInt32BE(11, 16);
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(cmdSN, 24);
  }, Buffer.from('SendTargets=All\0'));
}

/** Writes, then waits until the peer closes or `ms` pass; never throws. */
function exchange(sock: Socket, bytes: Buffer, ms: number): Promise<void> {
  return new Promise((res) => {
    const done = (): void => {
      clearTimeout(t);
      res();
    };
    const t = setTimeout(done, ms);
    sock.once('close', done);
    sock.write(bytes, () => {});
  });
}

async function openSocket(): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host: '127.0.0.1', port }, () => res(s));
    s.on('error', () => {});
    s.once('error', rej);
  });
}

const seeds = [loginPdu('iqn.2026-11.io.lunkit:fuzzer'), scsiReadPdu(2), nopOutPdu(2), textPdu(2)];

const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
  )
  .map(([seed, edits]) => {
    const b = Buffer.from(seed);
    for (const [pos, val] of edits) b[pos % b.length] = val;
    return b;
  });

const randomBytes = fc.uint8Array({ minLength: 1, maxLength: 600 }).map((a) => Buffer.from(a));

beforeAll(async () => {
  const cfg = parseConfig({
    backstores: { ram: { type: 'ramdisk', size: '16M' } },
    iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'ram' }, attributes: { generateNodeAcls: true, loginTimeout: 2 } } } } } },
  });
  rt = await LunkitRuntime.start(cfg);
  port = rt.addresses()[0].port;
});

afterAll(async () => {
  await rt?.stop(1000);
});

describe('fuzzing a live iSCSI target', () => {
  it('survives random and mutated PDUs before login, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(randomBytes, mutated), async (bytes) => {
        const s = await openSocket();
        await exchange(s, bytes, 20);
        s.destroy();
      }),
      { numRuns: 400, interruptAfterTimeLimit: TIME_LIMIT_MS / 2 },
    );
    const inq = await run('iscsi-inq', [`iscsi://127.0.0.1:${port}/${IQN}/0`], { timeout: 15_000 });
    expect(inq.stdout).toMatch(/LUNKIT/);
  });

  it('survives mutated PDUs inside a logged-in session, and keeps serving', async () => {
    let cmdSN = 2;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(mutated, randomBytes, fc.constantFrom(...seeds.slice(1))), { minLength: 1, maxLength: 4 }), async (pdus) => {
        const s = await openSocket();
        await exchange(s, loginPdu('iqn.2026-11.io.lunkit:fuzzer2'), 30);
        for (const p of pdus) {
          if (s.destroyed) break;
          await exchange(s, p, 5);
        }
        await exchange(s, scsiReadPdu(cmdSN++), 10);
        s.destroy();
      }),
      { numRuns: 300, interruptAfterTimeLimit: TIME_LIMIT_MS / 2 },
    );
    const inq = await run('iscsi-inq', [`iscsi://127.0.0.1:${port}/${IQN}/0`], { timeout: 15_000 });
    expect(inq.stdout).toMatch(/LUNKIT/);
    const ls = await run('iscsi-ls', ['-s', `iscsi://127.0.0.1:${port}/`], { timeout: 15_000 });
    expect(ls.stdout).toContain(IQN);
  });
});
