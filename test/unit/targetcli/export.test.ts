// exportTargetcli: rtslib's key names and shapes, and what LIO cannot hold is
// listed (NBD, removable media, read-only files carried as write_protect).

import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../../src/daemon/config.js';
import { exportTargetcli } from '../../../src/daemon/targetcli/to-targetcli.js';

const IQN = 'iqn.2026-11.io.lunkit:t1';
const INIT = 'iqn.2026-11.io.lunkit:init';

function config(): Record<string, unknown> {
  return {
    backstores: {
      ro: { type: 'file', path: '/srv/ro.img', size: '1M', readOnly: true, removable: true, serial: '0123456789abcdef0123456789abcdef' },
      existing: { type: 'file', path: '/srv/existing.img' },
      nul: { type: 'null', size: '1G', blockSize: 4096 },
      remote: { type: 'nbd', url: 'nbd://127.0.0.1:10809/x' },
    },
    iscsi: {
      targets: {
        [IQN]: {
          alias: 'lunkit',
          tpgs: {
            '1': {
              portals: ['[::1]:3260', '127.0.0.1:0'],
              luns: { '0': 'ro', '1': 'nul', '2': 'remote' },
              acls: { [INIT]: { mappedLuns: { '0': 0, '1': { tpgLun: 1, readOnly: false }, '2': 2 } } },
            },
            '2': { portals: ['127.0.0.1:3262'], attributes: { generateNodeAcls: true, nopInInterval: 5 } },
          },
        },
      },
    },
    nbd: { listen: ['127.0.0.1:10809'], exports: { x: { backstore: 'nul' } } },
  };
}

describe('exportTargetcli', () => {
  const { doc, unsupported } = exportTargetcli(config());

  it('writes storage objects with rtslib plugins and keys', () => {
    expect(doc.storage_objects).toEqual([
      {
        attributes: { block_size: 512, emulate_tpu: 1, emulate_tpws: 1, emulate_write_cache: 1 },
        dev: '/srv/ro.img',
        name: 'ro',
        plugin: 'fileio',
        size: 1048576,
        write_back: true,
        wwn: '01234567-89ab-cdef-0123-456789abcdef',
      },
      { attributes: { block_size: 512, emulate_tpu: 1, emulate_tpws: 1, emulate_write_cache: 1 }, dev: '/srv/existing.img', name: 'existing', plugin: 'fileio', write_back: true },
      { attributes: { block_size: 4096 }, name: 'nul', nullio: true, plugin: 'ramdisk', size: 1073741824 },
    ]);
  });

  it('writes the TPG: portals in rtslib form, LUN paths, mapped LUNs, attributes, parameters', () => {
    const [t] = doc.targets;
    expect(t.wwn).toBe(IQN);
    expect(t.fabric).toBe('iscsi');
    const [tpg1, tpg2] = t.tpgs;
    expect(tpg1.portals).toEqual([{ ip_address: '[::1]', iser: false, offload: false, port: 3260 }]);
    expect(tpg1.luns).toEqual([
      { index: 0, storage_object: '/backstores/fileio/ro' },
      { index: 1, storage_object: '/backstores/ramdisk/nul' },
    ]);
    expect(tpg1.node_acls).toEqual([
      {
        attributes: { nopin_response_timeout: 30, nopin_timeout: 15 },
        mapped_luns: [
          { index: 0, tpg_lun: 0, write_protect: true },
          { index: 1, tpg_lun: 1, write_protect: false },
        ],
        node_wwn: INIT,
      },
    ]);
    expect(tpg1.attributes).toEqual({ authentication: 0, cache_dynamic_acls: 0, default_cmdsn_depth: 64, demo_mode_write_protect: 0, generate_node_acls: 0, login_timeout: 15 });
    expect(tpg1.parameters).toEqual({ TargetAlias: 'lunkit' });
    expect(tpg2.attributes).toMatchObject({ generate_node_acls: 1, cache_dynamic_acls: 1 });
    expect(tpg2.enable).toBe(true);
  });

  it('lists what LIO cannot hold', () => {
    const t = `iscsi.targets["${IQN}"].tpgs`;
    expect(unsupported).toEqual([
      'backstores.ro.readOnly=true: LIO fileio has no read-only switch; every mapped LUN using it is exported with write_protect, demo-mode access is not protected',
      'backstores.ro.removable=true: LIO reports no removable media; left out',
      'backstores.existing.size: not set; rtslib then takes the size of the existing file, so /srv/existing.img must exist on the LIO host',
      'backstores.remote (nbd nbd://127.0.0.1:10809/x): LIO has no NBD backstore; LUNs using it are left out',
      `${t}["1"].portals[1] (127.0.0.1:0): "any free port" has no LIO equivalent; portal left out`,
      `${t}["1"].luns["2"] (remote): its backstore cannot move to LIO; LUN left out`,
      `${t}["1"].acls["${INIT}"].mappedLuns["2"]: TPG LUN 2 is left out, so is this mapping`,
      `${t}["2"].attributes.nopInInterval=5: LIO sets nopin_timeout per ACL and this TPG has none; left out`,
      'nbd.exports.x (backstore nul): LIO has no NBD server; export left out',
      'nbd.listen (127.0.0.1:10809): LIO has no NBD server; left out',
    ]);
  });

  it('writes discovery authentication as the iscsi fabric module', () => {
    const cfg = config();
    (cfg.iscsi as Record<string, unknown>).discoveryAuth = { enabled: true, chap: { userid: 'd', password: 'discovery-secret' }, mutualChap: { userid: 't', password: 'target-disc-secret' } };
    expect(exportTargetcli(cfg).doc.fabric_modules).toEqual([
      { discovery_enable_auth: true, discovery_mutual_password: 'target-disc-secret', discovery_mutual_userid: 't', discovery_password: 'discovery-secret', discovery_userid: 'd', name: 'iscsi' },
    ]);
  });

  it('sorts keys as rtslib does', () => {
    expect(Object.keys(doc)).toEqual(['fabric_modules', 'storage_objects', 'targets']);
    expect(Object.keys(doc.targets[0].tpgs[0])).toEqual(['attributes', 'enable', 'luns', 'node_acls', 'parameters', 'portals', 'tag']);
  });

  it('refuses an invalid lunkit configuration with its path', () => {
    const cfg = config();
    (cfg.backstores as Record<string, unknown>).bad = { type: 'ramdisk', size: '10X' };
    expect(() => exportTargetcli(cfg)).toThrow(ConfigError);
    expect(() => exportTargetcli(cfg)).toThrow(/backstores\.bad\.size: "10X": unknown unit/);
  });
});
