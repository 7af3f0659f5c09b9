// `lunkit stats` (bin/lunkit.js, needs `npm run build`) against a real
// daemon: the table and --json once, and --watch --json streaming from
// stats.subscribe until SIGINT (exit 0, one JSON snapshot per line, rates
// from consecutive snapshots); `lunkit top` refuses to run without a terminal.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { ControlClient } from '../../../src/daemon/control-client.js';
import type { StatsSnapshot } from '../../../src/daemon/metrics.js';
import { runCli, startDaemon, type DaemonProcess } from '../../helpers/daemon-process.js';
import { LUNKIT_BIN } from '../../helpers/lunkit-process.js';

const IQN = 'iqn.2026-11.io.lunkit:cli-stats';

describe('lunkit stats', () => {
  let daemon: DaemonProcess | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await daemon?.stop();
    daemon = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function start(): Promise<DaemonProcess> {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-cli-stats-'));
    const config = join(dir, 'lunkit.json');
    await writeFile(
      config,
      JSON.stringify({
        backstores: { ram0: { type: 'ramdisk', size: '8M' } },
        iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'ram0' } } } } } },
      }),
    );
    return (daemon = await startDaemon({ dir, config }));
  }

  it('prints the LU table and the snapshot as JSON', async () => {
    const d = await start();
    const table = await runCli(d.socket, ['stats']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^LU\s+TYPE\s+SIZE\s+MAPPED AS/m);
    expect(table.stdout).toMatch(/^ram0\s+ramdisk\s+8\.0MiB\s+\S*cli-stats\/0/m);
    expect(table.stdout).toContain('(no sessions)');
    const json = await runCli(d.socket, ['stats', '--json']);
    expect(json.code).toBe(0);
    const snap = JSON.parse(json.stdout) as StatsSnapshot;
    expect(snap.version).toBe(1);
    expect(snap.core.luns.map((l) => l.name)).toEqual(['ram0']);
    expect(snap.iscsi?.targets.map((t) => t.iqn)).toEqual([IQN]);
  });

  it('--watch --json streams one snapshot per line from the subscription until SIGINT', async () => {
    const d = await start();
    // An event before the watch starts (a new LU): the first snapshot must carry it.
    const c = await ControlClient.connect(d.socket);
    await c.call('backstore.create', { name: 'extra', backstore: { type: 'ramdisk', size: '1M' } });
    c.close();
    const child = spawn(process.execPath, [LUNKIT_BIN, 'stats', '--watch', '--json', '--interval', '0.2', '--socket', d.socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      for (let i = 0; i < 100 && out.split('\n').length < 5; i++) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      clearTimeout(killer);
    }
    expect(err).toBe('');
    const snaps = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as StatsSnapshot);
    expect(snaps.length).toBeGreaterThanOrEqual(4);
    // About 200 ms apart (the subscription's interval), in order.
    for (let i = 1; i < snaps.length; i++) {
      const dt = snaps[i].time - snaps[i - 1].time;
      expect(dt).toBeGreaterThanOrEqual(100);
      expect(dt).toBeLessThan(2000);
    }
    // The first carries the whole event log (the LU's creation); the next ones only newer events.
    expect(snaps[0].events.some((e) => e.channel === 'lunkit:core:lun-change' && e.fields.device === 'extra')).toBe(true);
    const seqs = snaps.flatMap((s) => s.events.map((e) => e.seq));
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('lunkit top refuses to run without a terminal', async () => {
    const d = await start();
    const r = await runCli(d.socket, ['top']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('lunkit top needs a terminal');
  });
});
