// A hand-built snapshot with a boot lab: the demo target of fixture.ts plus
// lab "lab1" with two clients, pc01 logged in (and writing) and pc02 off.

import type { BootlabClientStats } from '../../../src/daemon/bootlab-stats.js';
import type { StatsSnapshot } from '../../../src/daemon/metrics.js';
import { counters, snapshotAt } from './fixture.js';

export const LAB_TARGET = 'iqn.2026-11.io.lunkit:bootlab.lab1';
export const PC01 = { mac: '52:54:00:12:34:56', name: 'pc01', initiator: 'iqn.2026-11.io.lunkit.bootlab:lab1.pc01', backstore: 'bootlab.lab1.pc01' };
export const PC02 = { mac: '52:54:00:12:34:57', name: 'pc02', initiator: 'iqn.2026-11.io.lunkit.bootlab:lab1.pc02', backstore: 'bootlab.lab1.pc02' };

/** `t` seconds after 0; pc01 has done `writes` 64 KiB writes (each 200 us) and its overlay is 1 MiB + what it wrote. */
export function labSnapshotAt(t: number, writes: number): StatsSnapshot {
  const snap = snapshotAt(t, 0);
  const lat = { count: writes, sumUs: writes * 200, meanUs: writes ? 200 : 0, p99Us: writes ? 208 : 0, maxUs: writes ? 200 : 0, buckets: writes ? ([[73, writes]] as Array<[number, number]>) : [] };
  const base = { sizeBytes: 32 << 20, blockSize: 512, readOnly: false, createdAt: 1_700_000_000_000, backstore: 'qcow2' };
  snap.core.luns.push(
    { id: 10, name: PC01.backstore, ...base, ...counters({ commands: writes, writes, writtenBytes: writes * 65536, latency: lat }) },
    { id: 11, name: PC02.backstore, ...base, ...counters() },
  );
  snap.core.nexuses.push({
    id: 20,
    fabric: 'iscsi',
    initiatorName: PC01.initiator,
    initiatorPortId: `${PC01.initiator},i,0x400000000001`,
    targetName: LAB_TARGET,
    targetPortId: `${LAB_TARGET},t,0x0001`,
    openedAt: 1_700_000_000_000,
    luns: [0],
    ...counters({ commands: writes, writes, writtenBytes: writes * 65536, latency: lat }),
  });
  snap.iscsi!.sessions.push({
    ...snap.iscsi!.sessions[0],
    tsih: 2,
    isid: '400000000001',
    initiatorName: PC01.initiator,
    targetName: LAB_TARGET,
    nexusId: 20,
    connections: [{ ...snap.iscsi!.sessions[0].connections[0], id: 2, remote: '127.0.0.1:40001' }],
  });
  snap.iscsi!.totals.sessions = 2;
  snap.iscsi!.totals.connections = 2;
  snap.iscsi!.targets.push({
    iqn: LAB_TARGET,
    alias: 'lunkit boot lab lab1',
    tpgs: [
      {
        tag: 1,
        enabled: true,
        portals: [{ host: '127.0.0.1', port: 3260 }],
        luns: [
          { lun: 0, device: PC01.backstore },
          { lun: 1, device: PC02.backstore },
        ],
        acls: [PC01.initiator, PC02.initiator],
        generateNodeAcls: false,
        authentication: false,
      },
    ],
  });
  const client = (c: typeof PC01, lun: number, on: boolean, delta: number | null, io: BootlabClientStats['io']): BootlabClientStats => ({
    mac: c.mac,
    name: c.name,
    lun,
    backstore: c.backstore,
    initiator: c.initiator,
    overlay: `/var/lib/lunkit/bootlab/lab1/${c.name}.0.qcow2`,
    loggedIn: on,
    sessions: on ? 1 : 0,
    deltaBytes: delta,
    allocatedBytes: delta,
    sizeSampledAt: delta === null ? null : snap.time,
    lastBoot: on ? { time: '2023-11-14T22:13:20.000Z', address: '127.0.0.1:40001' } : null,
    io,
  });
  snap.bootlabs = [
    {
      name: 'lab1',
      target: LAB_TARGET,
      golden: '/srv/golden.img',
      clients: [
        client(PC01, 0, true, (1 << 20) + writes * 65536, {
          luId: 10,
          commands: writes,
          reads: 0,
          writes,
          readBytes: 0,
          writtenBytes: writes * 65536,
          errors: 0,
          inFlight: 0,
          latency: { count: lat.count, sumUs: lat.sumUs, meanUs: lat.meanUs, p99Us: lat.p99Us, maxUs: lat.maxUs },
        }),
        client(PC02, 1, false, null, { luId: 11, commands: 0, reads: 0, writes: 0, readBytes: 0, writtenBytes: 0, errors: 0, inFlight: 0, latency: { count: 0, sumUs: 0, meanUs: 0, p99Us: 0, maxUs: 0 } }),
      ],
    },
  ];
  return snap;
}
