// lunkit diff / apply end to end (real CLI, real daemon): exit codes (diff 0
// nothing, 2 changes, 1 invalid file; apply --dry-run = diff), the
// "nothing to change" apply that sends nothing, and a functional slice of
// bench/config: 100 file LUNs applied from empty, then a one-line change that
// touches exactly one object (the daemon's log: no backstore opened, one
// target updated, no other target touched). No timing is asserted.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ControlClient } from '../../../src/daemon/control-client.js';
import { freePort, runCli } from '../../helpers/daemon-process.js';
import { startLunkit, type LunkitProcess } from '../../helpers/lunkit-process.js';

const LUNS = 100;
const TARGETS = 20;
const iqn = (t: number): string => `iqn.2026-01.org.example:slice${t}`;

function sliceDoc(dir: string, port: number): { backstores: Record<string, unknown>; iscsi: { targets: Record<string, { tpgs: Record<string, { acls: Record<string, unknown> }> }> } } {
  const backstores: Record<string, unknown> = {};
  for (let i = 0; i < LUNS; i++) backstores[`d${i}`] = { type: 'file', path: join(dir, `d${i}.img`), size: 1 << 20 };
  const targets: Record<string, { tpgs: Record<string, { portals: string[]; luns: Record<string, string>; acls: Record<string, unknown> }> }> = {};
  for (let t = 0; t < TARGETS; t++) {
    const luns: Record<string, string> = {};
    for (let i = t; i < LUNS; i += TARGETS) luns[String(Object.keys(luns).length)] = `d${i}`;
    targets[iqn(t)] = { tpgs: { '1': { portals: [`127.0.0.1:${port}`], luns, acls: { [`iqn.1994-05.com.example:h${t}`]: { mappedLuns: { '0': 0 } } } } } };
  }
  return { backstores, iscsi: { targets } };
}

describe('lunkit diff and apply', () => {
  let d: LunkitProcess;
  let dir: string;
  let socket: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-diff-apply-'));
    socket = join(dir, 's.sock');
    d = await startLunkit(['daemon', '--socket', socket, '--log-level', 'info'], { dir });
  });
  afterAll(async () => {
    await d?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const count = (re: RegExp): number => (d.stdout() + d.stderr()).match(re)?.length ?? 0;
  const cli = (args: string[]): ReturnType<typeof runCli> => runCli(socket, args, { cwd: dir, timeoutMs: 60_000 });

  it('applies 100 LUNs from empty, then a one-line change touches exactly one object', async () => {
    const port = await freePort();
    const doc = sliceDoc(dir, port);
    await writeFile(join(dir, 'full.json'), JSON.stringify(doc, null, 2));

    const dry = await cli(['apply', 'full.json', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(2);
    expect(JSON.parse(dry.stdout)).toMatchObject({ changed: true, summary: { add: LUNS + TARGETS, change: 0, remove: 0 } });
    expect(count(/backstore opened/g)).toBe(0);

    const first = await cli(['apply', 'full.json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${LUNS + TARGETS} to add, 0 to change, 0 to remove.`);
    expect(count(/backstore opened/g)).toBe(LUNS);
    expect(count(/iSCSI target added/g)).toBe(TARGETS);

    const same = await cli(['apply', 'full.json']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain('Nothing to change');
    const nodiff = await cli(['diff', 'full.json']);
    expect(nodiff.code).toBe(0);
    expect(nodiff.stdout.trim()).toBe('No changes.');

    // One line: a second ACL on one target.
    doc.iscsi.targets[iqn(7)].tpgs['1'].acls['iqn.1994-05.com.example:new'] = {};
    await writeFile(join(dir, 'change.json'), JSON.stringify(doc, null, 2));
    const diff = await cli(['diff', 'change.json']);
    expect(diff.code).toBe(2);
    expect(diff.stdout).toBe(`+ iscsi.targets["${iqn(7)}"].tpgs["1"].acls["iqn.1994-05.com.example:new"] {"mappedLuns":{}}\n1 to add, 0 to change, 0 to remove.\n`);
    const opened = count(/backstore opened/g);
    const changed = count(/iSCSI target (added|updated|removed)/g);
    const applied = await cli(['apply', 'change.json', '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({ applied: true, summary: { add: 1, change: 0, remove: 0 } });
    expect(count(/backstore opened/g)).toBe(opened);
    expect(count(/iSCSI target (added|updated|removed)/g)).toBe(changed + 1);
    expect(count(/iSCSI target updated/g)).toBe(1);
    expect(d.stdout() + d.stderr()).toContain(iqn(7));
  }, 120_000);

  it('config.replace with a stale ifRevision (what apply sends) changes nothing', async () => {
    const client = await ControlClient.connect(socket);
    try {
      const cur = await client.call<{ config: { backstores: Record<string, unknown> }; revision: number }>('config.get');
      const next = structuredClone(cur.config);
      next.backstores.extra = { type: 'ramdisk', size: 1 << 20 };
      await expect(client.call('config.replace', { config: next, ifRevision: cur.revision - 1 })).rejects.toMatchObject({ code: 'ERR_APPLY_FAILED' });
      const after = await client.call<{ config: unknown; revision: number }>('config.get');
      expect(after).toEqual(cur);
      const ok = await client.call<{ revision: number }>('config.replace', { config: next, ifRevision: cur.revision });
      expect(ok.revision).toBe(cur.revision + 1);
      await client.call('config.replace', { config: cur.config });
    } finally {
      client.close();
    }
  }, 30_000);

  it('diff of an invalid or missing file exits 1 and changes nothing', async () => {
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ backstores: { 'bad name!': { type: 'ramdisk', size: 1 } } }));
    const bad = await cli(['diff', 'bad.json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('backstores["bad name!"]');
    const missing = await cli(['apply', 'nosuch.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nosuch\.json/);
  }, 30_000);
});
