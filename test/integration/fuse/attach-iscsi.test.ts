// `lunkit attach iscsi://...` against lunkit's own iSCSI target (in this
// process; the FUSE holder is the real CLI's detached child): the remote LUN
// as a local file, written and read back through the file, its session
// listed by `lunkit sessions --initiator` as the target sees it (TSIH, ISID,
// ERL 2, two MC/S connections), a remote CHECK CONDITION coming back as the errno
// docs/fuse.md promises, a write-protected LUN shown read-only, and
// `lunkit detach` ending the session with a Logout and leaving nothing
// behind. Needs root, /dev/fuse and a build (npm run build).

import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import type { BackstoreOps } from '../../../src/core/types.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { IscsiTargetServer } from '../../../src/fabrics/iscsi/server.js';
import { DEFAULT_TPG_ATTRIBUTES } from '../../../src/fabrics/iscsi/config.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';
import { holderPids, killHoldersAndFuseMounts, mountsUnder, run, waitFor, type Ran } from './helpers.js';

const IQN = 'iqn.2024-01.org.lunkit.test:attach-iscsi';
const MiB = 1024 * 1024;
const BAD_READ = 1 * MiB; // reads of [1 MiB, 1 MiB + 4 KiB) fail with EIO on the target
const FULL_WRITE = 2 * MiB; // writes of [2 MiB, 2 MiB + 4 KiB) fail with ENOSPC on the target

/** A ramdisk whose backstore fails at two fixed ranges, so the target answers with sense. */
function faulty(store: RamdiskBackstore): BackstoreOps {
  const hit = (off: number, len: number, at: number): boolean => off < at + 4096 && off + len > at;
  return Object.assign(Object.create(store) as BackstoreOps, {
    read: (buf: Buffer, off: number) =>
      hit(off, buf.length, BAD_READ) ? Promise.reject(Object.assign(new Error('injected'), { code: 'EIO' })) : store.read(buf, off),
    write: (buf: Buffer, off: number) =>
      hit(off, buf.length, FULL_WRITE) ? Promise.reject(Object.assign(new Error('injected'), { code: 'ENOSPC' })) : store.write(buf, off),
  });
}

let base = '';
let runDir = '';
let server: IscsiTargetServer;
let port = 0;
const stores: RamdiskBackstore[] = [];
const logouts: Array<Record<string, unknown>> = [];

const lunkit = (args: string[]): Promise<Ran> => run(process.execPath, [LUNKIT_BIN, ...args], { ...process.env, LUNKIT_RUN_DIR: runDir }, 60_000);
const url = (lun: number): string => `iscsi://127.0.0.1:${port}/${IQN}/${lun}`;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-attach-iscsi-'));
  runDir = join(base, 'run');
  const core = new ScsiCore();
  const ram = (name: string, size: number): RamdiskBackstore => {
    const s = new RamdiskBackstore({ name, size, blockSize: 512 });
    stores.push(s);
    return s;
  };
  const luns = [
    { lun: 0, device: core.createDevice(ram('ram0', 64 * MiB), { name: 'ram0' }) },
    { lun: 1, device: core.createDevice(ram('ram1', 8 * MiB), { name: 'ram1', readOnly: true }) },
    { lun: 2, device: core.createDevice(faulty(ram('ram2', 8 * MiB)), { name: 'ram2' }) },
  ];
  server = new IscsiTargetServer(core, { logger: { info: (msg, fields) => (msg === 'iSCSI logout' ? logouts.push(fields ?? {}) : undefined) } });
  await server.addTarget({
    iqn: IQN,
    tpgs: [
      {
        tag: 1,
        enabled: true,
        portals: [{ host: '127.0.0.1', port: 0 }],
        luns,
        acls: [],
        attributes: { ...DEFAULT_TPG_ATTRIBUTES, generateNodeAcls: true },
        parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2' },
      },
    ],
  });
  await server.listen();
  port = server.addresses()[0].port;
});

afterAll(async () => {
  await killHoldersAndFuseMounts(runDir, base);
  await server?.close({ graceMs: 0 });
  for (const s of stores) await s.close();
  await rm(base, { recursive: true, force: true });
}, 60_000);

interface Held {
  target: string;
  lun: number;
  tsih: number;
  isid: string;
  erl: number;
  connections: Array<{ cid: number; local?: string; remote: string }>;
  file: string;
}

async function attach(args: string[]): Promise<{ file: string; pid: number }> {
  const r = await lunkit(['attach', ...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { file: string; pid: number };
}

async function detached(file: string, pid: number): Promise<void> {
  const before = logouts.length;
  const r = await lunkit(['detach', file]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  // SIGTERM -> flush -> Logout (RFC 7143 §11.14) before the holder exits.
  expect(logouts.length).toBeGreaterThan(before);
  expect(await waitFor(async () => server.sessions().filter((s) => s.type === 'normal').length === 0, 5000)).toBe(true);
  expect(await waitFor(async () => !(await holderPids(runDir)).includes(pid), 5000)).toBe(true);
  expect(await mountsUnder(base)).toEqual([]);
}

describe('lunkit attach iscsi://', () => {
  it('shows the LUN as a file: dd-style writes and reads, sessions --initiator, detach logs out', async () => {
    const att = await attach([url(0), '--connections', '2', '--erl', '2']);
    expect((await stat(att.file)).size).toBe(64 * MiB);

    // 16 MiB of random data at an odd offset through the file, 32 writes in flight, then read back.
    const data = randomBytes(16 * MiB);
    const fh = await open(att.file, 'r+');
    const chunk = 512 * 1024;
    await Promise.all(Array.from({ length: data.length / chunk }, (_, i) => fh.write(data, i * chunk, chunk, 3 * MiB + i * chunk)));
    await fh.sync();
    const back = Buffer.alloc(data.length);
    await fh.read(back, 0, back.length, 3 * MiB);
    await fh.close();
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // The bytes are on the target's LUN, not only in the page cache.
    const remote = Buffer.alloc(data.length);
    await stores[0].read(remote, 3 * MiB);
    expect(remote.equals(data)).toBe(true);

    const ls = await lunkit(['sessions', '--initiator', '--json']);
    expect(ls.code).toBe(0);
    const held = (JSON.parse(ls.stdout) as { sessions: Held[] }).sessions;
    expect(held).toHaveLength(1);
    const seen = server.sessions().filter((s) => s.type === 'normal');
    expect(seen).toHaveLength(1);
    expect(held[0]).toMatchObject({ target: IQN, lun: 0, tsih: seen[0].tsih, erl: 2, file: att.file });
    expect(Number.parseInt(held[0].isid, 16)).toBe(Number.parseInt(seen[0].isid.replace(/^0x/, ''), 16));
    // Two connections (MC/S), each local address as the target sees it as remote.
    expect(held[0].connections.map((c) => c.cid).sort()).toEqual(seen[0].connections.map((c) => c.cid).sort());
    expect(held[0].connections).toHaveLength(2);
    for (const c of held[0].connections) {
      const t = seen[0].connections.find((x) => x.cid === c.cid);
      expect(c.remote).toBe(`127.0.0.1:${port}`);
      expect(c.local).toBe(t?.remote);
    }
    const text = await lunkit(['sessions', '--initiator']);
    expect(text.stdout).toContain(IQN);
    expect(text.stdout).toContain(att.file);

    await detached(att.file, att.pid);
    const after = await lunkit(['sessions', '--initiator']);
    expect(after.stdout).toBe('No iSCSI sessions held by lunkit attach.\n');
  });

  it('passes the remote CHECK CONDITION back as the errno (MEDIUM ERROR -> EIO, 27/07 -> ENOSPC)', async () => {
    const att = await attach([url(2)]);
    const fh = await open(att.file, 'r+');
    try {
      // O_DIRECT is not available on FUSE without direct_io: read fresh pages, past the page cache, by offset.
      const err1 = await fh.read(Buffer.alloc(4096), 0, 4096, BAD_READ).catch((e: unknown) => e);
      expect((err1 as NodeJS.ErrnoException).code).toBe('EIO');
      const ok = await fh.read(Buffer.alloc(4096), 0, 4096, BAD_READ + 64 * 1024);
      expect(ok.bytesRead).toBe(4096);
      // The FUSE file is written through: the write itself fails (or, with a page cache, fsync would).
      const err2 = await fh
        .write(Buffer.alloc(4096, 1), 0, 4096, FULL_WRITE)
        .then(() => fh.sync())
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect((err2 as NodeJS.ErrnoException | undefined)?.code).toBe('ENOSPC');
      // Elsewhere the LUN takes writes.
      await fh.write(Buffer.alloc(4096, 2), 0, 4096, FULL_WRITE + 64 * 1024);
    } finally {
      await fh.close().catch(() => {});
    }
    await detached(att.file, att.pid);
  });

  it('a write-protected remote LUN is a read-only file', async () => {
    const att = await attach([url(1)]);
    expect((await stat(att.file)).mode & 0o222).toBe(0);
    const err = await open(att.file, 'r+').catch((e: unknown) => e);
    expect(['EROFS', 'EACCES']).toContain((err as NodeJS.ErrnoException).code);
    await detached(att.file, att.pid);
  });

  it('refuses --connections for a non-iSCSI source and a bad URL, leaving nothing', async () => {
    const r1 = await lunkit(['attach', join(base, 'x.img'), '--connections', '2']);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('ERR_ATTACH_SOURCE');
    const r2 = await lunkit(['attach', `iscsi://127.0.0.1:${port}/iqn.2024-01.org.lunkit.test:nope/0`]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('ERR_ATTACH_START');
    expect(await holderPids(runDir)).toEqual([]);
    expect(await mountsUnder(base)).toEqual([]);
  });
});
