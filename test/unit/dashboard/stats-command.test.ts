// The pure part of `lunkit stats`: the table, totals once, rates with --watch.

import { describe, expect, it } from 'vitest';

import { formatStatsTable, statsCommand } from '../../../src/cli/commands/stats.js';
import { topCommand } from '../../../src/cli/commands/top.js';
import { IQN, snapshotAt } from './fixture.js';

describe('lunkit stats table', () => {
  it('shows LU and session totals since start', () => {
    const text = formatStatsTable(snapshotAt(10, 1000));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^LU\s+TYPE\s+SIZE\s+MAPPED AS\s+READ\s+WRITTEN\s+COMMANDS\s+ERRORS\s+P99$/);
    const disk = lines.find((l) => l.startsWith('disk0'));
    expect(disk).toMatch(/disk0\s+file\s+1\.0GiB\s+\S*lunkit:demo\/0\s+3\.9MiB\s+0B\s+1000\s+0\s+104us/);
    expect(lines.find((l) => l.startsWith('ram1'))).toMatch(/ram1\s+ramdisk\s+64\.0MiB/);
    expect(text).toContain('127.0.0.1:40000');
    expect(text).toContain('23d000000001');
    expect(text).toContain('iSCSI: 1 sessions, 1 connections; logins 1 ok, 0 failed');
    expect(IQN.length).toBeGreaterThan(20);
  });

  it('shows rates over the interval in watch mode', () => {
    const text = formatStatsTable(snapshotAt(12, 5000), snapshotAt(10, 1000));
    const disk = text.split('\n').find((l) => l.startsWith('disk0'));
    // 4000 reads of 4 KiB in 2 s.
    expect(disk).toMatch(/7\.8MiB\/s\s+0B\/s\s+2\.00k\s+0\s+104us/);
    expect(text.split('\n')[0]).toContain('READ/s');
  });

  it('says so when there is nothing', () => {
    const text = formatStatsTable({ version: 1, time: 0, core: { luns: [], nexuses: [] }, iscsi: null, events: [] });
    expect(text).toContain('(no LUs)');
    expect(text).toContain('(no sessions)');
  });

  it('exports yargs command modules', () => {
    expect(statsCommand.command).toBe('stats');
    expect(topCommand.command).toBe('top');
  });
});
