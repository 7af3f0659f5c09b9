// ERL 2 connection recovery through `lunkit attach iscsi://... --connections 4
// --erl 2` (issue 7 through issue 5): lunkit's own target (in this process)
// drops one of the session's connections about every second while a
// write/verify workload runs through the FUSE file (direct_io: every read
// goes to the remote LUN, none comes from the page cache). Programs using the file
// must see no I/O error and no wrong byte; the session keeps its TSIH (no
// reinstatement) and `lunkit sessions --initiator --json` shows the
// connection recoveries, which the holder records on the session's
// 'recovery' events. Needs root, /dev/fuse and a build (npm run build).

import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { IscsiTargetServer } from '../../../src/fabrics/iscsi/server.js';
import { DEFAULT_TPG_ATTRIBUTES } from '../../../src/fabrics/iscsi/config.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';
import { holderPids, killHoldersAndFuseMounts, mountsUnder, run, waitFor, type Ran } from './helpers.js';

const IQN = 'iqn.2024-01.org.lunkit.test:attach-iscsi-recovery';
const MiB = 1024 * 1024;
const LUN_SIZE = 64 * MiB;
const WORKERS = 4;
const REGION = 8 * MiB; // each worker writes and verifies its own region: no overlap, no ordering question
const WORKLOAD_MS = 12_000;
const CUT_EVERY_MS = 1000;

let base = '';
let runDir = '';
let server: IscsiTargetServer;
let store: RamdiskBackstore;
let port = 0;

const lunkit = (args: string[]): Promise<Ran> => run(process.execPath, [LUNKIT_BIN, ...args], { ...process.env, LUNKIT_RUN_DIR: runDir }, 30_000);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Held {
  tsih: number;
  erl: number;
  reinstatements: number;
  connectionRecoveries: number;
  connections: Array<{ cid: number; state?: string; local?: string; remote: string }>;
  file: string;
}

async function held(): Promise<Held[]> {
  const r = await lunkit(['sessions', '--initiator', '--json']);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { sessions: Held[] }).sessions;
}

const normalSessions = (): ReturnType<IscsiTargetServer['sessionObjects']> => server.sessionObjects().filter((s) => s.info().type === 'normal');

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-attach-iscsi-erl2-'));
  runDir = join(base, 'run');
  const core = new ScsiCore();
  store = new RamdiskBackstore({ name: 'ram0', size: LUN_SIZE, blockSize: 512 });
  server = new IscsiTargetServer(core);
  await server.addTarget({
    iqn: IQN,
    tpgs: [
      {
        tag: 1,
        enabled: true,
        portals: [{ host: '127.0.0.1', port: 0 }],
        luns: [{ lun: 0, device: core.createDevice(store, { name: 'ram0' }) }],
        acls: [],
        attributes: { ...DEFAULT_TPG_ATTRIBUTES, generateNodeAcls: true },
        parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2', DefaultTime2Wait: '0' },
      },
    ],
  });
  await server.listen();
  port = server.addresses()[0].port;
});

afterAll(async () => {
  // Only the holders of this test's run directory, by PID.
  await killHoldersAndFuseMounts(runDir, base);
  await server?.close({ graceMs: 0 });
  await store?.close();
  await rm(base, { recursive: true, force: true });
}, 30_000);

describe('lunkit attach iscsi:// at ERL 2', () => {
  it('survives target-side connection drops every second: no I/O error, data intact, same TSIH', async () => {
    const r = await lunkit(['attach', `iscsi://127.0.0.1:${port}/${IQN}/0`, '--connections', '4', '--erl', '2', '--direct-io', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const att = JSON.parse(r.stdout) as { file: string; pid: number };

    const before = await held();
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ erl: 2, reinstatements: 0, connectionRecoveries: 0 });
    expect(before[0].connections).toHaveLength(4);
    const tsih = before[0].tsih;
    expect(normalSessions().map((s) => s.info().tsih)).toEqual([tsih]);

    // Cut one connection of the session from the target side (socket destroyed, no Logout) about every second.
    let cuts = 0;
    const cutter = setInterval(() => {
      const conns = [...(normalSessions()[0]?.connections ?? [])].filter((c) => c.fullFeature !== undefined);
      if (conns.length < 2) return; // let recovery bring the session back first
      conns[randomInt(conns.length)].destroy('test: connection cut');
      cuts++;
    }, CUT_EVERY_MS);

    const shadow = Buffer.alloc(WORKERS * REGION);
    const errors: unknown[] = [];
    let rounds = 0;
    const fh = await open(att.file, 'r+');
    try {
      const deadline = Date.now() + WORKLOAD_MS;
      await Promise.all(
        Array.from({ length: WORKERS }, async (_, w) => {
          while (Date.now() < deadline && errors.length === 0) {
            const len = 4096 * randomInt(1, 65);
            const off = w * REGION + 4096 * randomInt(0, (REGION - len) / 4096 + 1);
            const data = randomBytes(len);
            try {
              const wr = await fh.write(data, 0, len, off);
              expect(wr.bytesWritten).toBe(len);
              data.copy(shadow, off);
              const back = Buffer.alloc(len);
              const rd = await fh.read(back, 0, len, off);
              expect(rd.bytesRead).toBe(len);
              expect(sha(back)).toBe(sha(data));
              rounds++;
            } catch (e) {
              errors.push(e);
            }
          }
        }),
      );
      clearInterval(cutter);
      expect(errors).toEqual([]);
      await fh.sync();
      // The whole area once more through the file, then on the target's LUN itself.
      const all = Buffer.alloc(shadow.length);
      await fh.read(all, 0, all.length, 0);
      expect(sha(all)).toBe(sha(shadow));
    } finally {
      clearInterval(cutter);
      await fh.close().catch(() => {});
    }
    const remote = Buffer.alloc(shadow.length);
    await store.read(remote, 0);
    expect(sha(remote)).toBe(sha(shadow));
    expect(cuts).toBeGreaterThanOrEqual(5);
    expect(rounds).toBeGreaterThan(cuts);

    // Recovery done: the same session (TSIH) on the target, back to 4 connections; the holder's record says so.
    expect(await waitFor(async () => normalSessions().length === 1 && normalSessions()[0].connections.size === 4, 10_000)).toBe(true);
    expect(normalSessions()[0].info().tsih).toBe(tsih);
    let after: Held[] = [];
    expect(
      await waitFor(async () => {
        after = await held();
        return after.length === 1 && after[0].connections.length === 4 && after[0].connections.every((c) => c.state === 'active');
      }, 10_000),
      JSON.stringify({ after, target: normalSessions().map((s) => s.info()) }),
    ).toBe(true);
    expect(after[0].tsih).toBe(tsih);
    expect(after[0].reinstatements).toBe(0);
    expect(after[0].connectionRecoveries).toBeGreaterThan(0);
    expect(after[0].connectionRecoveries).toBeLessThanOrEqual(cuts);
    const text = await lunkit(['sessions', '--initiator']);
    expect(text.stdout).toContain(`0x${tsih.toString(16).padStart(4, '0')}`);

    const d = await lunkit(['detach', att.file]);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(await waitFor(async () => !(await holderPids(runDir)).includes(att.pid), 5000)).toBe(true);
    expect(await waitFor(async () => normalSessions().length === 0, 5000)).toBe(true);
    expect(await mountsUnder(base)).toEqual([]);
  }, 60_000);
});
