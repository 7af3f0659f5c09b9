// The `bootlabs` part of the stats snapshot (issue 15): clients joined with
// the core's LU counters and the iSCSI sessions of the same snapshot, overlay
// sizes from a background cache that is never read per client per snapshot,
// and the Prometheus families.

import { describe, expect, it } from 'vitest';

import { BootlabsSchema } from '../../../src/bootlab/schema.js';
import { BootlabStatsSource, OverlaySizes, collectBootlabStats } from '../../../src/daemon/bootlab-stats.js';
import { collectStatsSnapshot, renderPrometheus } from '../../../src/daemon/metrics.js';
import { LAB_TARGET, PC01, PC02, labSnapshotAt } from '../dashboard/bootlab-fixture.js';
import { snapshotAt } from '../dashboard/fixture.js';
import { parsePrometheus, sampleValue } from './prom-parser.js';

const LABS = BootlabsSchema.parse({
  lab1: {
    golden: '/srv/golden.img',
    goldenFormat: 'raw',
    listen: '127.0.0.1',
    dir: '/var/lib/lunkit/bootlab/lab1',
    clients: {
      [PC01.mac]: { name: 'pc01', lun: 0, golden: '/srv/golden.img', goldenFormat: 'raw' },
      [PC02.mac]: { name: 'pc02', lun: 1, golden: '/srv/golden.img', goldenFormat: 'raw', generation: 3 },
    },
  },
});

/** A stat() that counts its calls and answers from a table. */
function fakeStat(files: Record<string, number>): { calls: string[]; statFile: (p: string) => Promise<{ size: number; blocks: number } | undefined> } {
  const calls: string[] = [];
  return {
    calls,
    statFile: (p) => {
      calls.push(p);
      return Promise.resolve(p in files ? { size: files[p], blocks: Math.ceil(files[p] / 512) } : undefined);
    },
  };
}

describe('collectBootlabStats', () => {
  it('joins clients with their LU counters and sessions; sizes come from the cache once measured', async () => {
    const from = labSnapshotAt(10, 8);
    let now = 1000;
    const st = fakeStat({ '/var/lib/lunkit/bootlab/lab1/pc01.0.qcow2': 3 << 20, '/var/lib/lunkit/bootlab/lab1/pc02.3.qcow2': 196_608 });
    const sizes = new OverlaySizes({ now: () => now, statFile: st.statFile });
    const lastBoot = (lab: string, mac: string): { time: string; address: string } | undefined =>
      mac === PC01.mac ? { time: '2023-11-14T22:13:20.000Z', address: '10.0.0.5:3000' } : undefined;

    const first = collectBootlabStats(LABS, from, { sizes, lastBoot });
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ name: 'lab1', target: LAB_TARGET, golden: '/srv/golden.img' });
    const [pc01, pc02] = first[0].clients;
    expect(pc01).toMatchObject({
      mac: PC01.mac,
      name: 'pc01',
      lun: 0,
      backstore: PC01.backstore,
      initiator: PC01.initiator,
      overlay: '/var/lib/lunkit/bootlab/lab1/pc01.0.qcow2',
      loggedIn: true,
      sessions: 1,
      lastBoot: { time: '2023-11-14T22:13:20.000Z', address: '10.0.0.5:3000' },
      io: { luId: 10, writes: 8, writtenBytes: 8 * 65536, commands: 8, latency: { count: 8, p99Us: 208 } },
    });
    expect(pc02).toMatchObject({ name: 'pc02', overlay: '/var/lib/lunkit/bootlab/lab1/pc02.3.qcow2', loggedIn: false, sessions: 0, lastBoot: null, io: { luId: 11, writes: 0 } });
    // Not measured yet: the first snapshot started the refresh.
    expect(pc01.deltaBytes).toBeNull();
    expect(st.calls).toHaveLength(2);
    await sizes.pending;

    const second = collectBootlabStats(LABS, from, { sizes, lastBoot });
    expect(second[0].clients[0]).toMatchObject({ deltaBytes: 3 << 20, allocatedBytes: 3 << 20, sizeSampledAt: 1000 });
    expect(second[0].clients[1].deltaBytes).toBe(196_608);
    // Snapshots within maxAgeMs stat nothing.
    for (let i = 0; i < 50; i++) collectBootlabStats(LABS, from, { sizes, lastBoot });
    expect(st.calls).toHaveLength(2);
    now += 5000;
    collectBootlabStats(LABS, from, { sizes, lastBoot });
    expect(st.calls).toHaveLength(4);
    await sizes.pending;
  });

  it('matches sessions case-insensitively, ignores discovery sessions, and has no LU counters for a missing LU', () => {
    const from = labSnapshotAt(0, 0);
    from.iscsi!.sessions = [
      { ...from.iscsi!.sessions[0], initiatorName: PC02.initiator.toUpperCase(), targetName: LAB_TARGET, type: 'normal' },
      { ...from.iscsi!.sessions[0], initiatorName: PC01.initiator, targetName: '', type: 'discovery' },
    ];
    from.core.luns = from.core.luns.filter((l) => l.name !== PC02.backstore);
    const out = collectBootlabStats(LABS, from, { sizes: new OverlaySizes({ statFile: fakeStat({}).statFile }), lastBoot: () => undefined });
    expect(out[0].clients.map((c) => [c.name, c.loggedIn, c.io?.luId ?? null])).toEqual([
      ['pc01', false, 10],
      ['pc02', true, null],
    ]);
  });

  it('drops the sizes of overlays no longer wanted, and stats a thousand clients a few at a time', async () => {
    let inFlight = 0;
    let most = 0;
    const sizes = new OverlaySizes({
      concurrency: 4,
      statFile: async (p) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return { size: p.length, blocks: 1 };
      },
    });
    const paths = Array.from({ length: 1000 }, (_, i) => `/d/c${i}.0.qcow2`);
    await sizes.refresh(paths);
    expect(most).toBe(4);
    expect(sizes.get('/d/c999.0.qcow2')?.bytes).toBe('/d/c999.0.qcow2'.length);
    await sizes.refresh(['/d/c1.1.qcow2']);
    expect(sizes.get('/d/c1.0.qcow2')).toBeUndefined();
    expect(sizes.get('/d/c1.1.qcow2')).toBeDefined();
  });

  it('is [] without labs, and the daemon-side source plugs into collectStatsSnapshot', () => {
    expect(collectBootlabStats(undefined, snapshotAt(0, 0), { sizes: new OverlaySizes(), lastBoot: () => undefined })).toEqual([]);
    const base = labSnapshotAt(0, 2);
    const source = new BootlabStatsSource({ labs: () => LABS, lastBoot: () => undefined }, new OverlaySizes({ statFile: fakeStat({}).statFile }));
    const snap = collectStatsSnapshot({ core: { statsSnapshot: () => base.core }, iscsi: { statsSnapshot: () => base.iscsi! }, bootlabs: source });
    expect(snap.bootlabs?.[0].clients.map((c) => [c.name, c.loggedIn, c.io?.writes])).toEqual([
      ['pc01', true, 2],
      ['pc02', false, 0],
    ]);
    expect(collectStatsSnapshot({ core: { statsSnapshot: () => base.core } }).bootlabs).toEqual([]);
  });
});

describe('renderPrometheus: boot labs', () => {
  it('has per-lab and per-client families, sizes only once measured', () => {
    const fams = parsePrometheus(renderPrometheus(labSnapshotAt(10, 8)));
    const pc01 = { lab: 'lab1', client: 'pc01', mac: PC01.mac };
    const pc02 = { lab: 'lab1', client: 'pc02', mac: PC02.mac };
    expect(fams.get('lunkit_bootlab_client_logged_in')?.type).toBe('gauge');
    expect(sampleValue(fams, 'lunkit_bootlab_clients', { lab: 'lab1' })).toBe(2);
    expect(sampleValue(fams, 'lunkit_bootlab_clients_logged_in', { lab: 'lab1' })).toBe(1);
    expect(sampleValue(fams, 'lunkit_bootlab_client_logged_in', pc01)).toBe(1);
    expect(sampleValue(fams, 'lunkit_bootlab_client_logged_in', pc02)).toBe(0);
    expect(sampleValue(fams, 'lunkit_bootlab_client_delta_bytes', pc01)).toBe((1 << 20) + 8 * 65536);
    expect(sampleValue(fams, 'lunkit_bootlab_client_delta_bytes', pc02)).toBeUndefined();
    expect(sampleValue(fams, 'lunkit_bootlab_client_info', { ...pc01, backstore: PC01.backstore, initiator: PC01.initiator, lun: '0' })).toBe(1);
    expect(sampleValue(fams, 'lunkit_bootlab_client_last_boot_timestamp_seconds', pc01)).toBe(1_700_000_000);
    expect(sampleValue(fams, 'lunkit_bootlab_client_last_boot_timestamp_seconds', pc02)).toBeUndefined();
    // The client's I/O is the LU's, under its backstore name.
    expect(sampleValue(fams, 'lunkit_lun_write_bytes_total', { backstore: PC01.backstore, target: LAB_TARGET, lun: '0' })).toBe(8 * 65536);
  });

  it('escapes odd label values and leaves the families out without labs', () => {
    const snap = labSnapshotAt(0, 0);
    snap.bootlabs![0].clients[0].name = 'we"ird\\name\nx';
    const fams = parsePrometheus(renderPrometheus(snap));
    expect(sampleValue(fams, 'lunkit_bootlab_client_logged_in', { client: 'we"ird\\name\nx' })).toBe(1);
    const none = parsePrometheus(renderPrometheus(snapshotAt(0, 0)));
    expect(none.has('lunkit_bootlab_clients')).toBe(false);
    expect(none.has('lunkit_bootlab_client_logged_in')).toBe(false);
  });
});
