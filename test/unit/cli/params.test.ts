// Command-line arguments -> control request params, one pure function per
// verb (src/cli/params.ts); and the local refusals, which are UsageErrors
// (exit code 2) that name what is wrong.

import { describe, expect, it } from 'vitest';

import { UsageError } from '../../../src/cli/output.js';
import {
  aclChapParams,
  aclMapParams,
  aclParams,
  aclUnmapParams,
  backstoreCreateParams,
  backstoreResizeParams,
  discoveryAuthParams,
  lunAddParams,
  lunDeleteParams,
  nbdExportAddParams,
  portalParams,
  saveParams,
  setParams,
  targetCreateParams,
} from '../../../src/cli/params.js';

const T = 'iqn.2026-01.org.example:t1';
const I = 'iqn.1994-05.com.redhat:c1';

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('backstore create', () => {
  it('file: absolute path, size in bytes, thin flag', () => {
    expect(backstoreCreateParams({ type: 'file', name: 'disk0', path: 'img/d.img', size: '10G', thin: false, cwd: '/srv' })).toEqual({
      name: 'disk0',
      backstore: { type: 'file', path: '/srv/img/d.img', size: 10737418240, thin: false },
    });
    expect(backstoreCreateParams({ type: 'file', name: 'd', path: '/x.img' })).toEqual({ name: 'd', backstore: { type: 'file', path: '/x.img' } });
  });

  it('ramdisk, null and nbd', () => {
    expect(backstoreCreateParams({ type: 'ramdisk', name: 'rd0', size: '512M', blockSize: 4096, readOnly: true })).toEqual({
      name: 'rd0',
      backstore: { type: 'ramdisk', size: 536870912, blockSize: 4096, readOnly: true },
    });
    expect(backstoreCreateParams({ type: 'null', name: 'n', size: '1T' }).backstore).toEqual({ type: 'null', size: 1024 ** 4 });
    expect(backstoreCreateParams({ type: 'nbd', name: 'r', url: 'nbd://10.0.0.5:10809/e' }).backstore).toEqual({ type: 'nbd', url: 'nbd://10.0.0.5:10809/e' });
  });

  it('qcow2: a new image, an overlay, an existing image', () => {
    expect(backstoreCreateParams({ type: 'qcow2', name: 'vm0', path: 'vm0.qcow2', size: '20G', clusterSize: '128K', cwd: '/srv' }).backstore).toEqual({
      type: 'qcow2',
      path: '/srv/vm0.qcow2',
      create: true,
      size: 20 * 1024 ** 3,
      clusterSize: 131072,
    });
    expect(backstoreCreateParams({ type: 'qcow2', name: 'pc01', path: '/srv/pc01.qcow2', backing: 'golden.img', backingFormat: 'raw' }).backstore).toEqual({
      type: 'qcow2',
      path: '/srv/pc01.qcow2',
      create: true,
      backing: 'golden.img',
      backingFormat: 'raw',
    });
  });

  it.each([
    [{ type: 'qcow2', name: 'd' }, /needs --path/],
    [{ type: 'qcow2', name: 'd', path: '/x.qcow2', backingFormat: 'vmdk' }, /raw or qcow2/],
    [{ type: 'ramdisk', name: 'd', size: '1M', backing: 'x' }, /--backing does not apply to a ramdisk/],
    [{ type: 'disk', name: 'd', size: '1G' }, /unknown backstore type "disk"/],
    [{ type: 'file', name: 'd' }, /needs --path/],
    [{ type: 'ramdisk', name: 'd' }, /needs --size/],
    [{ type: 'ramdisk', name: 'd', size: '10X' }, /unknown unit "X"/],
    [{ type: 'ramdisk', name: 'd', size: '0' }, /greater than 0/],
    [{ type: 'ramdisk', name: 'd', size: '1000' }, /not a multiple of the block size 512/],
    [{ type: 'ramdisk', name: 'bad name', size: '1M' }, /names use A-Z/],
    [{ type: 'ramdisk', name: 'd', size: '1M', path: '/x' }, /--path does not apply to a ramdisk/],
    [{ type: 'nbd', name: 'd', url: 'http://x' }, /nbd:\/\//],
    [{ type: 'nbd', name: 'd', url: 'nbd://x/e', size: '1G' }, /--size does not apply/],
    [{ type: 'ramdisk', name: 'd', size: '1M', blockSize: 1024 }, /512 or 4096/],
  ])('refuses %j', (args, re) => {
    expect(usage(() => backstoreCreateParams(args)).message).toMatch(re);
  });

  it('resize takes a size with unit', () => {
    expect(backstoreResizeParams({ name: 'd', size: '20G' })).toEqual({ name: 'd', size: 20 * 1024 ** 3 });
    expect(usage(() => backstoreResizeParams({ name: 'd', size: 'big' })).code).toBe('ERR_INVALID_SIZE');
  });
});

describe('targets, portals, LUNs', () => {
  it('target create with portals, default TPG 1', () => {
    expect(targetCreateParams({ iqn: T, portal: ['127.0.0.1:3260', '[::1]:3261', 'host'] })).toEqual({
      iqn: T,
      tpg: 1,
      portals: ['127.0.0.1:3260', '[::1]:3261', 'host'],
    });
    expect(targetCreateParams({ iqn: T, tpg: 3, alias: 'lab' })).toEqual({ iqn: T, tpg: 3, alias: 'lab' });
  });

  it('refuses a bad IQN, portal or TPG with the reason', () => {
    const e = usage(() => targetCreateParams({ iqn: 'iqn.2026-13.org.example:t1' }));
    expect(e.code).toBe('ERR_INVALID_NAME');
    expect(e.message).toBe('target name "iqn.2026-13.org.example:t1" is not a valid iSCSI name: month 13 in "2026-13" is not 01..12');
    expect(usage(() => targetCreateParams({ iqn: T, portal: ['1.2.3.4:99999'] })).message).toMatch(/not host:port/);
    expect(usage(() => portalParams({ iqn: T, portal: '1.2.3.4:1', tpg: 0 })).message).toMatch(/TPG tag must be an integer 1..65535/);
  });

  it('portal, lun add and delete', () => {
    expect(portalParams({ iqn: T, portal: '10.0.0.1:3260' })).toEqual({ iqn: T, tpg: 1, portal: '10.0.0.1:3260' });
    expect(lunAddParams({ iqn: T, backstore: 'disk0' })).toEqual({ iqn: T, tpg: 1, backstore: 'disk0' });
    expect(lunAddParams({ iqn: T, backstore: 'disk0', lun: 5, tpg: 2 })).toEqual({ iqn: T, tpg: 2, backstore: 'disk0', lun: 5 });
    expect(lunDeleteParams({ iqn: T, lun: 0 })).toEqual({ iqn: T, tpg: 1, lun: 0 });
    expect(lunDeleteParams({ iqn: T, lun: 3, force: true })).toEqual({ iqn: T, tpg: 1, lun: 3, force: true });
    expect(usage(() => lunAddParams({ iqn: T, backstore: 'd', lun: 16384 })).message).toMatch(/0..16383/);
    expect(usage(() => lunDeleteParams({ iqn: T, lun: Number.NaN })).message).toMatch(/LUN must be an integer/);
  });
});

describe('ACLs', () => {
  it('add/delete check both names', () => {
    expect(aclParams({ iqn: T, initiator: I })).toEqual({ iqn: T, tpg: 1, initiator: I });
    expect(usage(() => aclParams({ iqn: T, initiator: 'client1' })).message).toMatch(/^initiator name "client1" is not a valid iSCSI name/);
  });

  it('chap: one-way, mutual, clear', () => {
    expect(aclChapParams({ iqn: T, initiator: I, userid: 'u', password: 'secretsecret12' })).toEqual({
      iqn: T,
      tpg: 1,
      initiator: I,
      chap: { userid: 'u', password: 'secretsecret12' },
    });
    expect(
      aclChapParams({ iqn: T, initiator: I, userid: 'u', password: 'secretsecret12', mutualUserid: 't', mutualPassword: 'othersecret34' }),
    ).toMatchObject({ chap: { userid: 'u', password: 'secretsecret12' }, mutualChap: { userid: 't', password: 'othersecret34' } });
    expect(aclChapParams({ iqn: T, initiator: I, clear: true })).toEqual({ iqn: T, tpg: 1, initiator: I, chap: null, mutualChap: null });
  });

  it.each([
    [{ userid: 'u' }, /--userid and --password go together/],
    [{ userid: 'u', password: 'short' }, /12 to 255 characters/],
    [{ mutualPassword: 'othersecret34' }, /--mutual-userid and --mutual-password go together/],
    [{}, /give --userid and --password/],
    [{ clear: true, userid: 'u', password: 'secretsecret12' }, /--clear removes/],
  ])('chap refuses %j', (extra, re) => {
    expect(usage(() => aclChapParams({ iqn: T, initiator: I, ...extra })).message).toMatch(re);
  });

  it('map and unmap', () => {
    expect(aclMapParams({ iqn: T, initiator: I, mappedLun: 0, tpgLun: 2 })).toEqual({ iqn: T, tpg: 1, initiator: I, mappedLun: 0, tpgLun: 2, readOnly: false });
    expect(aclMapParams({ iqn: T, initiator: I, mappedLun: 1, tpgLun: 3, readOnly: true, tpg: 2 })).toMatchObject({ tpg: 2, readOnly: true });
    expect(aclUnmapParams({ iqn: T, initiator: I, mappedLun: 4 })).toEqual({ iqn: T, tpg: 1, initiator: I, mappedLun: 4 });
  });
});

describe('set', () => {
  it('attributes: typed values, targetcli names accepted', () => {
    expect(setParams('attribute', { iqn: T, assignments: ['authentication=yes', 'default_cmdsn_depth=128', 'demoModeWriteProtect=0'] })).toEqual([
      { iqn: T, tpg: 1, name: 'authentication', value: true },
      { iqn: T, tpg: 1, name: 'defaultCmdsnDepth', value: 128 },
      { iqn: T, tpg: 1, name: 'demoModeWriteProtect', value: false },
    ]);
  });

  it('parameters are sent as text', () => {
    expect(setParams('parameter', { iqn: T, assignments: ['HeaderDigest=CRC32C,None', 'MaxBurstLength=1048576'], tpg: 2 })).toEqual([
      { iqn: T, tpg: 2, name: 'HeaderDigest', value: 'CRC32C,None' },
      { iqn: T, tpg: 2, name: 'MaxBurstLength', value: '1048576' },
    ]);
  });

  it.each([
    ['attribute', 'nosuch=1', /unknown TPG attribute "nosuch"/],
    ['attribute', 'authentication=maybe', /boolean/],
    ['attribute', 'loginTimeout=0', /integer 1..600/],
    ['attribute', 'loginTimeout', /not name=value/],
    ['parameter', 'Bad Key=1', /not a login key name/],
  ] as const)('%s %s is refused', (kind, a, re) => {
    expect(usage(() => setParams(kind, { iqn: T, assignments: [a] })).message).toMatch(re);
  });

  it('discovery-auth', () => {
    expect(discoveryAuthParams({ userid: 'd', password: 'discoverysecret' })).toEqual({ enabled: true, chap: { userid: 'd', password: 'discoverysecret' } });
    expect(discoveryAuthParams({ enable: false })).toEqual({ enabled: false });
    expect(usage(() => discoveryAuthParams({ enable: true })).message).toMatch(/needs --userid/);
  });
});

describe('nbd and save', () => {
  it('nbd export add', () => {
    expect(nbdExportAddParams({ name: 'disk0', backstore: 'disk0' })).toEqual({ name: 'disk0', backstore: 'disk0', readOnly: false });
    expect(nbdExportAddParams({ name: 'g', backstore: 'd', readOnly: true, description: 'x' })).toEqual({ name: 'g', backstore: 'd', readOnly: true, description: 'x' });
    expect(usage(() => nbdExportAddParams({ name: '', backstore: 'd' })).code).toBe('ERR_INVALID_NAME');
  });

  it('save makes a relative path absolute (the daemon has its own cwd)', () => {
    expect(saveParams({ file: 'lab.json', cwd: '/home/u' })).toEqual({ path: '/home/u/lab.json' });
    expect(saveParams({})).toEqual({});
  });
});
