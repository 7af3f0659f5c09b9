// `lunkit stats` with boot labs: a client table per lab after the LU and
// session tables, totals once and rates with --watch, and --bootlab [LAB]
// (only the lab tables; with --json only the snapshot's bootlabs part).

import { describe, expect, it } from 'vitest';
import yargs, { type Argv } from 'yargs';

import { formatStatsTable, renderSnapshot, statsCommand } from '../../../src/cli/commands/stats.js';
import { LAB_TARGET, PC01, PC02, labSnapshotAt } from './bootlab-fixture.js';
import { snapshotAt } from './fixture.js';

describe('lunkit stats: boot labs', () => {
  it('prints a client table per lab after the other tables', () => {
    const text = formatStatsTable(labSnapshotAt(10, 16));
    const lines = text.split('\n');
    const head = lines.findIndex((l) => l.startsWith('Boot lab lab1'));
    expect(head).toBeGreaterThan(lines.findIndex((l) => l.startsWith('SESSION')));
    expect(lines[head]).toBe(`Boot lab lab1: 1 of 2 clients logged in; target ${LAB_TARGET}`);
    expect(lines[head + 1]).toMatch(/^CLIENT\s+MAC\s+LUN\s+LOGGED-IN\s+DELTA\s+READ\s+WRITTEN\s+COMMANDS\s+P99\s+LAST BOOT$/);
    // 16 writes of 64 KiB: 1 MiB written, overlay 1 MiB + 1 MiB; last boot at 1.7e12 ms, the snapshot 10 s later.
    expect(lines[head + 2]).toMatch(new RegExp(`^pc01\\s+${PC01.mac}\\s+0 yes\\s+2\\.0MiB\\s+0B\\s+1\\.0MiB\\s+16\\s+208us\\s+10s ago$`));
    expect(lines[head + 3]).toMatch(new RegExp(`^pc02\\s+${PC02.mac}\\s+1 no\\s+-\\s+0B\\s+0B\\s+0\\s+-\\s+-$`));
    // The snapshot of fixture.ts has no lab: no lab table.
    expect(formatStatsTable(snapshotAt(10, 0))).not.toContain('Boot lab');
  });

  it('shows rates over the interval in watch mode', () => {
    const text = renderSnapshot(labSnapshotAt(12, 48), { json: false, bootlab: 'lab1' }, labSnapshotAt(10, 16));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^Boot lab lab1/);
    expect(lines[1]).toMatch(/READ\/s\s+WRITTEN\/s\s+IOPS/);
    // 32 writes of 64 KiB in 2 s.
    expect(lines[2]).toMatch(/^pc01\s.*\s0B\/s\s+1\.0MiB\/s\s+16\s+208us\s/);
    expect(text).not.toContain('SESSION');
  });

  it('--bootlab: only the lab tables, the named lab or all; --json gives the bootlabs part', () => {
    const snap = labSnapshotAt(10, 16);
    expect(renderSnapshot(snap, { json: false, bootlab: '' })).toBe(renderSnapshot(snap, { json: false, bootlab: 'lab1' }));
    const json = JSON.parse(renderSnapshot(snap, { json: true, bootlab: 'lab1' })) as { version: number; time: number; bootlabs: Array<{ name: string; clients: Array<{ name: string }> }> };
    expect(json.version).toBe(1);
    expect(json.time).toBe(snap.time);
    expect(json.bootlabs.map((l) => [l.name, l.clients.map((c) => c.name)])).toEqual([['lab1', ['pc01', 'pc02']]]);
    expect(() => renderSnapshot(snap, { json: false, bootlab: 'lab9' })).toThrow(/no boot lab "lab9" \(labs: lab1\)/);
    expect(() => renderSnapshot(snapshotAt(0, 0), { json: true, bootlab: 'lab9' })).toThrow(/the daemon has no boot labs/);
    expect(renderSnapshot(snapshotAt(0, 0), { json: false, bootlab: '' })).toBe('(no boot labs)\n');
    // Without --bootlab, --json is the whole snapshot.
    expect((JSON.parse(renderSnapshot(snap, { json: true })) as { core: unknown }).core).toBeDefined();
  });
});

describe('lunkit stats --bootlab (options)', () => {
  it('takes a lab name, or none for every lab', () => {
    const parse = (argv: string[]): { bootlab?: string; json: boolean } => {
      const build = statsCommand.builder as (y: Argv) => Argv;
      return build(yargs(argv)).parseSync() as unknown as { bootlab?: string; json: boolean };
    };
    expect(parse(['--bootlab', 'lab1']).bootlab).toBe('lab1');
    expect(parse(['--bootlab', '--json'])).toMatchObject({ bootlab: '', json: true });
    expect(parse([]).bootlab).toBeUndefined();
  });
});
