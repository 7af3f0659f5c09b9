// Live reconfiguration of a running iSCSI target (issue 3, "every change
// applies live"): IscsiTargetServer.updateTarget() against sessions of an
// independent, byte-built initiator (test/helpers/naive-iscsi.ts) and real
// libiscsi tools.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import type { ScsiDeviceHandle } from '../../../src/core/types.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { IscsiTargetServer } from '../../../src/fabrics/iscsi/server.js';
import { DEFAULT_TPG_ATTRIBUTES, type AclConfig, type IscsiTargetConfig, type TpgConfig } from '../../../src/fabrics/iscsi/config.js';
import { NaiveIscsiClient } from '../../helpers/naive-iscsi.js';
import { runTool } from '../../helpers/iscsi-target.js';

const IQN = 'iqn.2024-01.org.lunkit.test:live';
const INI_A = 'iqn.2024-01.org.lunkit.test:ini-a';
const INI_B = 'iqn.2024-01.org.lunkit.test:ini-b';
const MiB = 1024 * 1024;

/** A ramdisk whose reads wait while `gate` is set (to keep a command in flight). */
class GatedRamdisk extends RamdiskBackstore {
  gate: Promise<void> | undefined;
  override async read(buf: Buffer, offset: number): Promise<void> {
    if (this.gate) await this.gate;
    return super.read(buf, offset);
  }
}

interface Rig {
  core: ScsiCore;
  server: IscsiTargetServer;
  stores: GatedRamdisk[];
  devices: ScsiDeviceHandle[];
  port: number;
  /** The current config with the first TPG changed by `edit`. */
  tpg(edit: (t: TpgConfig) => TpgConfig): IscsiTargetConfig;
}

const rigs: Rig[] = [];
const clients: NaiveIscsiClient[] = [];
const blockers: net.Server[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const b of blockers.splice(0)) await new Promise<void>((r) => b.close(() => r()));
  for (const r of rigs.splice(0)) {
    for (const s of r.stores) s.gate = undefined;
    await r.server.close({ graceMs: 0 });
    for (const s of r.stores) await s.close();
  }
});

async function rig(opts: { luns?: number; acls?: (devs: ScsiDeviceHandle[]) => AclConfig[]; demo?: boolean; drainMs?: number } = {}): Promise<Rig> {
  const core = new ScsiCore();
  const stores: GatedRamdisk[] = [];
  const devices: ScsiDeviceHandle[] = [];
  for (let i = 0; i < (opts.luns ?? 2); i++) {
    const s = new GatedRamdisk({ name: `live${i}`, size: 4 * MiB, blockSize: 512 });
    stores.push(s);
    devices.push(core.createDevice(s, { name: `live${i}` }));
  }
  const server = new IscsiTargetServer(core, { drainMs: opts.drainMs });
  const acls = opts.acls?.(devices) ?? [];
  await server.addTarget({
    iqn: IQN,
    tpgs: [
      {
        tag: 1,
        enabled: true,
        portals: [{ host: '127.0.0.1', port: 0 }],
        luns: devices.map((device, lun) => ({ lun, device })),
        acls,
        attributes: { ...DEFAULT_TPG_ATTRIBUTES, generateNodeAcls: opts.demo ?? acls.length === 0, nopInInterval: 0 },
        parameters: {},
      },
    ],
  });
  await server.listen();
  const r: Rig = {
    core,
    server,
    stores,
    devices,
    port: server.addresses()[0].port,
    tpg(edit) {
      const cur = server.getTarget(IQN)!;
      return { ...cur, tpgs: cur.tpgs.map((t, i) => (i === 0 ? edit(structuredCloneTpg(t)) : t)) };
    },
  };
  rigs.push(r);
  return r;
}

/** Copy a TPG config (devices are kept by reference). */
function structuredCloneTpg(t: TpgConfig): TpgConfig {
  return {
    ...t,
    portals: t.portals.map((p) => ({ ...p })),
    luns: t.luns.map((l) => ({ ...l })),
    acls: t.acls.map((a) => ({ ...a, mappedLuns: a.mappedLuns.map((m) => ({ ...m })) })),
    attributes: { ...t.attributes },
    parameters: { ...t.parameters },
  };
}

async function login(port: number, initiator: string): Promise<NaiveIscsiClient> {
  const c = await NaiveIscsiClient.connect(port);
  clients.push(c);
  await c.login(initiator, IQN);
  return c;
}

interface Result {
  status: number;
  senseKey?: number;
  asc?: number;
  ascq?: number;
  data: Buffer;
  maxCmdSN: number;
  expCmdSN: number;
}

/** One command on LUN `lun`; waits for its status (SCSI Response or Data-In with S). */
async function command(c: NaiveIscsiClient, lun: number, cdb: number[], opts: { read?: number; ms?: number } = {}): Promise<Result | undefined> {
  const pdu = c.scsiCommand(cdb, { read: opts.read !== undefined, edtl: opts.read ?? 0 });
  // Flat LUN (SAM-5 §4.7.3, single level): bytes 8-9 of the BHS.
  pdu.bhs.writeUInt16BE(lun & 0x3fff, 8);
  const itt = pdu.bhs.readUInt32BE(16);
  c.send(pdu);
  const parts: Buffer[] = [];
  for (;;) {
    const r = await c.next(opts.ms ?? 3000);
    if (!r) return undefined;
    if (r.bhs.readUInt32BE(16) !== itt) continue;
    const expCmdSN = r.bhs.readUInt32BE(28);
    const maxCmdSN = r.bhs.readUInt32BE(32);
    if (r.opcode === 0x25) {
      parts.push(r.data);
      if (r.bhs[1] & 0x01) return { status: r.bhs[3], data: Buffer.concat(parts), expCmdSN, maxCmdSN };
      continue;
    }
    if (r.opcode !== 0x21) continue;
    const out: Result = { status: r.bhs[3], data: Buffer.concat(parts), expCmdSN, maxCmdSN };
    if (r.data.length >= 2) {
      const sense = r.data.subarray(2, 2 + r.data.readUInt16BE(0));
      out.senseKey = sense[2] & 0x0f;
      out.asc = sense[12];
      out.ascq = sense[13];
    }
    return out;
  }
}

const TUR = [0x00, 0, 0, 0, 0, 0];
const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0];
const READ10_1 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];

async function tur(c: NaiveIscsiClient, lun: number): Promise<Result | undefined> {
  return command(c, lun, TUR);
}

/** TUR until GOOD: clears POWER ON RESET and any other pending UA. */
async function settle(c: NaiveIscsiClient, lun: number): Promise<void> {
  for (let i = 0; i < 4; i++) if ((await tur(c, lun))?.status === 0) return;
  throw new Error(`LUN ${lun} never answered GOOD`);
}

async function reportLuns(c: NaiveIscsiClient): Promise<number[]> {
  const r = await command(c, 0, REPORT_LUNS, { read: 256 });
  expect(r?.status).toBe(0);
  const data = r!.data;
  const n = data.readUInt32BE(0) / 8;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(data.readUInt16BE(8 + i * 8) & 0x3fff);
  return out;
}

function expectUa(r: Result | undefined, asc: number, ascq: number): void {
  expect(r?.status).toBe(0x02);
  expect([r?.senseKey, r?.asc, r?.ascq]).toEqual([0x06, asc, ascq]);
}

describe('iSCSI target: LUNs changed live', () => {
  it('a LUN mapped while the session runs: UNIT ATTENTION 3Fh/0Eh, then REPORT LUNS lists it', async () => {
    const r = await rig({ acls: () => [{ initiator: INI_A, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }] }] });
    const c = await login(r.port, INI_A);
    await settle(c, 0);
    expect(await reportLuns(c)).toEqual([0]);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, acls: [{ ...t.acls[0], mappedLuns: [...t.acls[0].mappedLuns, { mappedLun: 5, tpgLun: 1, readOnly: true }] }] })));
    expectUa(await tur(c, 0), 0x3f, 0x0e);
    expect(await tur(c, 0)).toMatchObject({ status: 0 });
    expect(await reportLuns(c)).toEqual([0, 5]);
    // The new LUN answers (its own POWER ON first), and is read-only as mapped.
    await settle(c, 5);
    const wr = await command(c, 5, [0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([wr?.status, wr?.senseKey, wr?.asc]).toEqual([0x02, 0x07, 0x27]);
    expect(r.server.sessions()[0].luns).toEqual([0, 5]);
  });

  it('a LUN added to a demo-mode TPG shows up the same way', async () => {
    const r = await rig({ luns: 1 });
    const c = await login(r.port, INI_A);
    await settle(c, 0);
    const extra = new GatedRamdisk({ name: 'extra', size: 4 * MiB, blockSize: 512 });
    r.stores.push(extra);
    const dev = r.core.createDevice(extra, { name: 'extra' });
    await r.server.updateTarget(r.tpg((t) => ({ ...t, luns: [...t.luns, { lun: 3, device: dev }] })));
    expectUa(await tur(c, 0), 0x3f, 0x0e);
    expect(await reportLuns(c)).toEqual([0, 3]);
  });

  it('a LUN removed while the session runs: UA on the LUNs left, then the LUN is gone', async () => {
    const r = await rig({ luns: 2 });
    const c = await login(r.port, INI_A);
    await settle(c, 0);
    await settle(c, 1);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, luns: t.luns.filter((l) => l.lun !== 1) })));
    expectUa(await tur(c, 0), 0x3f, 0x0e);
    const gone = await tur(c, 1);
    expect([gone?.status, gone?.senseKey, gone?.asc, gone?.ascq]).toEqual([0x02, 0x05, 0x25, 0x00]);
    expect(await reportLuns(c)).toEqual([0]);
    // Another session logged in later sees only LUN 0, without a UA of this change.
    const d = await login(r.port, INI_B);
    expect(await reportLuns(d)).toEqual([0]);
  });

  it('a command running on a removed LUN is drained: updateTarget waits for it and it completes', async () => {
    const r = await rig({ luns: 2, drainMs: 5000 });
    const c = await login(r.port, INI_A);
    await settle(c, 1);
    let open!: () => void;
    r.stores[1].gate = new Promise<void>((res) => (open = res));
    const read = command(c, 1, READ10_1, { read: 512, ms: 8000 });
    await new Promise((res) => setTimeout(res, 100));
    let updated = false;
    const update = r.server.updateTarget(r.tpg((t) => ({ ...t, luns: t.luns.filter((l) => l.lun !== 1) }))).then(() => (updated = true));
    await new Promise((res) => setTimeout(res, 200));
    expect(updated).toBe(false);
    open();
    await update;
    expect((await read)?.status).toBe(0);
  });

  it('a command that does not drain in time is aborted and answered LOGICAL UNIT NOT SUPPORTED', async () => {
    const r = await rig({ luns: 2, drainMs: 150 });
    const c = await login(r.port, INI_A);
    await settle(c, 1);
    let open!: () => void;
    r.stores[1].gate = new Promise<void>((res) => (open = res));
    const read = command(c, 1, READ10_1, { read: 512, ms: 8000 });
    await new Promise((res) => setTimeout(res, 100));
    const update = r.server.updateTarget(r.tpg((t) => ({ ...t, luns: t.luns.filter((l) => l.lun !== 1) })));
    // The backstore returns only after the abort was requested (at ~150 ms).
    setTimeout(() => open(), 400);
    await update;
    const res = await read;
    expect([res?.status, res?.senseKey, res?.asc, res?.ascq]).toEqual([0x02, 0x05, 0x25, 0x00]);
    // The session goes on: LUN 0 still works (after the REPORTED LUNS UA).
    expectUa(await tur(c, 0), 0x29, 0x00);
    await settle(c, 0);
  });
});

describe('iSCSI target: ACLs, TPGs and parameters changed live', () => {
  const twoAcls = (): AclConfig[] => [
    { initiator: INI_A, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }] },
    { initiator: INI_B, mappedLuns: [{ mappedLun: 0, tpgLun: 0, readOnly: false }] },
  ];

  it('an ACL deleted ends that initiator session; another initiator keeps working', async () => {
    const r = await rig({ acls: twoAcls });
    const a = await login(r.port, INI_A);
    const b = await login(r.port, INI_B);
    await settle(a, 0);
    await settle(b, 0);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, acls: t.acls.filter((x) => x.initiator !== INI_A) })));
    expect(await a.waitClosed(3000)).toBe(true);
    expect(await tur(b, 0)).toMatchObject({ status: 0 });
    expect(r.server.sessions().map((s) => s.initiatorName)).toEqual([INI_B]);
    // And A cannot log in again: 0x0202 AUTHORIZATION FAILURE.
    const again = await NaiveIscsiClient.connect(r.port);
    clients.push(again);
    await expect(again.login(INI_A, IQN)).rejects.toThrow('class 2 detail 2');
  });

  it('an ACL removed while demo mode is on keeps the session, now with the demo LUN set', async () => {
    const r = await rig({ acls: () => [{ initiator: INI_A, mappedLuns: [{ mappedLun: 0, tpgLun: 1, readOnly: false }] }], demo: true });
    const a = await login(r.port, INI_A);
    await settle(a, 0);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, acls: [] })));
    // LUN 0 is now another device and LUN 1 appeared: the change is reported
    // on the LU the session already used (now LUN 1), the session lives.
    expectUa(await tur(a, 1), 0x3f, 0x0e);
    expect(await reportLuns(a)).toEqual([0, 1]);
  });

  it('a TPG disabled ends its sessions and refuses logins until enabled again', async () => {
    const r = await rig({ luns: 1 });
    const a = await login(r.port, INI_A);
    await settle(a, 0);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, enabled: false })));
    expect(await a.waitClosed(3000)).toBe(true);
    const refused = await NaiveIscsiClient.connect(r.port);
    clients.push(refused);
    await expect(refused.login(INI_A, IQN)).rejects.toThrow('class 2 detail 3');
    await r.server.updateTarget(r.tpg((t) => ({ ...t, enabled: true })));
    const back = await login(r.port, INI_A);
    await settle(back, 0);
  });

  it('a TPG removed ends its sessions and closes its portal', async () => {
    const r = await rig({ luns: 1 });
    const a = await login(r.port, INI_A);
    await r.server.updateTarget({ ...r.server.getTarget(IQN)!, tpgs: [] });
    expect(await a.waitClosed(3000)).toBe(true);
    expect(r.server.addresses()).toEqual([]);
    await expect(NaiveIscsiClient.connect(r.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('defaultCmdsnDepth applies to the window of a live session; authentication turned on does not end it', async () => {
    const r = await rig({ luns: 1 });
    const a = await login(r.port, INI_A);
    await settle(a, 0);
    const before = await tur(a, 0);
    expect((before!.maxCmdSN - before!.expCmdSN + 1) >>> 0).toBe(64);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, attributes: { ...t.attributes, defaultCmdsnDepth: 128, authentication: true } })));
    const after = await tur(a, 0);
    expect(after?.status).toBe(0);
    expect((after!.maxCmdSN - after!.expCmdSN + 1) >>> 0).toBe(128);
    // New logins need CHAP now: the naive client offers none -> 0x0201.
    const b = await NaiveIscsiClient.connect(r.port);
    clients.push(b);
    await expect(b.login(INI_B, IQN)).rejects.toThrow('class 2 detail 1');
  });

  it('sessions() reports negotiated parameters, login time and addresses as plain JSON', async () => {
    const r = await rig({ luns: 1 });
    const t0 = Date.now();
    await login(r.port, INI_A);
    const [s] = r.server.sessions();
    expect(s.loginTime).toBeGreaterThanOrEqual(t0 - 5);
    expect(s.params).toMatchObject({
      headerDigest: false,
      dataDigest: false,
      peerMaxRecvDataSegmentLength: 65536,
      firstBurstLength: 65536,
      maxBurstLength: 262144,
      immediateData: true,
      initialR2T: true,
      errorRecoveryLevel: 0,
      maxConnections: 1,
    });
    expect(s.connections[0].local).toBe(`127.0.0.1:${r.port}`);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
});

describe('iSCSI target: portals changed live', () => {
  it('a portal added listens at once and a login on it works; removing it stops new connections only', async () => {
    const r = await rig({ luns: 1 });
    const a = await login(r.port, INI_A);
    await r.server.updateTarget(r.tpg((t) => ({ ...t, portals: [{ host: '127.0.0.1', port: r.port }, { host: '127.0.0.1', port: 0 }] })));
    const ports = r.server.targetAddresses(IQN).map((x) => x.port);
    expect(ports).toHaveLength(2);
    expect(ports[0]).toBe(r.port);
    const newPort = ports[1];
    const b = await login(newPort, INI_B);
    await settle(b, 0);
    // iscsi-ls (libiscsi) discovers both portals.
    const ls = await runTool('iscsi-ls', ['-i', INI_B, `iscsi://127.0.0.1:${newPort}/`]);
    expect(ls.stdout).toContain(`127.0.0.1:${r.port},1`);
    expect(ls.stdout).toContain(`127.0.0.1:${newPort},1`);
    // Remove the first portal: its port refuses connections, its session stays.
    await r.server.updateTarget(r.tpg((t) => ({ ...t, portals: [{ host: '127.0.0.1', port: newPort }] })));
    expect(r.server.addresses()).toEqual([{ host: '127.0.0.1', port: newPort }]);
    await expect(NaiveIscsiClient.connect(r.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await settle(a, 0);
    await settle(b, 0);
  });

  it('a portal whose port is taken: updateTarget throws EADDRINUSE and nothing changes', async () => {
    const r = await rig({ luns: 2 });
    const a = await login(r.port, INI_A);
    await settle(a, 0);
    const blocker = net.createServer();
    blockers.push(blocker);
    await new Promise<void>((res) => blocker.listen({ host: '127.0.0.1', port: 0 }, () => res()));
    const taken = (blocker.address() as net.AddressInfo).port;
    const before = r.server.getTarget(IQN);
    const addrs = r.server.addresses();
    // A free new portal, a taken one, and a LUN removal in the same change.
    const next = r.tpg((t) => ({
      ...t,
      luns: t.luns.slice(0, 1),
      portals: [...t.portals, { host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: taken }],
    }));
    const err = await r.server.updateTarget(next).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    expect((err as Error).message).toContain(`127.0.0.1:${taken}`);
    expect(r.server.getTarget(IQN)).toBe(before);
    expect(r.server.addresses()).toEqual(addrs);
    // The session saw no change at all: no UA, both LUNs there.
    expect(await tur(a, 0)).toMatchObject({ status: 0 });
    expect(await reportLuns(a)).toEqual([0, 1]);
    const b = await login(r.port, INI_B);
    await settle(b, 0);
    // checkPortals reports the same error without changing anything either.
    await expect(r.server.checkPortals(next)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(r.server.addresses()).toEqual(addrs);
  });

  it('checkPortals binds and releases: the same port can then be used by updateTarget', async () => {
    const r = await rig({ luns: 1 });
    const probe = net.createServer();
    await new Promise<void>((res) => probe.listen({ host: '127.0.0.1', port: 0 }, () => res()));
    const free = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((res) => probe.close(() => res()));
    const next = r.tpg((t) => ({ ...t, portals: [...t.portals, { host: '127.0.0.1', port: free }] }));
    await r.server.checkPortals(next);
    expect(r.server.addresses()).toHaveLength(1);
    await r.server.updateTarget(next);
    expect(r.server.addresses().map((a) => a.port).sort()).toEqual([r.port, free].sort());
    const a = await login(free, INI_A);
    await settle(a, 0);
  });

  it('setDiscoveryAuth applies to the next discovery login', async () => {
    const r = await rig({ luns: 1 });
    const url = `iscsi://127.0.0.1:${r.port}/`;
    expect((await runTool('iscsi-ls', ['-i', INI_A, url])).stdout).toContain(IQN);
    r.server.setDiscoveryAuth({ enabled: true, userid: 'disc', password: 'discovery-pw-16!' });
    expect((await runTool('iscsi-ls', ['-i', INI_A, url])).stdout).not.toContain(IQN);
    expect((await runTool('iscsi-ls', ['-i', INI_A, `iscsi://disc%discovery-pw-16!@127.0.0.1:${r.port}/`])).stdout).toContain(IQN);
  });
});
