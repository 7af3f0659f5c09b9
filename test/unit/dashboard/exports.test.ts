// NBD exports and FUSE files in the dashboard's object tree (issue 19): an
// export line with its LU and connection count, a line per connection, a FUSE
// mount with its files, enter opening the LU, the filter, a snapshot without
// the part (older daemons), and exportsStats building the part from a runtime.

import { describe, expect, it } from 'vitest';

import { exportTreeLines, initialState, lunRows, reduce, treeLines, type DashboardEvent, type DashboardState } from '../../../src/dashboard/model.js';
import { drawFrame } from '../../../src/dashboard/view.js';
import { exportsStats, type ExportsStats } from '../../../src/daemon/exports-stats.js';
import type { LunkitConfig } from '../../../src/daemon/config-schema.js';
import type { NbdConnectionInfo } from '../../../src/fabrics/nbd/connection.js';
import type { StatsSnapshot } from '../../../src/daemon/metrics.js';
import { IQN, snapshotAt } from './fixture.js';

const EXPORTS: ExportsStats = {
  nbd: [
    {
      name: 'demo',
      backstore: 'disk0',
      readOnly: false,
      connections: [
        { id: 3, remote: '127.0.0.1:41000', since: 1_700_000_000_000, inFlight: 2, tls: false },
        { id: 4, remote: '10.0.0.9:41002', since: 1_700_000_000_000, inFlight: 0, tls: true },
      ],
    },
    { name: 'spare', backstore: 'ram9', readOnly: true, connections: [] },
  ],
  nbdHandshaking: 0,
  fuse: [
    { mountpoint: '/run/lunkit/demo', mounted: true, files: [{ path: '/run/lunkit/demo/demo', backstore: 'disk0', readOnly: false }] },
    { mountpoint: '/mnt/off', mounted: false, files: [] },
  ],
};

/** The fixture's target (disk0, ram1) plus a third LU only an NBD export uses. */
function withExports(t: number, exports: ExportsStats | undefined): StatsSnapshot {
  const s = snapshotAt(t, 0);
  s.core.luns.push({ ...s.core.luns[1], id: 9, name: 'ram9', sizeBytes: 8 << 20 });
  if (exports) s.exports = exports;
  return s;
}

function run(s: DashboardState, ...events: DashboardEvent[]): DashboardState {
  return events.reduce(reduce, s);
}
const keys = (...k: string[]): DashboardEvent[] => k.map((key) => ({ type: 'key', key }));
const plain = (lines: string[]): string => lines.map((l) => l.replace(/\{(\/?)(bold|inverse|underline)\}/g, '')).join('\n');

describe('dashboard: NBD exports and FUSE files', () => {
  const base = reduce(initialState({ width: 200, height: 60 }), { type: 'snapshot', snapshot: withExports(0, EXPORTS) });

  it('lists each export with its LU and connections, and each FUSE mount with its files, after the targets', () => {
    expect(treeLines(base).map((l) => [l.depth, l.text, l.lunKey])).toEqual([
      [0, IQN, undefined],
      [1, 'tpg1 127.0.0.1:3260 demo', undefined],
      [2, 'lun0 disk0 file 1.0GiB', '1'],
      [2, 'lun1 ram1 ramdisk 64.0MiB', '2'],
      [0, 'nbd export demo -> disk0 file 1.0GiB  2 conn', '1'],
      [1, '127.0.0.1:41000 inflight 2', '1'],
      [1, '10.0.0.9:41002 tls inflight 0', '1'],
      [0, 'nbd export spare -> ram9 ramdisk 8.0MiB [ro]  0 conn', '9'],
      [0, 'fuse /run/lunkit/demo', undefined],
      [1, 'demo -> disk0 file 1.0GiB', '1'],
      [0, 'fuse /mnt/off [not mounted]', undefined],
    ]);
  });

  it('an LU only an export uses is not listed again under "other LUs"', () => {
    expect(treeLines(base).some((l) => l.text === 'other LUs')).toBe(false);
    const withoutExports = reduce(initialState(), { type: 'snapshot', snapshot: withExports(0, undefined) });
    expect(treeLines(withoutExports).slice(-2).map((l) => l.text)).toEqual(['other LUs', 'ram9 ramdisk 8.0MiB']);
  });

  it('names an export whose backstore is not (yet) an LU without a size and without a drill-down', () => {
    const snap = withExports(0, undefined);
    const lines = exportTreeLines(snap, new Map(snap.core.luns.map((l) => [l.name, l])), new Set());
    expect(lines).toEqual([]);
    const missing = exportTreeLines({ ...snap, exports: { nbd: [{ name: 'x', backstore: 'gone', readOnly: false, connections: [] }], nbdHandshaking: 0, fuse: [] } }, new Map(), new Set());
    expect(missing).toEqual([{ depth: 0, text: 'nbd export x -> gone  0 conn' }]);
  });

  it('an LU\'s mappings name its exports and files too (LU detail, filter)', () => {
    expect(lunRows(base).map((r) => [r.name, r.mappings])).toEqual([
      ['disk0', [`${IQN}/0`, 'nbd:demo', 'fuse:/run/lunkit/demo/demo']],
      ['ram1', [`${IQN}/1`]],
      ['ram9', ['nbd:spare']],
    ]);
    const detail = run(base, ...keys('right'), ...keys('down', 'down', 'enter')); // LUNs pane, third row
    expect(detail.detail).toEqual({ kind: 'lun', key: '9' });
    expect(plain(drawFrame(detail))).toContain('mapped as: nbd:spare');
    expect(lunRows(reduce(base, { type: 'filter', text: 'nbd:spare' })).map((r) => r.name)).toEqual(['ram9']);
  });

  it('draws the rows in the Objects pane', () => {
    const frame = plain(drawFrame(base));
    expect(frame).toContain('nbd export demo -> disk0 file 1.0GiB  2 conn');
    expect(frame).toContain('\n  127.0.0.1:41000 inflight 2');
    expect(frame).toContain('fuse /run/lunkit/demo');
    expect(frame).toContain('\n  demo -> disk0 file 1.0GiB');
  });

  it('enter on an export, a connection or a file opens its LU; the filter finds them', () => {
    const rows = treeLines(base);
    const at = (text: string): number => rows.findIndex((l) => l.text === text);
    const onTree = run(base, ...keys('shift-tab')); // sessions -> tree
    expect(onTree.focus).toBe('tree');
    for (const [text, lun] of [
      ['nbd export spare -> ram9 ramdisk 8.0MiB [ro]  0 conn', '9'],
      ['10.0.0.9:41002 tls inflight 0', '1'],
      ['demo -> disk0 file 1.0GiB', '1'],
    ] as const) {
      const s = run(onTree, ...keys('home'), ...keys(...Array<string>(at(text)).fill('down')), ...keys('enter'));
      expect(s.detail).toEqual({ kind: 'lun', key: lun });
    }
    // A mount line has no LU: enter does nothing.
    const mount = run(onTree, ...keys('home'), ...keys(...Array<string>(at('fuse /run/lunkit/demo')).fill('down')), ...keys('enter'));
    expect(mount.detail).toBeNull();
    const filtered = reduce(base, { type: 'filter', text: '41002' });
    expect(treeLines(filtered).map((l) => l.text)).toEqual(['10.0.0.9:41002 tls inflight 0']);
  });
});

describe('exportsStats', () => {
  const config = {
    nbd: { listen: [{ host: '127.0.0.1', port: 0 }], exports: { demo: { backstore: 'ram0', readOnly: false }, ro: { backstore: 'ram1', readOnly: true } } },
    fuse: {
      '/run/a': { exports: { f: { backstore: 'ram0', readOnly: false } }, directIo: false, allowOther: false },
      '/run/b': { exports: {}, directIo: false, allowOther: false },
    },
  } as unknown as LunkitConfig;
  const conn = (id: number, exp: string | undefined): NbdConnectionInfo => ({
    id,
    export: exp,
    remote: `127.0.0.1:${40000 + id}`,
    local: '127.0.0.1:10809',
    since: 5,
    inFlight: id,
    inFlightBytes: 0,
    queuedBytes: 0,
    paused: false,
    pauses: 0,
    tls: false,
    structured: true,
    extendedHeaders: false,
  });

  it('puts each connection under the export it picked, counts those haggling, and marks mounts not running', () => {
    const out = exportsStats({
      config,
      nbd: { connections: () => [conn(1, 'demo'), conn(2, undefined), conn(3, 'demo')] },
      fuse: { files: () => [{ mountpoint: '/run/a', files: ['/run/a/f'] }] },
    });
    expect(out).toEqual({
      nbd: [
        {
          name: 'demo',
          backstore: 'ram0',
          readOnly: false,
          connections: [
            { id: 1, remote: '127.0.0.1:40001', since: 5, inFlight: 1, tls: false },
            { id: 3, remote: '127.0.0.1:40003', since: 5, inFlight: 3, tls: false },
          ],
        },
        { name: 'ro', backstore: 'ram1', readOnly: true, connections: [] },
      ],
      nbdHandshaking: 1,
      fuse: [
        { mountpoint: '/run/a', mounted: true, files: [{ path: '/run/a/f', backstore: 'ram0', readOnly: false }] },
        { mountpoint: '/run/b', mounted: false, files: [] },
      ],
    });
  });

  it('is empty without an nbd or fuse section', () => {
    expect(exportsStats({ config: {} as LunkitConfig, nbd: undefined, fuse: { files: () => [] } })).toEqual({ nbd: [], nbdHandshaking: 0, fuse: [] });
  });
});
