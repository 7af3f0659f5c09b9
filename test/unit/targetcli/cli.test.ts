// The import/export verbs without a daemon: file in, file out, and the errors
// a user sees. (--apply against a live daemon belongs to the integration tier.)

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import { afterAll, describe, expect, it } from 'vitest';

import { exportCommand, runExportTargetcli } from '../../../src/cli/commands/export.js';
import { importCommand, runImportTargetcli } from '../../../src/cli/commands/import.js';
import type { Io } from '../../../src/cli/output.js';
import { parseConfig } from '../../../src/daemon/config.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/targetcli/${name}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lunkit-targetcli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): { io: Io; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (c: Buffer) => (o += c.toString()));
  stderr.on('data', (c: Buffer) => (e += c.toString()));
  return { io: { stdout, stderr }, out: () => o, err: () => e };
}

describe('lunkit import targetcli', () => {
  it('prints the lunkit configuration and lists what is not carried over on stderr', async () => {
    const c = capture();
    expect(await runImportTargetcli({ file: fixture('unsupported.json'), json: false }, c.io)).toBe(0);
    const cfg = parseConfig(JSON.parse(c.out()));
    expect(Object.keys(cfg.backstores)).toContain('odd');
    expect(c.err()).toMatch(/^lunkit: 31 items of .*unsupported\.json not carried over as is:\n {2}- mystery=true: no lunkit equivalent\n/);
    expect(c.err()).not.toContain('LIO defaults dropped');
  });

  it('--verbose also lists the LIO defaults it dropped', async () => {
    const c = capture();
    expect(await runImportTargetcli({ file: fixture('roundtrip.json'), json: false, verbose: true }, c.io)).toBe(0);
    expect(c.err()).toMatch(/LIO defaults dropped \(lunkit behaves so anyway\):\n/);
    expect(c.err()).toContain('netif_timeout=2: LIO default');
  });

  it('--out writes the file with mode 0600 (it holds CHAP secrets)', async () => {
    const out = join(dir, 'lunkit.json');
    const c = capture();
    expect(await runImportTargetcli({ file: fixture('roundtrip.json'), out, json: false }, c.io)).toBe(0);
    expect(c.out()).toBe(`Wrote ${out}: 5 backstores, 2 targets.\n`);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(parseConfig(JSON.parse(readFileSync(out, 'utf8'))).iscsi.discoveryAuth?.enabled).toBe(true);
  });

  it('--json puts config, unsupported and notes on stdout and nothing on stderr', async () => {
    const c = capture();
    expect(await runImportTargetcli({ file: fixture('unsupported.json'), json: true }, c.io)).toBe(0);
    const r = JSON.parse(c.out()) as { config: unknown; unsupported: string[]; notes: string[] };
    expect(r.unsupported).toHaveLength(31);
    expect(r.notes.length).toBeGreaterThan(0);
    expect(() => parseConfig(r.config)).not.toThrow();
    expect(c.err()).toBe('');
  });

  it('an invalid file fails with the path at fault', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ storage_objects: [], targets: [{ wwn: 'iqn.2026-11.io.lunkit:t', fabric: 'iscsi', tpgs: [{ tag: 1, portals: [{ ip_address: '::', port: 3260 }], luns: [{ index: 0, storage_object: '/backstores/fileio/gone' }] }] }] }));
    const c = capture();
    expect(await runImportTargetcli({ file: bad, json: false }, c.io)).toBe(1);
    expect(c.err()).toContain(`invalid targetcli configuration in ${bad}:`);
    expect(c.err()).toContain('targets[0].tpgs[0].luns[0].storage_object: "/backstores/fileio/gone" names no storage object in storage_objects');
    expect(c.err()).toContain('(ERR_TARGETCLI_INVALID)');
    expect(c.out()).toBe('');
  });

  it('not JSON, and a missing file', async () => {
    const bad = join(dir, 'notjson.json');
    writeFileSync(bad, '{ "targets": ');
    let c = capture();
    expect(await runImportTargetcli({ file: bad, json: true }, c.io)).toBe(1);
    const e = JSON.parse(c.err()) as { error: { code: string; problems: string[] } };
    expect(e.error.code).toBe('ERR_TARGETCLI_INVALID');
    expect(e.error.problems[0]).toMatch(/^not valid JSON: /);
    c = capture();
    expect(await runImportTargetcli({ file: join(dir, 'nope.json'), json: false }, c.io)).toBe(1);
    expect(c.err()).toMatch(/cannot read the file: ENOENT/);
  });

  it('--apply without a daemon says how to start one', async () => {
    const c = capture();
    expect(await runImportTargetcli({ file: fixture('roundtrip.json'), apply: true, json: false, socket: join(dir, 'no.sock') }, c.io)).toBe(1);
    expect(c.err()).toMatch(/no lunkit daemon at .*no\.sock: start one with `lunkit daemon` \(ERR_CONTROL_CONNECT\)/);
  });
});

describe('lunkit export targetcli', () => {
  it('--config FILE --out FILE writes a saveconfig.json that imports back the same', async () => {
    const cfgFile = join(dir, 'for-export.json');
    const out = join(dir, 'saveconfig.json');
    expect(await runImportTargetcli({ file: fixture('roundtrip.json'), out: cfgFile, json: false }, capture().io)).toBe(0);
    const c = capture();
    expect(await runExportTargetcli({ config: cfgFile, out, json: false }, c.io)).toBe(0);
    expect(c.out()).toBe(`Wrote ${out}; load it on the LIO host with \`targetctl restore ${out}\`.\n`);
    expect(c.err()).toBe('');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const again = capture();
    expect(await runImportTargetcli({ file: out, json: true }, again.io)).toBe(0);
    expect(parseConfig((JSON.parse(again.out()) as { config: unknown }).config)).toEqual(parseConfig(JSON.parse(readFileSync(cfgFile, 'utf8'))));
  });

  it('prints to stdout and lists what LIO cannot hold', async () => {
    const cfgFile = join(dir, 'nbd.json');
    writeFileSync(cfgFile, JSON.stringify({ backstores: { r: { type: 'ramdisk', size: '1M' } }, nbd: { exports: { r: { backstore: 'r' } } } }));
    const c = capture();
    expect(await runExportTargetcli({ config: cfgFile, json: false }, c.io)).toBe(0);
    const doc = JSON.parse(c.out()) as { storage_objects: Array<{ name: string; plugin: string; size: number }> };
    expect(doc.storage_objects).toEqual([{ attributes: { block_size: 512 }, name: 'r', plugin: 'ramdisk', size: 1048576 }]);
    expect(c.err()).toContain(`lunkit: 2 items of ${cfgFile} not carried over as is:\n  - nbd.exports.r (backstore r): LIO has no NBD server; export left out\n`);
  });

  it('an invalid lunkit configuration fails with its path', async () => {
    const cfgFile = join(dir, 'invalid.json');
    writeFileSync(cfgFile, JSON.stringify({ backstores: { r: { type: 'ramdisk', size: '1X' } } }));
    const c = capture();
    expect(await runExportTargetcli({ config: cfgFile, json: false }, c.io)).toBe(1);
    expect(c.err()).toContain('backstores.r.size');
  });
});

describe('command modules', () => {
  it('parse `import targetcli FILE --out` and `export targetcli --config`', async () => {
    const out = join(dir, 'via-yargs.json');
    const saved = process.exitCode;
    try {
      await yargs(['import', 'targetcli', fixture('roundtrip.json'), '--out', out, '--json']).command(importCommand).command(exportCommand).strict().exitProcess(false).parseAsync();
      expect(process.exitCode).toBe(0);
      expect(() => parseConfig(JSON.parse(readFileSync(out, 'utf8')))).not.toThrow();
      const run = async (): Promise<unknown> =>
        yargs(['import', 'targetcli', 'x.json', '--out', 'a', '--apply'])
          .command(importCommand)
          .strict()
          .exitProcess(false)
          .fail((msg) => {
            throw new Error(msg);
          })
          .parseAsync();
      await expect(run()).rejects.toThrow(/mutually exclusive/);
    } finally {
      process.exitCode = saved;
    }
  });
});
