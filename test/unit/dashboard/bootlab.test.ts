// Boot-lab clients in `lunkit top` (issue 15): the tree's lab branch (name,
// MAC, logged in or off, delta), the header count, enter on a client opening
// its LU with the client's lines, the filter, and a snapshot without the part.

import { describe, expect, it } from 'vitest';

import { bootlabTreeLines, initialState, reduce, treeLines, type DashboardEvent, type DashboardState } from '../../../src/dashboard/model.js';
import { drawFrame } from '../../../src/dashboard/view.js';
import { PC01, PC02, labSnapshotAt } from './bootlab-fixture.js';
import { snapshotAt } from './fixture.js';

function run(s: DashboardState, ...events: DashboardEvent[]): DashboardState {
  return events.reduce(reduce, s);
}
const keys = (...k: string[]): DashboardEvent[] => k.map((key) => ({ type: 'key', key }));
const plain = (lines: string[]): string => lines.map((l) => l.replace(/\{(\/?)(bold|inverse|underline)\}/g, '')).join('\n');

describe('dashboard: boot-lab clients', () => {
  const base = run(initialState({ width: 140, height: 40 }), { type: 'snapshot', snapshot: labSnapshotAt(0, 0) }, { type: 'snapshot', snapshot: labSnapshotAt(2, 16) });

  it('adds a lab branch to the tree: per client name, MAC, logged in or off, delta', () => {
    const lab = bootlabTreeLines(base.snapshot!);
    expect(lab.map((l) => [l.depth, l.text, l.lunKey])).toEqual([
      [0, 'boot lab lab1: 1/2 logged in', undefined],
      [1, `pc01 ${PC01.mac} logged-in 2.0MiB`, '10'],
      [1, `pc02 ${PC02.mac} off -`, '11'],
    ]);
    // After the targets (the lab target lists its LUNs as usual).
    const all = treeLines(base).map((l) => l.text);
    expect(all.slice(-3)).toEqual(lab.map((l) => l.text));
    expect(all).toContain('lun0 bootlab.lab1.pc01 qcow2 32.0MiB');
  });

  it('draws the branch and the count of clients logged in', () => {
    const frame = plain(drawFrame(base));
    expect(frame.split('\n')[0]).toContain('lab clients 1/2 on');
    expect(frame).toContain('boot lab lab1: 1/2 logged in');
    expect(frame).toContain(`pc01 ${PC01.mac} logged-in 2.0MiB`);
    expect(frame).toContain(`pc02 ${PC02.mac} off -`);
    // The client's LU has its rates like any other: 16 writes of 64 KiB in 2 s.
    expect(base.lunRates['10'].writeBps).toBe(8 * 65536);
  });

  it('enter on a client opens its LU with the client lines', () => {
    const lines = treeLines(base);
    const at = lines.findIndex((l) => l.text.startsWith('pc01 '));
    const s = run(base, ...keys('shift-tab', 'home'), ...keys(...Array<string>(at).fill('down')), ...keys('enter'));
    expect(s.detail).toEqual({ kind: 'lun', key: '10' });
    const frame = plain(drawFrame(s));
    expect(frame).toContain('LU bootlab.lab1.pc01');
    expect(frame).toContain(`boot lab lab1 client pc01  MAC ${PC01.mac}  logged in (1 session)`);
    expect(frame).toContain('overlay /var/lib/lunkit/bootlab/lab1/pc01.0.qcow2  delta 2.0MiB');
    expect(frame).toContain(`initiator ${PC01.initiator}  last boot 2023-11-14T22:13:20.000Z from 127.0.0.1:40001`);
    // Another LU says nothing about labs.
    const other = run(base, ...keys('tab', 'home', 'enter'));
    expect(plain(drawFrame(other))).not.toContain('boot lab');
  });

  it('the filter finds a client by name or MAC', () => {
    const s = run(base, { type: 'filter', text: PC02.mac });
    expect(treeLines(s).map((l) => l.text)).toEqual([`pc02 ${PC02.mac} off -`]);
  });

  it('shows nothing of labs for a snapshot without them (or from an older daemon)', () => {
    const s = run(initialState({ width: 140, height: 40 }), { type: 'snapshot', snapshot: snapshotAt(0, 0) });
    expect(bootlabTreeLines(s.snapshot!)).toEqual([]);
    expect(plain(drawFrame(s))).not.toContain('lab clients');
  });
});
