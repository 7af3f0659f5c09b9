// Crash consistency of the daemon (issue 17): `lunkit serve` exports three
// LUNs over iSCSI -- a file backstore, an NBD backstore in front of nbdkit
// (file plugin; nbdkit is not killed) and a qcow2 image -- and one session
// drives WRITE(16), WRITE(16) with FUA and SYNCHRONIZE CACHE(16) on all three
// at once, journaling what was acknowledged. The daemon is SIGKILLed (by
// PID) at a seeded random moment, `qemu-img check` looks at the qcow2 image,
// the daemon is started again on the same configuration, and every write
// acknowledged with FUA, or acknowledged before a SYNCHRONIZE CACHE of its
// LUN that started after it and completed, must read back through the
// restarted daemon -- unless an overlapping write that could have landed
// after it exists. The restarted daemon serves the next cycle.
//
// 10 cycles here; scripts/crash-campaign.sh runs 100 (LUNKIT_CRASH_CYCLES).
// LUNKIT_CRASH_SEED repeats a run; a failure names its seed. Needs the build
// (dist/: npx tsc -p tsconfig.build.json) and nbdkit, qemu-img.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUrl, read16, synchronizeCache16, testUnitReady, write16, type IscsiSession } from '../../src/initiator/index.js';
import { LUNKIT_BIN, ROOT } from '../helpers/lunkit-process.js';
import { freePort } from '../helpers/daemon-process.js';
import { rng } from '../unit/qcow2/helpers.js';

const CYCLES = Number(process.env.LUNKIT_CRASH_CYCLES ?? 10);
const SEED = Number(process.env.LUNKIT_CRASH_SEED ?? Date.now() % 1_000_000);
const IQN = 'iqn.2026-12.io.lunkit:crash';
const SIZE = 8 << 20;
const BS = 512;
/** Commands in flight per LUN. */
const QUEUE_DEPTH = 8;
/** LUN number -> what backs it. */
const LUNS = ['file', 'nbd', 'qcow2'] as const;

let dir = '';
const children = new Set<ChildProcess>();

beforeAll(() => {
  const built = path.join(ROOT, 'dist', 'cli', 'index.js');
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run npx tsc -p tsconfig.build.json first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-crash-'));
});

afterAll(() => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function tool(cmd: string, args: string[]): { status: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Spawns a long-running child and resolves once `ready(output)` holds. */
async function startChild(cmd: string, args: string[], ready: (out: string) => boolean, what: string): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 20_000;
  while (!ready(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`${what} not ready in 20 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return child;
}

function killByPid(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    children.delete(child);
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    process.kill(child.pid!, 'SIGKILL');
  });
}

/** The data of write `id`: each block starts with (id, block index) and is filled with a byte of id. */
function payload(id: number, blocks: number): Buffer {
  const b = Buffer.alloc(blocks * BS, (id % 251) + 1);
  for (let s = 0; s < blocks; s++) {
    b.writeUInt32LE(id, s * BS);
    b.writeUInt32LE(s, s * BS + 4);
  }
  return b;
}

interface WriteRecord {
  id: number;
  lba: number;
  blocks: number;
  fua: boolean;
  /** Event numbers (one counter for every start and acknowledgement). */
  startedAt: number;
  ackedAt?: number;
}

interface Journal {
  writes: WriteRecord[];
  /** SYNCHRONIZE CACHEs that completed GOOD: [started, acknowledged]. */
  syncs: Array<[number, number]>;
}

const clock = { event: 0, id: 0 };

/** Writes, FUA writes and SYNCHRONIZE CACHE on one LUN, QUEUE_DEPTH in flight, until the connection dies. */
async function workload(session: IscsiSession, lun: number, r: () => number, journal: Journal): Promise<void> {
  let dead = false;
  const inFlight = new Set<Promise<void>>();
  const total = SIZE / BS;
  while (!dead) {
    while (inFlight.size < QUEUE_DEPTH && !dead) {
      let p: Promise<void>;
      if (r() < 0.08) {
        const startedAt = ++clock.event;
        p = synchronizeCache16(session, lun).then(
          (res) => {
            if (res.ok) journal.syncs.push([startedAt, ++clock.event]);
            else dead = true;
          },
          () => void (dead = true),
        );
      } else {
        const blocks = 1 + Math.floor(r() * (r() < 0.1 ? 256 : 24));
        const w: WriteRecord = { id: ++clock.id, lba: Math.floor(r() * (total - blocks)), blocks, fua: r() < 0.1, startedAt: ++clock.event };
        journal.writes.push(w);
        p = write16(session, lun, w.lba, payload(w.id, blocks), { blockSize: BS, fua: w.fua }).then(
          (res) => {
            if (res.ok) w.ackedAt = ++clock.event;
            else dead = true;
          },
          () => void (dead = true),
        );
      }
      const tracked: Promise<void> = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    }
    await Promise.race(inFlight);
  }
  await Promise.allSettled(inFlight);
}

/** Reads the whole LUN through the daemon. */
async function readLun(session: IscsiSession, lun: number): Promise<Buffer> {
  const out = Buffer.alloc(SIZE);
  const chunk = 256;
  for (let lba = 0; lba < SIZE / BS; lba += chunk) {
    const res = await read16(session, lun, lba, chunk, { blockSize: BS, into: out.subarray(lba * BS) });
    if (!res.ok) throw new Error(`read of LUN ${lun} at ${lba} failed: status ${res.status}`);
  }
  return out;
}

/**
 * The writes that must read back: FUA, or acknowledged before a SYNCHRONIZE
 * CACHE that started later and completed. One that an overlapping write may
 * have overwritten (a later one, or one in flight when it started) is not
 * checked. Returns [durable, checked, lost] counts; `lost` lists the failures.
 */
function verify(journal: Journal, content: Buffer): { durable: number; checked: number; lost: string[] } {
  let durable = 0;
  let checked = 0;
  const lost: string[] = [];
  for (const w of journal.writes) {
    if (w.ackedAt === undefined) continue;
    const acked = w.ackedAt;
    if (!(w.fua || journal.syncs.some(([start]) => start > acked))) continue;
    durable++;
    const end = w.lba + w.blocks;
    const clobbered = journal.writes.some((o) => o !== w && o.lba < end && w.lba < o.lba + o.blocks && (o.id > w.id || (o.ackedAt ?? Infinity) > w.startedAt));
    if (clobbered) continue;
    checked++;
    const got = content.subarray(w.lba * BS, end * BS);
    const want = payload(w.id, w.blocks);
    if (!got.equals(want)) {
      const bad = [...Array(w.blocks).keys()].find((s) => !got.subarray(s * BS, (s + 1) * BS).equals(want.subarray(s * BS, (s + 1) * BS))) ?? 0;
      const found = got.subarray(bad * BS);
      lost.push(`write ${w.id} (LBA ${w.lba}+${w.blocks}${w.fua ? ', FUA' : ''}): block ${bad} reads as write ${found.readUInt32LE(0)} block ${found.readUInt32LE(4)}`);
    }
  }
  return { durable, checked, lost };
}

async function login(port: number): Promise<IscsiSession> {
  const { session } = await openUrl(`iscsi://127.0.0.1:${port}/${IQN}/0`, { env: {} });
  // Every LUN's POWER ON unit attention, so the workload's first command is not answered with it.
  for (let lun = 0; lun < LUNS.length; lun++) for (let i = 0; i < 4 && !(await testUnitReady(session, lun)).ok; i++);
  return session;
}

describe('SIGKILL during writes, FUA writes and SYNCHRONIZE CACHE (file, nbd, qcow2)', () => {
  it(`${CYCLES} kills: every write acknowledged as durable reads back after a restart`, async () => {
    const nbdImg = path.join(dir, 'nbd-backing.img');
    const nbdSock = path.join(dir, 'nbdkit.sock');
    const qcow2 = path.join(dir, 'disk.qcow2');
    const config = path.join(dir, 'lunkit.json');
    fs.writeFileSync(nbdImg, '');
    fs.truncateSync(nbdImg, SIZE);
    expect(tool('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', qcow2, String(SIZE)]).status).toBe(0);
    // nbdkit stays up across the kills: what lunkit's NBD client sent it is on its side.
    await startChild('nbdkit', ['-f', '--exit-with-parent', '-U', nbdSock, 'file', nbdImg], () => fs.existsSync(nbdSock), 'nbdkit');
    const port = await freePort();
    fs.writeFileSync(
      config,
      JSON.stringify({
        backstores: {
          file: { type: 'file', path: path.join(dir, 'file.img'), size: SIZE },
          nbd: { type: 'nbd', url: `nbd+unix:///?socket=${nbdSock}` },
          qcow2: { type: 'qcow2', path: qcow2 },
        },
        iscsi: {
          targets: { [IQN]: { tpgs: { '1': { portals: [`127.0.0.1:${port}`], luns: Object.fromEntries(LUNS.map((n, i) => [String(i), n])), attributes: { generateNodeAcls: true } } } } },
        },
      }),
    );
    const serve = (): Promise<ChildProcess> => startChild(process.execPath, [LUNKIT_BIN, 'serve', '--config', config, '--log-level', 'warn'], (out) => /^ready$/m.test(out), 'lunkit serve');

    const totals = LUNS.map(() => ({ durable: 0, checked: 0, lost: 0 }));
    const lostAll: string[] = [];
    let cycles = 0;
    let daemon = await serve();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const seed = SEED * 1000 + cycle;
      const r = rng(seed);
      const session = await login(port);
      const journals: Journal[] = LUNS.map(() => ({ writes: [], syncs: [] }));
      const killAfter = 100 + Math.floor(r() * 500);
      const runs = LUNS.map((_, lun) => workload(session, lun, rng(seed * 7 + lun), journals[lun]));
      await new Promise((res) => setTimeout(res, killAfter));
      await killByPid(daemon);
      await Promise.all(runs);
      await session.logout(1000).catch(() => undefined);
      const context = `seed ${seed} (LUNKIT_CRASH_SEED=${SEED}, cycle ${cycle}, killed after ${killAfter} ms)`;

      const check = tool('qemu-img', ['check', '--output=json', qcow2]);
      expect(check.out, `${context}: ${check.out}`).not.toMatch(/ERROR/);
      expect([0, 3], `${context}: ${check.out}`).toContain(check.status); // 3: leaked clusters only

      daemon = await serve();
      const reader = await login(port);
      try {
        for (let lun = 0; lun < LUNS.length; lun++) {
          const got = verify(journals[lun], await readLun(reader, lun));
          totals[lun].durable += got.durable;
          totals[lun].checked += got.checked;
          totals[lun].lost += got.lost.length;
          lostAll.push(...got.lost.map((l) => `${context}, ${LUNS[lun]}: ${l}`));
        }
      } finally {
        await reader.logout().catch(() => undefined);
      }
      cycles++;
    }
    await killByPid(daemon);
    const table = LUNS.map((n, i) => `${n}: ${totals[i].durable} durable, ${totals[i].checked} checked, ${totals[i].lost} lost`).join('; ');
    console.log(`crash consistency: ${cycles} cycles, seed ${SEED}: ${table}`);
    expect(lostAll, lostAll.slice(0, 10).join('\n')).toEqual([]);
    expect(cycles).toBe(CYCLES);
    // Every backstore had acknowledged-durable writes checked byte for byte (not every cycle has one per LUN).
    for (let i = 0; i < LUNS.length; i++) expect(totals[i].checked, `${LUNS[i]}, seed ${SEED}`).toBeGreaterThan(0);
  }, Math.max(120_000, CYCLES * 20_000));
});
