// The schema version chain, the canonical document and the atomic save.

import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../src/daemon/config.js';
import { validateDoc } from '../../../src/daemon/config-doc.js';
import { ConfigError } from '../../../src/daemon/errors.js';
import { migrateConfig } from '../../../src/daemon/migrate.js';
import { loadConfigDoc, saveConfigFile } from '../../../src/daemon/saveconfig.js';

const IQN = 'iqn.2026-11.io.lunkit:t1';

/** A version-0 document: LUNs as an array. */
const V0 = {
  version: 0,
  backstores: { a: { type: 'ramdisk', size: '1M' }, b: { type: 'null', size: '1M' } },
  iscsi: {
    targets: {
      [IQN]: {
        tpgs: {
          '1': { portals: ['127.0.0.1:3260'], luns: [{ lun: 0, backstore: 'a' }, { lun: 4, backstore: 'b' }] },
          '2': { portals: ['127.0.0.1:3261'], luns: ['a', 'b'] },
        },
      },
    },
  },
};

describe('migrateConfig', () => {
  it('turns version 0 LUN arrays into maps keyed by LUN number', () => {
    const { doc, fromVersion } = migrateConfig(V0);
    expect(fromVersion).toBe(0);
    const cfg = validateDoc(doc).doc;
    expect(cfg.version).toBe(1);
    expect(cfg.iscsi.targets[IQN].tpgs['1'].luns).toEqual({ '0': 'a', '4': 'b' });
    expect(cfg.iscsi.targets[IQN].tpgs['2'].luns).toEqual({ '0': 'a', '1': 'b' });
    // The input is not modified.
    expect(Array.isArray(V0.iscsi.targets[IQN].tpgs['1'].luns)).toBe(true);
  });

  it('runs every step of the chain in order', () => {
    const seen: number[] = [];
    const chain = [0, 1, 2].map((n) => (d: Record<string, unknown>) => {
      seen.push(n);
      return { ...d, version: n + 1 };
    });
    expect(migrateConfig({ version: 1 }, '', chain, 3).doc).toEqual({ version: 3 });
    expect(seen).toEqual([1, 2]);
  });

  it('leaves a current document alone and treats a missing version as current', () => {
    expect(migrateConfig({ backstores: {} }).doc).toEqual({ backstores: {} });
    expect(migrateConfig({ version: 1 }).fromVersion).toBe(1);
  });

  it('refuses a version newer than it knows, saying so', () => {
    expect(() => migrateConfig({ version: 2 }, 'x.json')).toThrow(ConfigError);
    expect(() => migrateConfig({ version: 2 }, 'x.json')).toThrow(/version: 2 is newer than this lunkit understands \(1\)/);
  });
});

describe('canonical document', () => {
  it('is a fixed point: validating the document of a configuration gives the same document', () => {
    const input = {
      backstores: { f: { type: 'file', path: '/tmp/f', size: '1G' }, r: { type: 'ramdisk', size: 1048576 } },
      iscsi: {
        targets: {
          [IQN]: {
            tpgs: {
              '1': {
                portals: ['[::1]', '127.0.0.1:0'],
                luns: { '0': { backstore: 'f' }, '1': 'r' },
                acls: { 'iqn.2026-11.io.lunkit:h': { mappedLuns: { '0': 0, '1': { tpgLun: 1, readOnly: true } } } },
              },
            },
          },
        },
      },
      nbd: { listen: ['unix:/tmp/n.sock', '127.0.0.1'], exports: { e: { backstore: 'r' } } },
    };
    const once = validateDoc(input).doc;
    expect(validateDoc(JSON.parse(JSON.stringify(once))).doc).toEqual(once);
    const tpg = once.iscsi.targets[IQN].tpgs['1'];
    expect(tpg.portals).toEqual(['[::1]:3260', '127.0.0.1:0']);
    expect(tpg.luns).toEqual({ '0': 'f', '1': 'r' });
    expect(tpg.acls['iqn.2026-11.io.lunkit:h'].mappedLuns).toEqual({ '0': { tpgLun: 0, readOnly: false }, '1': { tpgLun: 1, readOnly: true } });
    expect(once.nbd!.listen).toEqual(['unix:/tmp/n.sock', '127.0.0.1:10809']);
    expect(once.backstores.f).toMatchObject({ size: 1073741824 });
  });
});

describe('saveConfigFile', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('writes atomically, keeps N previous copies, leaves no temporary file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-save-'));
    const file = join(dir, 'sub', 'cfg.json');
    for (let i = 1; i <= 4; i++) await saveConfigFile(file, { n: i }, 2);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ n: 4 });
    expect(JSON.parse(await readFile(`${file}.1`, 'utf8'))).toEqual({ n: 3 });
    expect(JSON.parse(await readFile(`${file}.2`, 'utf8'))).toEqual({ n: 2 });
    expect((await readdir(join(dir, 'sub'))).sort()).toEqual(['cfg.json', 'cfg.json.1', 'cfg.json.2']);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('keeps no copy with backups 0', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-save-'));
    const file = join(dir, 'cfg.json');
    await saveConfigFile(file, { n: 1 }, 0);
    const r = await saveConfigFile(file, { n: 2 }, 0);
    expect(r.backups).toEqual([]);
    expect(await readdir(dir)).toEqual(['cfg.json']);
  });

  it('loads a version-0 file through the migration, and names the path of a problem', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-save-'));
    const file = join(dir, 'old.json');
    await writeFile(file, JSON.stringify(V0));
    expect((await loadConfigDoc(file)).doc.iscsi.targets[IQN].tpgs['1'].luns).toEqual({ '0': 'a', '4': 'b' });
    expect((await loadConfigFile(file)).iscsi.targets[IQN].tpgs['1'].luns).toEqual({ '0': 'a', '4': 'b' });
    await writeFile(file, JSON.stringify({ backstores: { a: { type: 'ramdisk', size: '1Q' } } }));
    await expect(loadConfigDoc(file)).rejects.toThrow(/backstores\.a\.size/);
  });
});
