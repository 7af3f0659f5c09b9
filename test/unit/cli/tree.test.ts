// `lunkit ls` rendering: golden text written by hand for a configuration with
// every kind of node. A narrow width makes every line take the minimum three
// dots, so the text below shows the layout plainly; one test checks the
// filling to a width.

import { describe, expect, it } from 'vitest';

import type { ConfigDoc } from '../../../src/daemon/config-doc.js';
import { buildTree, findNode, renderTree } from '../../../src/cli/tree.js';

const attrs = {
  authentication: true,
  generateNodeAcls: false,
  demoModeWriteProtect: false,
  defaultCmdsnDepth: 64,
  loginTimeout: 15,
  nopInInterval: 15,
  nopInTimeout: 30,
};

const cfg: ConfigDoc = {
  version: 1,
  backstores: {
    disk0: { type: 'file', path: '/srv/disk0.img', size: 10 * 1024 ** 3, blockSize: 512, create: true, thin: true, writeCache: true, readOnly: false, removable: false },
    rd0: { type: 'ramdisk', size: 512 * 1024 ** 2, blockSize: 4096, readOnly: true, removable: false },
    remote: { type: 'nbd', url: 'nbd://10.0.0.5/e', blockSize: 512, readOnly: false, removable: false, connectTimeoutMs: 10000, retries: 5 },
  },
  iscsi: {
    targets: {
      'iqn.2026-01.org.example:t1': {
        tpgs: {
          '1': {
            enabled: true,
            portals: ['127.0.0.1:3260', '[::1]:3261'],
            luns: { '10': 'rd0', '2': 'disk0' },
            acls: {
              'iqn.1994-05.com.redhat:c1': {
                mappedLuns: { '0': { tpgLun: 2, readOnly: false }, '1': { tpgLun: 10, readOnly: true } },
                chap: { userid: 'u', password: 'secretsecret12' },
                mutualChap: { userid: 't', password: 'othersecret34' },
              },
            },
            attributes: attrs,
            parameters: {},
          },
        },
      },
    },
  },
  nbd: { listen: ['127.0.0.1:10809'], exports: { golden: { backstore: 'disk0', readOnly: true, description: 'base' } } },
};

describe('lunkit ls tree', () => {
  it('renders every kind of node like targetcli', () => {
    expect(renderTree(buildTree(cfg), 10)).toBe(
      [
        'o- / ... [...]',
        '  o- backstores ... [...]',
        '  | o- file ... [Storage Objects: 1]',
        '  | | o- disk0 ... [/srv/disk0.img (10G) thin]',
        '  | o- ramdisk ... [Storage Objects: 1]',
        '  | | o- rd0 ... [512M bs=4096 ro]',
        '  | o- null ... [Storage Objects: 0]',
        '  | o- nbd ... [Storage Objects: 1]',
        '  |   o- remote ... [nbd://10.0.0.5/e]',
        '  o- iscsi ... [Targets: 1]',
        '  | o- iqn.2026-01.org.example:t1 ... [TPGs: 1]',
        '  |   o- tpg1 ... [no-gen-acls, auth]',
        '  |     o- acls ... [ACLs: 1]',
        '  |     | o- iqn.1994-05.com.redhat:c1 ... [Mapped LUNs: 2, mutual CHAP]',
        '  |     |   o- mapped_lun0 ... [lun2 disk0 (rw)]',
        '  |     |   o- mapped_lun1 ... [lun10 rd0 (ro)]',
        '  |     o- luns ... [LUNs: 2]',
        '  |     | o- lun2 ... [file/disk0 (/srv/disk0.img)]',
        '  |     | o- lun10 ... [ramdisk/rd0]',
        '  |     o- portals ... [Portals: 2]',
        '  |       o- 127.0.0.1:3260 ... [OK]',
        '  |       o- [::1]:3261 ... [OK]',
        '  o- nbd ... [listen 127.0.0.1:10809]',
        '    o- exports ... [Exports: 1]',
        '      o- golden ... [disk0 (ro) "base"]',
        '',
      ].join('\n'),
    );
  });

  it('fills each line with dots to the width', () => {
    const empty: ConfigDoc = { version: 1, backstores: {}, iscsi: { targets: {} } };
    const text = renderTree(buildTree(empty), 40);
    expect(text.split('\n').slice(0, 3)).toEqual([
      'o- / ............................. [...]',
      '  o- backstores .................. [...]',
      '  | o- file ....... [Storage Objects: 0]',
    ]);
    expect(text).toContain('  o- nbd ................. [not serving]\n');
  });

  it('finds a subtree by path and renders it from there', () => {
    const n = findNode(buildTree(cfg), '/iscsi/iqn.2026-01.org.example:t1/tpg1/luns');
    expect(n).toBeDefined();
    expect(renderTree(n!, 10)).toBe('o- luns ... [LUNs: 2]\n  o- lun2 ... [file/disk0 (/srv/disk0.img)]\n  o- lun10 ... [ramdisk/rd0]\n');
    expect(n!.data).toEqual({ '10': 'rd0', '2': 'disk0' });
    expect(findNode(buildTree(cfg), 'backstores/ramdisk/rd0')?.data).toEqual(cfg.backstores.rd0);
    expect(findNode(buildTree(cfg), '/iscsi/nope')).toBeUndefined();
    expect(findNode(buildTree(cfg), '/')?.data).toBe(cfg);
  });

  it('shows a LUN whose backstore is missing and a disabled TPG', () => {
    const broken: ConfigDoc = {
      version: 1,
      backstores: {},
      iscsi: {
        targets: {
          'eui.0123456789abcdef': {
            alias: 'lab',
            tpgs: { '2': { enabled: false, portals: ['0.0.0.0:3260'], luns: { '0': 'gone' }, acls: {}, attributes: { ...attrs, authentication: false, generateNodeAcls: true }, parameters: {} } },
          },
        },
      },
    };
    const text = renderTree(buildTree(broken), 10);
    expect(text).toContain('  | o- eui.0123456789abcdef ... [lab, TPGs: 1]\n');
    expect(text).toContain('  |   o- tpg2 ... [disabled, gen-acls, no-auth]\n');
    expect(text).toContain('  |     | o- lun0 ... [gone (missing)]\n');
  });
});
