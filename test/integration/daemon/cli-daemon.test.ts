// `lunkit daemon` as a process: ready line, changes over the socket seen by
// iscsi-ls (with and without the right CHAP secret), autosave, and a restart
// with --config giving back the same configuration.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLunkit, type LunkitProcess } from '../../helpers/lunkit-process.js';
import { runTool } from '../../helpers/iscsi-target.js';
import { RawRpc } from './rpc.js';

const IQN = 'iqn.2026-11.io.lunkit.test:cli';
const INI = 'iqn.2026-11.io.lunkit.test:initiator';
let dir: string;
let proc: LunkitProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-cli-daemon-'));
});

afterAll(async () => {
  await proc?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function startDaemon(extra: string[] = []): Promise<{ p: LunkitProcess; rpc: RawRpc; sock: string }> {
  const sock = join(dir, 'lunkit.sock');
  const p = await startLunkit(['daemon', '--socket', sock, '--config', join(dir, 'saved.json'), '--log-level', 'warn', ...extra], { dir });
  expect(p.stdout()).toContain(`control socket ${sock}\n`);
  return { p, rpc: await RawRpc.connect(sock), sock };
}

describe('lunkit daemon', () => {
  it('serves changes live, autosaves, and restarts from the saved file unchanged', async () => {
    const first = await startDaemon(['--autosave']);
    proc = first.p;
    const { rpc } = first;
    await rpc.ok('backstore.create', { name: 'sparse', backstore: { type: 'file', path: join(dir, 'sparse.img'), size: '16M' } });
    await rpc.ok('backstore.create', { name: 'ram', backstore: { type: 'ramdisk', size: '8M' } });
    await rpc.ok('target.create', { iqn: IQN, portals: ['127.0.0.1:0'] });
    await rpc.ok('lun.add', { iqn: IQN, tpg: 1, backstore: 'sparse' });
    await rpc.ok('lun.add', { iqn: IQN, tpg: 1, backstore: 'ram' });
    await rpc.ok('acl.add', {
      iqn: IQN,
      tpg: 1,
      initiator: INI,
      chap: { userid: 'alice', password: 'alice-secret-1' },
    });
    await rpc.ok('acl.map', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 0, tpgLun: 0 });
    await rpc.ok('acl.map', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 1, tpgLun: 1 });
    await rpc.ok('attribute.set', { iqn: IQN, tpg: 1, name: 'authentication', value: true });
    // iscsi-ls discovers first, with the same credentials.
    const last = await rpc.ok('discoveryAuth.set', { enabled: true, chap: { userid: 'alice', password: 'alice-secret-1' } });
    expect(last.revision).toBe(11);

    expect((await rpc.ok('sessions.list')).sessions).toEqual([]);
    const listening = (await rpc.ok('ping')).listening as { iscsi: Array<{ iqn: string; tpg: number; host: string; port: number }> };
    const portal = listening.iscsi.find((l) => l.iqn === IQN)!;
    expect(portal.port).toBeGreaterThan(0);
    const good = await runTool('iscsi-ls', ['-s', '-i', INI, `iscsi://alice%alice-secret-1@127.0.0.1:${portal.port}`]);
    expect(good.code, good.stdout + good.stderr + first.p.stderr()).toBe(0);
    expect(good.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:15M\)/);
    expect(good.stdout).toMatch(/Lun:1\s+Type:DIRECT_ACCESS \(Size:7M\)/);
    const bad = await runTool('iscsi-ls', ['-s', '-i', INI, `iscsi://alice%wrong-secret-1@127.0.0.1:${portal.port}`]);
    expect(bad.stdout).not.toMatch(/Lun:0/);
    const saved = JSON.parse(await readFile(join(dir, 'saved.json'), 'utf8')) as unknown;
    const live = (await rpc.ok('config.get')).config;
    expect(saved).toEqual(live);
    rpc.close();
    expect(await first.p.stop()).toBe(0);
    proc = undefined;

    const second = await startDaemon();
    proc = second.p;
    const again = await second.rpc.ok('config.get');
    expect(again.config).toEqual(live);
    expect(again.revision).toBe(1);
    second.rpc.close();
  });
});
