// The control methods as pure functions (document, params) -> document: each
// method's effect and each of its error codes, plus the whole-document
// validation the daemon runs after them.

import { describe, expect, it } from 'vitest';
import { emptyConfigDoc, validateDoc, type ConfigDoc } from '../../../src/daemon/config-doc.js';
import { ControlError } from '../../../src/daemon/errors.js';
import { CONFIG_OPS } from '../../../src/daemon/config-ops.js';

const IQN = 'iqn.2026-11.io.lunkit:t1';
const INI = 'iqn.2026-11.io.lunkit:host1';
const SECRET = { userid: 'user', password: 'secret-12345' };
const MUTUAL = { userid: 'target', password: 'mutual-12345' };

/** Runs one op and validates the result whole, as the daemon does. */
function run(doc: ConfigDoc, method: string, params: Record<string, unknown>): { doc: ConfigDoc; result?: Record<string, unknown> } {
  const out = CONFIG_OPS[method](structuredClone(doc), params);
  return { doc: validateDoc(out.doc).doc, result: out.result };
}

function fails(doc: ConfigDoc, method: string, params: Record<string, unknown>, code: string): ControlError {
  const before = structuredClone(doc);
  let err: unknown;
  try {
    CONFIG_OPS[method](structuredClone(doc), params);
  } catch (e) {
    err = e;
  }
  expect(err, `${method} should throw ${code}`).toBeInstanceOf(ControlError);
  expect((err as ControlError).code).toBe(code);
  expect(doc).toEqual(before);
  return err as ControlError;
}

/** A document with a ramdisk, a file backstore, a target with LUN 0 and an ACL mapping it. */
function base(): ConfigDoc {
  let d = emptyConfigDoc();
  d = run(d, 'backstore.create', { name: 'ram0', backstore: { type: 'ramdisk', size: '1M' } }).doc;
  d = run(d, 'backstore.create', { name: 'file0', backstore: { type: 'file', path: '/tmp/x.img', size: 4096 } }).doc;
  d = run(d, 'target.create', { iqn: IQN, portals: ['127.0.0.1:0'] }).doc;
  d = run(d, 'lun.add', { iqn: IQN, tpg: 1, backstore: 'ram0' }).doc;
  d = run(d, 'acl.add', { iqn: IQN, tpg: 1, initiator: INI }).doc;
  d = run(d, 'acl.map', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 0, tpgLun: 0 }).doc;
  return d;
}

const tpgOf = (d: ConfigDoc) => d.iscsi.targets[IQN].tpgs['1'];

describe('backstore ops', () => {
  it('backstore.create fills defaults and sizes in bytes', () => {
    const d = base();
    expect(d.backstores.ram0).toEqual({ type: 'ramdisk', size: 1048576, blockSize: 512, readOnly: false, removable: false });
    expect(d.backstores.file0).toMatchObject({ type: 'file', path: '/tmp/x.img', size: 4096, create: true, thin: true });
  });
  it('backstore.create errors', () => {
    const d = base();
    fails(d, 'backstore.create', { name: 'ram0', backstore: { type: 'null', size: 4096 } }, 'ERR_EXISTS');
    fails(d, 'backstore.create', { name: 'bad name!', backstore: { type: 'null', size: 4096 } }, 'ERR_INVALID_PARAMS');
    expect(fails(d, 'backstore.create', { name: 'n', backstore: { type: 'null', size: '10X' } }, 'ERR_INVALID_PARAMS').path).toBe('backstores.n.size');
    fails(d, 'backstore.create', { name: 'n', backstore: { type: 'null', size: 1000 } }, 'ERR_INVALID_PARAMS');
    fails(d, 'backstore.create', { name: 'n', backstore: { type: 'null', size: 0 } }, 'ERR_INVALID_PARAMS');
    fails(d, 'backstore.create', { name: 'n', backstore: { type: 'tape' } }, 'ERR_INVALID_PARAMS');
    fails(d, 'backstore.create', { name: 'n' }, 'ERR_INVALID_PARAMS');
  });
  it('backstore.delete refuses while used by a LUN or an NBD export, naming them', () => {
    let d = base();
    d = run(d, 'nbd.export.add', { name: 'e', backstore: 'ram0' }).doc;
    const e = fails(d, 'backstore.delete', { name: 'ram0' }, 'ERR_IN_USE');
    expect(e.message).toContain(`LUN 0 of ${IQN} tpg 1`);
    expect(e.message).toContain('NBD export "e"');
    expect(e.path).toBe('backstores.ram0');
    fails(d, 'backstore.delete', { name: 'nope' }, 'ERR_NOT_FOUND');
    expect(run(d, 'backstore.delete', { name: 'file0' }).doc.backstores.file0).toBeUndefined();
  });
  it('backstore.resize takes units and checks the block size', () => {
    const d = base();
    const r = run(d, 'backstore.resize', { name: 'ram0', size: '2M' });
    expect(r.doc.backstores.ram0.type === 'ramdisk' && r.doc.backstores.ram0.size).toBe(2 * 1048576);
    expect(r.result).toEqual({ size: 2097152 });
    fails(d, 'backstore.resize', { name: 'nope', size: '2M' }, 'ERR_NOT_FOUND');
    fails(d, 'backstore.resize', { name: 'ram0', size: 'big' }, 'ERR_INVALID_PARAMS');
    fails(d, 'backstore.resize', { name: 'ram0', size: 4097 }, 'ERR_INVALID_PARAMS');
  });
});

describe('target, tpg and portal ops', () => {
  it('target.create defaults to TPG 1 on 0.0.0.0:3260 and checks the name', () => {
    const d = run(emptyConfigDoc(), 'target.create', { iqn: IQN, alias: 'a' }).doc;
    expect(d.iscsi.targets[IQN]).toMatchObject({ alias: 'a', tpgs: { '1': { portals: ['0.0.0.0:3260'], enabled: true, luns: {}, acls: {} } } });
    expect(fails(d, 'target.create', { iqn: 'iqn.bad' }, 'ERR_INVALID_PARAMS').message).toMatch(/iqn\.bad/);
    fails(d, 'target.create', { iqn: IQN }, 'ERR_EXISTS');
    fails(d, 'target.create', { iqn: 'iqn.2026-11.io.lunkit:t2', portals: ['nope:99999'] }, 'ERR_INVALID_PARAMS');
    fails(d, 'target.create', { iqn: 'iqn.2026-11.io.lunkit:t2', tpg: 0 }, 'ERR_INVALID_PARAMS');
  });
  it('target.delete', () => {
    expect(run(base(), 'target.delete', { iqn: IQN }).doc.iscsi.targets).toEqual({});
    fails(base(), 'target.delete', { iqn: 'iqn.2026-11.io.lunkit:none' }, 'ERR_NOT_FOUND');
  });
  it('tpg.create / tpg.delete', () => {
    const d = run(base(), 'tpg.create', { iqn: IQN, tpg: 2, portals: ['[::1]:3261'] }).doc;
    expect(d.iscsi.targets[IQN].tpgs['2'].portals).toEqual(['[::1]:3261']);
    fails(d, 'tpg.create', { iqn: IQN, tpg: 2 }, 'ERR_EXISTS');
    fails(d, 'tpg.create', { iqn: 'iqn.2026-11.io.lunkit:none', tpg: 3 }, 'ERR_NOT_FOUND');
    expect(run(d, 'tpg.delete', { iqn: IQN, tpg: 2 }).doc.iscsi.targets[IQN].tpgs['2']).toBeUndefined();
    fails(d, 'tpg.delete', { iqn: IQN, tpg: 9 }, 'ERR_NOT_FOUND');
  });
  it('portal.add normalises, portal.delete removes; the last portal cannot go', () => {
    const d = run(base(), 'portal.add', { iqn: IQN, tpg: 1, portal: '10.0.0.1' }).doc;
    expect(tpgOf(d).portals).toEqual(['127.0.0.1:0', '10.0.0.1:3260']);
    fails(d, 'portal.add', { iqn: IQN, tpg: 1, portal: '10.0.0.1:3260' }, 'ERR_EXISTS');
    fails(d, 'portal.add', { iqn: IQN, tpg: 1, portal: '[zz' }, 'ERR_INVALID_PARAMS');
    const d2 = run(d, 'portal.delete', { iqn: IQN, tpg: 1, portal: '10.0.0.1:3260' }).doc;
    expect(tpgOf(d2).portals).toEqual(['127.0.0.1:0']);
    fails(d2, 'portal.delete', { iqn: IQN, tpg: 1, portal: '10.0.0.9:3260' }, 'ERR_NOT_FOUND');
    const last = CONFIG_OPS['portal.delete'](structuredClone(d2), { iqn: IQN, tpg: 1, portal: '127.0.0.1:0' }).doc;
    expect(() => validateDoc(last)).toThrow(/at least one portal/);
  });
});

describe('LUN ops', () => {
  it('lun.add picks the lowest free number', () => {
    let d = base();
    const r = run(d, 'lun.add', { iqn: IQN, tpg: 1, backstore: 'file0' });
    expect(r.result).toEqual({ lun: 1 });
    d = run(r.doc, 'lun.add', { iqn: IQN, tpg: 1, backstore: 'file0', lun: 5 }).doc;
    expect(tpgOf(d).luns).toEqual({ '0': 'ram0', '1': 'file0', '5': 'file0' });
  });
  it('lun.add errors', () => {
    const d = base();
    fails(d, 'lun.add', { iqn: IQN, tpg: 1, backstore: 'nope' }, 'ERR_NOT_FOUND');
    fails(d, 'lun.add', { iqn: IQN, tpg: 1, backstore: 'ram0', lun: 0 }, 'ERR_EXISTS');
    fails(d, 'lun.add', { iqn: IQN, tpg: 1, backstore: 'ram0', lun: 16384 }, 'ERR_INVALID_PARAMS');
    fails(d, 'lun.add', { iqn: IQN, tpg: 2, backstore: 'ram0' }, 'ERR_NOT_FOUND');
    fails(d, 'lun.add', { iqn: IQN, tpg: 'one', backstore: 'ram0' }, 'ERR_INVALID_PARAMS');
  });
  it('lun.delete refuses while mapped unless force, which unmaps too', () => {
    const d = base();
    expect(fails(d, 'lun.delete', { iqn: IQN, tpg: 1, lun: 0 }, 'ERR_IN_USE').message).toContain(INI);
    const f = run(d, 'lun.delete', { iqn: IQN, tpg: 1, lun: 0, force: true }).doc;
    expect(tpgOf(f).luns).toEqual({});
    expect(tpgOf(f).acls[INI].mappedLuns).toEqual({});
    fails(d, 'lun.delete', { iqn: IQN, tpg: 1, lun: 7 }, 'ERR_NOT_FOUND');
  });
});

describe('ACL ops', () => {
  it('acl.add / acl.delete', () => {
    const d = base();
    fails(d, 'acl.add', { iqn: IQN, tpg: 1, initiator: INI }, 'ERR_EXISTS');
    fails(d, 'acl.add', { iqn: IQN, tpg: 1, initiator: 'host1' }, 'ERR_INVALID_PARAMS');
    const d2 = run(d, 'acl.add', { iqn: IQN, tpg: 1, initiator: 'iqn.2026-11.io.lunkit:host2', chap: SECRET }).doc;
    expect(tpgOf(d2).acls['iqn.2026-11.io.lunkit:host2']).toEqual({ mappedLuns: {}, chap: SECRET });
    expect(tpgOf(run(d2, 'acl.delete', { iqn: IQN, tpg: 1, initiator: INI }).doc).acls[INI]).toBeUndefined();
    fails(d, 'acl.delete', { iqn: IQN, tpg: 1, initiator: 'iqn.2026-11.io.lunkit:zz' }, 'ERR_NOT_FOUND');
  });
  it('acl.chap sets and removes one-way and mutual CHAP', () => {
    const d = run(base(), 'acl.chap', { iqn: IQN, tpg: 1, initiator: INI, chap: SECRET, mutualChap: MUTUAL }).doc;
    expect(tpgOf(d).acls[INI]).toMatchObject({ chap: SECRET, mutualChap: MUTUAL });
    const d2 = run(d, 'acl.chap', { iqn: IQN, tpg: 1, initiator: INI, mutualChap: null }).doc;
    expect(tpgOf(d2).acls[INI].chap).toEqual(SECRET);
    expect(tpgOf(d2).acls[INI].mutualChap).toBeUndefined();
    fails(d, 'acl.chap', { iqn: IQN, tpg: 1, initiator: INI, chap: { userid: 'u', password: 'short' } }, 'ERR_INVALID_PARAMS');
    fails(d, 'acl.chap', { iqn: IQN, tpg: 1, initiator: 'iqn.2026-11.io.lunkit:zz', chap: SECRET }, 'ERR_NOT_FOUND');
  });
  it('acl.map / acl.unmap', () => {
    const d = run(base(), 'lun.add', { iqn: IQN, tpg: 1, backstore: 'file0' }).doc;
    const m = run(d, 'acl.map', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 3, tpgLun: 1, readOnly: true }).doc;
    expect(tpgOf(m).acls[INI].mappedLuns).toEqual({ '0': { tpgLun: 0, readOnly: false }, '3': { tpgLun: 1, readOnly: true } });
    fails(m, 'acl.map', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 3, tpgLun: 0 }, 'ERR_EXISTS');
    fails(m, 'acl.map', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 4, tpgLun: 9 }, 'ERR_NOT_FOUND');
    const u = run(m, 'acl.unmap', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 3 }).doc;
    expect(Object.keys(tpgOf(u).acls[INI].mappedLuns)).toEqual(['0']);
    fails(u, 'acl.unmap', { iqn: IQN, tpg: 1, initiator: INI, mappedLun: 3 }, 'ERR_NOT_FOUND');
  });
});

describe('attributes, parameters, discovery auth', () => {
  it('attribute.set takes typed or string values within range', () => {
    let d = run(base(), 'attribute.set', { iqn: IQN, tpg: 1, name: 'defaultCmdsnDepth', value: '128' }).doc;
    d = run(d, 'attribute.set', { iqn: IQN, tpg: 1, name: 'generateNodeAcls', value: 'true' }).doc;
    expect(tpgOf(d).attributes).toMatchObject({ defaultCmdsnDepth: 128, generateNodeAcls: true });
    fails(d, 'attribute.set', { iqn: IQN, tpg: 1, name: 'defaultCmdsnDepth', value: 9999 }, 'ERR_INVALID_PARAMS');
    fails(d, 'attribute.set', { iqn: IQN, tpg: 1, name: 'noSuch', value: 1 }, 'ERR_INVALID_PARAMS');
    fails(d, 'attribute.set', { iqn: IQN, tpg: 1, name: 'authentication', value: 'maybe' }, 'ERR_INVALID_PARAMS');
  });
  it('authentication on with an ACL without CHAP is an invalid configuration', () => {
    const out = CONFIG_OPS['attribute.set'](base(), { iqn: IQN, tpg: 1, name: 'authentication', value: true }).doc;
    expect(() => validateDoc(out)).toThrow(/no chap credentials/);
  });
  it('parameter.set sets login keys, null removes', () => {
    const d = run(base(), 'parameter.set', { iqn: IQN, tpg: 1, name: 'MaxRecvDataSegmentLength', value: 65536 }).doc;
    expect(tpgOf(d).parameters).toEqual({ MaxRecvDataSegmentLength: '65536' });
    expect(tpgOf(run(d, 'parameter.set', { iqn: IQN, tpg: 1, name: 'MaxRecvDataSegmentLength', value: null }).doc).parameters).toEqual({});
    fails(d, 'parameter.set', { iqn: IQN, tpg: 1, name: 'NotAKey', value: '1' }, 'ERR_INVALID_PARAMS');
  });
  it('discoveryAuth.set', () => {
    const d = run(base(), 'discoveryAuth.set', { enabled: true, chap: SECRET }).doc;
    expect(d.iscsi.discoveryAuth).toEqual({ enabled: true, chap: SECRET });
    fails(d, 'discoveryAuth.set', { chap: SECRET }, 'ERR_INVALID_PARAMS');
    const off = run(d, 'discoveryAuth.set', { enabled: false, chap: null }).doc;
    expect(off.iscsi.discoveryAuth).toEqual({ enabled: false });
  });
});

describe('NBD export ops and config.clear', () => {
  it('nbd.export.add creates the NBD section', () => {
    const d = run(base(), 'nbd.export.add', { name: 'disk', backstore: 'ram0', description: 'd' }).doc;
    expect(d.nbd).toEqual({ listen: ['127.0.0.1:10809'], exports: { disk: { backstore: 'ram0', readOnly: false, description: 'd' } } });
    fails(d, 'nbd.export.add', { name: 'disk', backstore: 'ram0' }, 'ERR_EXISTS');
    fails(d, 'nbd.export.add', { name: 'x', backstore: 'nope' }, 'ERR_NOT_FOUND');
    expect(run(d, 'nbd.export.delete', { name: 'disk' }).doc.nbd!.exports).toEqual({});
    fails(d, 'nbd.export.delete', { name: 'nope' }, 'ERR_NOT_FOUND');
  });
  it('config.clear empties everything', () => {
    expect(run(base(), 'config.clear', {}).doc).toEqual(emptyConfigDoc());
  });
});

describe('FUSE export ops', () => {
  it('fuse.export.add puts a file in the default directory, then in the only one there is', () => {
    const r = run(base(), 'fuse.export.add', { name: 'disk', backstore: 'ram0' });
    expect(r.result).toEqual({ mountpoint: '/run/lunkit/fuse', file: '/run/lunkit/fuse/disk' });
    expect(r.doc.fuse).toEqual({ '/run/lunkit/fuse': { exports: { disk: { backstore: 'ram0', readOnly: false } }, directIo: false, allowOther: false } });
    const moved = run(base(), 'fuse.export.add', { name: 'a', backstore: 'ram0', mountpoint: '/mnt/luns', readOnly: true }).doc;
    const second = run(moved, 'fuse.export.add', { name: 'b', backstore: 'file0' });
    expect(second.result).toEqual({ mountpoint: '/mnt/luns', file: '/mnt/luns/b' });
    expect(Object.keys(second.doc.fuse!['/mnt/luns'].exports)).toEqual(['a', 'b']);
  });
  it('fuse.export.add refuses a duplicate, a missing backstore, a name with "/" and a relative directory', () => {
    const d = run(base(), 'fuse.export.add', { name: 'disk', backstore: 'ram0' }).doc;
    fails(d, 'fuse.export.add', { name: 'disk', backstore: 'file0' }, 'ERR_EXISTS');
    fails(d, 'fuse.export.add', { name: 'x', backstore: 'nope' }, 'ERR_NOT_FOUND');
    fails(d, 'fuse.export.add', { name: 'a/b', backstore: 'ram0' }, 'ERR_INVALID_PARAMS');
    fails(d, 'fuse.export.add', { name: '..', backstore: 'ram0' }, 'ERR_INVALID_PARAMS');
    fails(d, 'fuse.export.add', { name: 'x', backstore: 'ram0', mountpoint: 'rel/dir' }, 'ERR_INVALID_PARAMS');
  });
  it('a FUSE export keeps its backstore from being deleted; deleting the last export removes the directory', () => {
    const d = run(base(), 'fuse.export.add', { name: 'disk', backstore: 'file0' }).doc;
    const e = fails(d, 'backstore.delete', { name: 'file0' }, 'ERR_IN_USE');
    expect(e.message).toContain('FUSE export /run/lunkit/fuse/disk');
    fails(d, 'fuse.export.delete', { name: 'nope' }, 'ERR_NOT_FOUND');
    expect(run(d, 'fuse.export.delete', { name: 'disk' }).doc.fuse).toBeUndefined();
  });
  it('the whole-document check names a FUSE export whose backstore is missing', () => {
    const d = run(base(), 'fuse.export.add', { name: 'disk', backstore: 'ram0' }).doc;
    d.fuse!['/run/lunkit/fuse'].exports.disk.backstore = 'gone';
    expect(() => validateDoc(d)).toThrow(/fuse\["\/run\/lunkit\/fuse"\]\.exports\.disk\.backstore|fuse.*disk.*backstore/);
  });
});
