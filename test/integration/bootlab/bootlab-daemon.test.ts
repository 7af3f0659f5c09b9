// Boot labs on a live daemon (in-process, 127.0.0.1): create, clients with
// overlays of the golden image reached by their own initiator name only,
// scripts over HTTP, reset, golden swap, reset on boot, invalid input that
// changes nothing, and save/restore of the section.

import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LunkitDaemon } from '../../../src/daemon/daemon.js';
import type { RequestContext } from '../../../src/daemon/control-server.js';
import { IscsiSession, read16, write16 } from '../../../src/initiator/index.js';
import { clientInitiatorIqn, labTargetIqn } from '../../../src/bootlab/names.js';
import { freePort } from '../../helpers/daemon-process.js';

const ctx = { id: 1, progress: () => {}, connection: { notify: () => true, onClose: () => {} } } as unknown as RequestContext;
let dir: string;
let daemon: LunkitDaemon;
let ports: { http: number; tftp: number; iscsi: number };
const GOLDEN_SIZE = 32 * 1024 * 1024;

/** A recognisable golden image: every 512-byte sector starts with its number and the label. */
async function makeGolden(path: string, label: string): Promise<void> {
  const buf = Buffer.alloc(GOLDEN_SIZE);
  for (let s = 0; s < GOLDEN_SIZE / 512; s++) buf.write(`${label}:${s}`, s * 512);
  await writeFile(path, buf);
}

async function call(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  return (await daemon.handle(method, params, ctx)) as Record<string, unknown>;
}

async function failure(method: string, params: Record<string, unknown>): Promise<{ code: string; message: string }> {
  try {
    await call(method, params);
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error(`${method} succeeded`);
}

async function login(lab: string, client: string): Promise<IscsiSession> {
  return IscsiSession.open({ host: '127.0.0.1', port: ports.iscsi, targetName: labTargetIqn(lab), initiatorName: clientInitiatorIqn(lab, client), keepaliveIntervalMs: 0 });
}

/** READ(16) of one block, through the unit attentions a new session or LUN change brings. */
async function rd(s: IscsiSession, lba: number, blocks = 1): Promise<Buffer> {
  for (let i = 0; i < 4; i++) {
    const r = await read16(s, 0, lba, blocks, { blockSize: 512 });
    if (r.ok) return r.value;
    if (r.sense?.key !== 6) throw new Error(`READ failed: status ${r.status} ${r.sense?.keyName} asc ${r.sense?.asc}/${r.sense?.ascq}`);
  }
  throw new Error('READ: unit attentions did not stop');
}

async function wr(s: IscsiSession, lba: number, data: Buffer): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const r = await write16(s, 0, lba, data, { blockSize: 512 });
    if (r.ok) return;
    if (r.sense?.key !== 6) throw new Error(`WRITE failed: status ${r.status} ${r.sense?.keyName} asc ${r.sense?.asc}/${r.sense?.ascq}`);
  }
  throw new Error('WRITE: unit attentions did not stop');
}

async function script(mac: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${ports.http}/boot/${mac}.ipxe`);
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-bootlab-'));
  await makeGolden(join(dir, 'golden1.img'), 'G1');
  await makeGolden(join(dir, 'golden2.img'), 'G2');
  ports = { http: await freePort(), tftp: await freePort(), iscsi: await freePort() };
  daemon = await LunkitDaemon.start({ socketPath: join(dir, 's.sock'), configFile: join(dir, 'config.json'), autosave: true });
});

afterAll(async () => {
  await daemon?.stop(0);
  await rm(dir, { recursive: true, force: true });
});

describe('bootlab on a live daemon', () => {
  it('creates a lab whose services answer', async () => {
    const res = await call('bootlab.create', { name: 'lab1', golden: join(dir, 'golden1.img'), listen: '127.0.0.1', ports, dir: join(dir, 'lab1') });
    expect(res).toMatchObject({ name: 'lab1', goldenFormat: 'raw' });
    const def = await fetch(`http://127.0.0.1:${ports.http}/boot/default.ipxe`).then((r) => r.text());
    expect(def).toMatch(/^#!ipxe\nchain http:\/\/127\.0\.0\.1:\d+\/boot\/\$\{netX\/mac\}\.ipxe/);
    const unknown = await script('52-54-00-00-00-99');
    expect(unknown.status).toBe(200);
    expect(unknown.body).toContain('52:54:00:00:00:99 is not registered'.replace('52:54:00:00:00:99 is', '52:54:00:00:00:99) is'));
    expect(unknown.body).toContain('lunkit bootlab client add lab1 52:54:00:00:00:99');
    expect((await script('zz')).status).toBe(400);
  });

  it('gives each client its own overlay, reachable by its own initiator name only', async () => {
    await call('bootlab.client.add', { lab: 'lab1', mac: '52:54:00:12:34:56', name: 'pc01' });
    await call('bootlab.client.add', { lab: 'lab1', mac: '52-54-00-12-34-57' });
    const s = await script('52:54:00:12:34:56');
    expect(s.body).toContain(`set initiator-iqn ${clientInitiatorIqn('lab1', 'pc01')}`);
    expect(s.body).toContain(`sanboot iscsi:127.0.0.1::${ports.iscsi}:0:${labTargetIqn('lab1')}`);

    const a = await login('lab1', 'pc01');
    const before = await rd(a, 0);
    expect(before.toString('latin1', 0, 4)).toBe('G1:0');
    await wr(a, 0, Buffer.alloc(512, 0x41));
    const b = await login('lab1', '52-54-00-12-34-57');
    expect((await rd(b, 0, 1)).toString('latin1', 0, 4)).toBe('G1:0');
    await b.logout();
    // An initiator name with no ACL is refused at login.
    await expect(IscsiSession.open({ host: '127.0.0.1', port: ports.iscsi, targetName: labTargetIqn('lab1'), initiatorName: 'iqn.2026-11.io.lunkit.test:stranger', keepaliveIntervalMs: 0 })).rejects.toThrow();

    // A logged-in client is not reset without force; the golden image is untouched.
    expect((await failure('bootlab.client.reset', { lab: 'lab1', client: 'pc01' })).code).toBe('ERR_IN_USE');
    await a.logout();
    const g = await readFile(join(dir, 'golden1.img'));
    expect(g.toString('latin1', 0, 4)).toBe('G1:0');
    const st = (await call('bootlab.status', { name: 'lab1' })).lab as { clients: Array<{ name: string; loggedIn: boolean; deltaBytes: number; lastBoot: unknown }> };
    const pc01 = st.clients.find((c) => c.name === 'pc01')!;
    expect(pc01.loggedIn).toBe(false);
    expect(pc01.deltaBytes).toBeGreaterThan(0);
    expect(pc01.lastBoot).not.toBeNull();
  });

  it('reset brings back the golden image in a new overlay file', async () => {
    const r = await call('bootlab.client.reset', { lab: 'lab1', client: 'pc01' });
    expect(r.reset).toBe(true);
    await expect(stat(join(dir, 'lab1', 'pc01.0.qcow2'))).rejects.toThrow();
    const a = await login('lab1', 'pc01');
    expect((await rd(a, 0, 1)).toString('latin1', 0, 4)).toBe('G1:0');
    await wr(a, 1, Buffer.alloc(512, 0x42));
    await a.logout();
    execFileSync('qemu-img', ['check', join(dir, 'lab1', 'pc01.1.qcow2')]);
  });

  it('swaps the golden image: running clients keep theirs, new and reset ones get the new one', async () => {
    const old = await login('lab1', 'pc01');
    const res = await call('bootlab.golden', { name: 'lab1', path: join(dir, 'golden2.img') });
    expect(res.stillOnPrevious).toEqual(['pc01', '52-54-00-12-34-57']);
    expect((await rd(old, 0, 2)).toString('latin1', 512, 516)).toBe('BBBB');
    expect((await rd(old, 5, 1)).toString('latin1', 0, 4)).toBe('G1:5');
    await old.logout();
    await call('bootlab.client.add', { lab: 'lab1', mac: '52:54:00:12:34:58', name: 'pc03' });
    const n = await login('lab1', 'pc03');
    expect((await rd(n, 0, 1)).toString('latin1', 0, 4)).toBe('G2:0');
    await n.logout();
    const st = (await call('bootlab.status', { name: 'lab1' })).lab as { goldens: Array<{ path: string; current: boolean; clients: string[] }> };
    expect(st.goldens).toEqual([
      { path: join(dir, 'golden2.img'), current: true, clients: ['pc03'] },
      { path: join(dir, 'golden1.img'), current: false, clients: ['pc01', '52-54-00-12-34-57'] },
    ]);
  });

  it('resets a reset-on-boot client when it asks for its script while logged out', async () => {
    // A file left by an earlier lab under the first overlay name is never served as the new client's disk.
    await writeFile(join(dir, 'lab1', 'kiosk.0.qcow2'), 'stale');
    const added = await call('bootlab.client.add', { lab: 'lab1', mac: '52:54:00:12:34:59', name: 'kiosk', resetOnBoot: true });
    expect(added.overlay).toBe(join(dir, 'lab1', 'kiosk.1.qcow2'));
    const a = await login('lab1', 'kiosk');
    await wr(a, 0, Buffer.alloc(512, 0x43));
    // Logged in: the script does not reset it.
    await script('52:54:00:12:34:59');
    expect((await rd(a, 0, 1)).toString('latin1', 0, 4)).toBe('CCCC');
    await a.logout();
    await script('52:54:00:12:34:59');
    const b = await login('lab1', 'kiosk');
    expect((await rd(b, 0, 1)).toString('latin1', 0, 4)).toBe('G2:0');
    await b.logout();
  });

  it('refuses invalid input with a clear error and changes nothing', async () => {
    const rev = daemon.currentRevision;
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['bootlab.client.add', { lab: 'nolab', mac: '52:54:00:00:00:01' }, 'ERR_NOT_FOUND', /no boot lab "nolab"/],
      ['bootlab.client.add', { lab: 'lab1', mac: '52:54:00:zz:00:01' }, 'ERR_INVALID_PARAMS', /not a MAC address/],
      ['bootlab.client.add', { lab: 'lab1', mac: '01:00:5e:00:00:01' }, 'ERR_INVALID_PARAMS', /not a MAC address/],
      ['bootlab.client.add', { lab: 'lab1', mac: '52:54:00:12:34:56' }, 'ERR_EXISTS', /already registered/],
      ['bootlab.client.add', { lab: 'lab1', mac: '52:54:00:12:34:60', name: 'pc01' }, 'ERR_EXISTS', /already has a client named pc01/],
      ['bootlab.create', { name: 'lab2', golden: join(dir, 'missing.img'), listen: '127.0.0.1' }, 'ERR_INVALID_PARAMS', /does not exist/],
      ['bootlab.create', { name: 'lab2', golden: dir, listen: '127.0.0.1' }, 'ERR_INVALID_PARAMS', /not a file/],
      ['bootlab.create', { name: 'lab2', golden: join(dir, 'config.json'), listen: '127.0.0.1' }, 'ERR_INVALID_PARAMS', /not a disk image/],
      ['bootlab.create', { name: 'Lab 2', golden: join(dir, 'golden1.img'), listen: '127.0.0.1' }, 'ERR_INVALID_PARAMS', /lab names/],
      ['bootlab.create', { name: 'lab1', golden: join(dir, 'golden1.img'), listen: '127.0.0.1' }, 'ERR_EXISTS', /already exists/],
      ['bootlab.golden', { name: 'lab1', path: join(dir, 'missing.img') }, 'ERR_INVALID_PARAMS', /does not exist/],
      ['bootlab.client.reset', { lab: 'lab1', client: 'nobody' }, 'ERR_NOT_FOUND', /no client "nobody"/],
    ];
    const vmdk = join(dir, 'disk.vmdk');
    await writeFile(vmdk, Buffer.concat([Buffer.from('KDMV'), Buffer.alloc(1020)]));
    cases.push(['bootlab.create', { name: 'lab2', golden: vmdk, listen: '127.0.0.1' }, 'ERR_INVALID_PARAMS', /vmdk image/]);
    for (const [m, p, code, msg] of cases) {
      const e = await failure(m, p);
      expect(e.code, `${m} ${JSON.stringify(p)}`).toBe(code);
      expect(e.message).toMatch(msg);
    }
    expect(daemon.currentRevision).toBe(rev);
  });

  it('saves and restores the section; the derived objects are not stored', async () => {
    await call('config.save', {});
    const saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { backstores: object; iscsi: { targets: object }; bootlabs: Record<string, { clients: object }> };
    expect(Object.keys(saved.backstores)).toEqual([]);
    expect(Object.keys(saved.iscsi.targets)).toEqual([]);
    expect(Object.keys(saved.bootlabs.lab1.clients)).toHaveLength(4);
    const res = await call('config.replace', { config: saved, dryRun: true });
    expect(res.dryRun).toBe(true);
  });

  it('deletes clients and the lab with their overlays', async () => {
    await call('bootlab.client.delete', { lab: 'lab1', client: 'pc03' });
    await expect(stat(join(dir, 'lab1', 'pc03.0.qcow2'))).rejects.toThrow();
    await call('bootlab.delete', { name: 'lab1' });
    await expect(stat(join(dir, 'lab1', 'pc01.1.qcow2'))).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${ports.http}/boot/default.ipxe`)).rejects.toThrow();
  });
});
