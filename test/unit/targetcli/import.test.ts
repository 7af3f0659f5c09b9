// importTargetcli: what lunkit cannot represent is listed with its path (never
// silently dropped, never a secret printed), and input rtslib itself would
// refuse is an error naming the path.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { parseConfig } from '../../../src/daemon/config.js';
import { importTargetcli } from '../../../src/daemon/targetcli/from-targetcli.js';
import { TargetcliError } from '../../../src/daemon/targetcli/saveconfig-schema.js';

const text = (name: string): string => readFileSync(fileURLToPath(new URL(`../../fixtures/targetcli/${name}`, import.meta.url)), 'utf8');

const IQN = 'iqn.2026-11.io.lunkit:t1';

/** A minimal valid document to break one piece at a time. */
function base(): {
  storage_objects: Array<Record<string, unknown>>;
  targets: Array<{ wwn: string; fabric: string; tpgs: Array<Record<string, unknown> & { luns: Array<Record<string, unknown>>; node_acls: Array<Record<string, unknown>> }> }>;
  fabric_modules: Array<Record<string, unknown>>;
} {
  return {
    storage_objects: [{ name: 'd0', plugin: 'fileio', dev: '/srv/d0.img', size: 1048576, write_back: true }],
    targets: [
      {
        wwn: IQN,
        fabric: 'iscsi',
        tpgs: [
          {
            tag: 1,
            portals: [{ ip_address: '127.0.0.1', port: 3260 }],
            luns: [{ index: 0, storage_object: '/backstores/fileio/d0' }],
            node_acls: [{ node_wwn: 'iqn.2026-11.io.lunkit:init', mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] }],
          },
        ],
      },
    ],
    fabric_modules: [],
  };
}

function problems(doc: unknown): string[] {
  try {
    importTargetcli(doc);
  } catch (e) {
    expect(e).toBeInstanceOf(TargetcliError);
    expect((e as TargetcliError).code).toBe('ERR_TARGETCLI_INVALID');
    return (e as TargetcliError).problems;
  }
  throw new Error('import did not fail');
}

describe('importTargetcli: unsupported items', () => {
  const r = importTargetcli(text('unsupported.json'));

  it('still gives a valid lunkit configuration', () => {
    const cfg = parseConfig(r.config);
    expect(Object.keys(cfg.backstores).sort()).toEqual(['my_disk', 'odd', 'ok']);
    expect(Object.keys(cfg.iscsi.targets)).toEqual(['iqn.2026-11.io.lunkit:odd']);
  });

  it.each([
    ['mystery=true: no lunkit equivalent'],
    ['storage_objects[0] (pscsi/tape0): plugin "pscsi" has no lunkit backstore'],
    ['storage_objects[1] (user:rbd/rbd0): plugin "user:rbd" has no lunkit backstore'],
    ['storage_objects[2].attributes.block_size=1024: lunkit serves 512- or 4096-byte blocks'],
    ['storage_objects[2].attributes.emulate_tpws=0: differs from emulate_tpu=1'],
    ['storage_objects[2].attributes.emulate_pr=0: no lunkit equivalent (LIO default 1)'],
    ['storage_objects[2].attributes.frobnicate=3: no lunkit equivalent'],
    ['storage_objects[2].alua_tpgs[1] (site_b): ALUA target port groups'],
    ['storage_objects[3].name="my disk": renamed to "my_disk"'],
    ['storage_objects[4].wwn="a serial that is much too long'],
    ['fabric_modules[1] (srpt): fabric "srpt" is not served by lunkit'],
    ['targets[0] (loopback naa.5001405abcdef012): fabric "loopback" is not served by lunkit; target left out'],
    ['targets[1].tpgs[0].chap_userid="tpguser": TPG-wide CHAP'],
    ['targets[1].tpgs[0].chap_password=(secret): TPG-wide CHAP'],
    ['targets[1].tpgs[0].portals[0].iser=true'],
    ['targets[1].tpgs[0].portals[0].offload=true'],
    ['targets[1].tpgs[0].attributes.login_timeout=9999: lunkit takes 1..600'],
    ['targets[1].tpgs[0].attributes.netif_timeout=5: no lunkit equivalent (LIO default 2)'],
    ['targets[1].tpgs[0].attributes.generate_node_acls=1: demo mode with authentication=1'],
    ['targets[1].tpgs[0].luns[0].alua_tg_pt_gp_name="site_b"'],
    ['targets[1].tpgs[0].luns[1] (LUN 1): its storage object /backstores/pscsi/tape0 is not carried over'],
    ['targets[1].tpgs[0].node_acls[0] (iqn.2026-11.io.lunkit:short): lunkit needs CHAP'],
    ['targets[1].tpgs[0].node_acls[1] (iqn.2026-11.io.lunkit:nochap): authentication=1 but no CHAP'],
    ['targets[1].tpgs[0].node_acls[2].tag="group1"'],
    ['targets[1].tpgs[0].node_acls[2].mapped_luns[1] (mapped LUN 1): TPG LUN 1 is left out'],
    ['targets[1].tpgs[0].node_acls[2].attributes.dataout_timeout=7'],
    ['targets[1].tpgs[0].node_acls[*].attributes.nopin_timeout: differs between ACLs (5, 6)'],
    ['targets[1].tpgs[0].parameters.MaxConnections="4": kept, but lunkit currently negotiates MaxConnections=1'],
    ['targets[1].tpgs[0].parameters.MaxXmitDataSegmentLength="8192": not a login key'],
    ['targets[1].tpgs[0].parameters.X-com.example.Foo="1": not a login key'],
    ['targets[1].tpgs[1] (TPG 2): has no portals'],
  ])('lists %s', (start) => {
    expect(r.unsupported.filter((u) => u.startsWith(start))).toHaveLength(1);
  });

  it('lists nothing else', () => {
    expect(r.unsupported).toHaveLength(31);
  });

  it('never prints a secret', () => {
    const all = [...r.unsupported, ...r.notes].join('\n');
    for (const secret of ['tpg-wide-secret', 'short', 'a-good-long-secret', 'another-long-secret']) expect(all).not.toContain(`"${secret}"`);
  });

  it('fails closed: demo mode off, authentication on, ACLs without usable CHAP left out', () => {
    const tpg = parseConfig(r.config).iscsi.targets['iqn.2026-11.io.lunkit:odd'].tpgs['1'];
    expect(tpg.attributes.authentication).toBe(true);
    expect(tpg.attributes.generateNodeAcls).toBe(false);
    expect(Object.keys(tpg.acls).sort()).toEqual(['iqn.2026-11.io.lunkit:good', 'iqn.2026-11.io.lunkit:good2']);
    expect(tpg.acls['iqn.2026-11.io.lunkit:good'].mappedLuns).toEqual({ '0': 0, '2': { tpgLun: 3, readOnly: true } });
    expect(tpg.luns).toEqual({ '0': 'odd', '2': 'my_disk', '3': 'ok' });
  });

  it('notes LIO defaults it drops', () => {
    expect(r.notes).toContain('storage_objects[2].aio=true: lunkit always submits file I/O asynchronously (libuv thread pool)');
  });
});

describe('importTargetcli: mappings', () => {
  it('maps a block storage object to a file backstore that is never created', () => {
    const doc = base();
    doc.storage_objects.push({ name: 'sdc', plugin: 'block', dev: '/dev/sdc', readonly: true });
    const bs = parseConfig(importTargetcli(doc).config).backstores.sdc;
    expect(bs).toMatchObject({ type: 'file', path: '/dev/sdc', create: false, readOnly: true });
  });

  it('keeps the same plugin-less name for two plugins apart', () => {
    const doc = base();
    doc.storage_objects.push({ name: 'd0', plugin: 'ramdisk', size: 4096 });
    const r = importTargetcli(doc);
    expect(Object.keys(parseConfig(r.config).backstores)).toEqual(['d0', 'ramdisk_d0']);
    expect(r.unsupported).toEqual(['storage_objects[1].name="d0": renamed to "ramdisk_d0" (lunkit backstore names are unique across plugins and use A-Z a-z 0-9 _ . : -)']);
  });

  it('rounds a size that is not whole blocks down, and says so', () => {
    const doc = base();
    doc.storage_objects[0].size = 1048577;
    const r = importTargetcli(doc);
    expect(parseConfig(r.config).backstores.d0).toMatchObject({ size: 1048576 });
    expect(r.unsupported[0]).toMatch(/^storage_objects\[0\]\.size=1048577: not a multiple of the block size 512; lunkit uses 1048576/);
  });

  it('accepts the configfs plugin aliases (iblock, rd_mcp) and 0/1 for booleans', () => {
    const doc = base();
    doc.storage_objects.push({ name: 'r', plugin: 'rd_mcp', size: 8192, nullio: 1 });
    doc.targets[0].tpgs[0].luns.push({ index: 1, storage_object: '/backstores/ramdisk/r' });
    doc.targets[0].tpgs[0].enable = 0;
    const cfg = parseConfig(importTargetcli(doc).config);
    expect(cfg.backstores.r).toMatchObject({ type: 'null', size: 8192 });
    expect(cfg.iscsi.targets[IQN].tpgs['1']).toMatchObject({ enabled: false, luns: { '0': 'd0', '1': 'r' } });
  });

  it('accepts the document as text', () => {
    expect(parseConfig(importTargetcli(JSON.stringify(base())).config).iscsi.targets[IQN].tpgs['1'].portals).toEqual([{ host: '127.0.0.1', port: 3260 }]);
  });
});

describe('importTargetcli: invalid input names the path', () => {
  it('not JSON', () => {
    expect(problems('{"targets": [')[0]).toMatch(/^not valid JSON: /);
  });

  it('not an object', () => {
    expect(problems([])).toEqual(['(top level): expected an object with storage_objects, targets and fabric_modules']);
  });

  it('wrong types', () => {
    const doc = base() as unknown as { targets: Array<{ tpgs: Array<{ luns: Array<{ index: unknown }>; portals: Array<{ port: unknown }> }> }>; storage_objects: unknown };
    doc.targets[0].tpgs[0].luns[0].index = '0';
    doc.targets[0].tpgs[0].portals[0].port = 70000;
    const p = problems(doc);
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^targets\[0\]\.tpgs\[0\]\.luns\[0\]\.index: .*number/);
    expect(p[1]).toMatch(/^targets\[0\]\.tpgs\[0\]\.portals\[0\]\.port: /);
    expect(problems({ storage_objects: {} })[0]).toMatch(/^storage_objects: .*array/);
  });

  it('a LUN naming a missing storage object', () => {
    const doc = base();
    doc.targets[0].tpgs[0].luns[0].storage_object = '/backstores/fileio/nothere';
    expect(problems(doc)).toEqual(['targets[0].tpgs[0].luns[0].storage_object: "/backstores/fileio/nothere" names no storage object in storage_objects']);
  });

  it('a malformed storage object path', () => {
    const doc = base();
    doc.targets[0].tpgs[0].luns[0].storage_object = 'fileio/d0';
    expect(problems(doc)).toEqual(['targets[0].tpgs[0].luns[0].storage_object: expected "/backstores/<plugin>/<name>"']);
  });

  it('duplicates: LUN, mapped LUN, ACL, TPG, target, storage object', () => {
    const doc = base();
    doc.storage_objects.push({ ...doc.storage_objects[0] });
    doc.targets[0].tpgs[0].luns.push({ index: 0, storage_object: '/backstores/fileio/d0' });
    const acl = doc.targets[0].tpgs[0].node_acls[0] as { mapped_luns: unknown[] };
    acl.mapped_luns.push({ index: 0, tpg_lun: 0 });
    doc.targets[0].tpgs[0].node_acls.push({ node_wwn: 'iqn.2026-11.io.lunkit:init' });
    doc.targets[0].tpgs.push({ ...doc.targets[0].tpgs[0], luns: [], node_acls: [] });
    doc.targets.push({ ...doc.targets[0], tpgs: [] });
    expect(problems(doc)).toEqual([
      'storage_objects[1]: storage object fileio/d0 appears twice',
      'targets[0].tpgs[0].luns[1].index: LUN 0 appears twice in TPG 1',
      'targets[0].tpgs[0].node_acls[0].mapped_luns[1].index: mapped LUN 0 appears twice for iqn.2026-11.io.lunkit:init',
      'targets[0].tpgs[0].node_acls[1].node_wwn: ACL for iqn.2026-11.io.lunkit:init appears twice in TPG 1',
      `targets[0].tpgs[1].tag: TPG 1 appears twice in ${IQN}`,
      `targets[1].wwn: target ${IQN} appears twice`,
    ]);
  });

  it('a mapped LUN pointing at no TPG LUN', () => {
    const doc = base();
    (doc.targets[0].tpgs[0].node_acls[0] as { mapped_luns: unknown[] }).mapped_luns.push({ index: 1, tpg_lun: 9 });
    expect(problems(doc)).toEqual(['targets[0].tpgs[0].node_acls[0].mapped_luns[1].tpg_lun: the TPG has no LUN 9']);
  });

  it('bad iSCSI names', () => {
    const doc = base();
    doc.targets[0].wwn = 'iqn.2026-13.io.lunkit:t1';
    doc.targets[0].tpgs[0].node_acls[0].node_wwn = 'Host1';
    expect(problems(doc)).toEqual(['targets[0].wwn: "iqn.2026-13.io.lunkit:t1": month 13 in "2026-13" is not 01..12']);
    doc.targets[0].wwn = IQN;
    expect(problems(doc)[0]).toMatch(/^targets\[0\]\.tpgs\[0\]\.node_acls\[0\]\.node_wwn: "Host1": iSCSI names are lower case/);
  });

  it('missing dev or size', () => {
    const doc = base();
    doc.storage_objects.push({ name: 'f', plugin: 'fileio' }, { name: 'r', plugin: 'ramdisk' });
    expect(problems(doc)).toEqual(['storage_objects[1].dev: a fileio storage object needs the path of its file', 'storage_objects[2].size: a ramdisk needs its size in bytes']);
  });

  it('discovery authentication on without credentials lunkit can hold', () => {
    const doc = base();
    doc.fabric_modules.push({ name: 'iscsi', discovery_enable_auth: true, discovery_userid: 'u', discovery_password: 'short' });
    expect(problems(doc)).toEqual(['fabric_modules[0]: discovery authentication is on, but lunkit needs a CHAP user name and a secret of 12 to 255 characters (RFC 7143 §12.1.3)']);
  });
});
