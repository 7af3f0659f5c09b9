// The pure parts of live reconfiguration: LUN maps and their diff, the CmdSN
// window depth, and which listeners a new portal list needs.
import { describe, expect, it } from 'vitest';
import type { LunMapping, ScsiDeviceHandle } from '../../../src/core/types.js';
import { SessionLunMap, computeLuns } from '../../../src/fabrics/iscsi/acl.js';
import { diffLuns } from '../../../src/fabrics/iscsi/live-update.js';
import { CmdSnWindow } from '../../../src/fabrics/iscsi/cmdsn.js';
import { PortalTable } from '../../../src/fabrics/iscsi/portals.js';
import { DEFAULT_TPG_ATTRIBUTES, type TpgConfig } from '../../../src/fabrics/iscsi/config.js';

const dev = (name: string): ScsiDeviceHandle => ({ name, serial: name });
const D0 = dev('d0');
const D1 = dev('d1');
const D2 = dev('d2');

function tpg(over: Partial<TpgConfig> = {}): TpgConfig {
  return {
    tag: 1,
    enabled: true,
    portals: [],
    luns: [
      { lun: 0, device: D0 },
      { lun: 1, device: D1 },
    ],
    acls: [],
    attributes: { ...DEFAULT_TPG_ATTRIBUTES },
    parameters: {},
    ...over,
  };
}

const m = (entries: Array<[number, ScsiDeviceHandle, boolean?]>): Map<number, LunMapping> =>
  new Map(entries.map(([lun, device, ro]) => [lun, { device, readOnly: ro ?? false }]));

describe('computeLuns (LIO node ACL / demo mode semantics)', () => {
  it('an ACL sees its mapped LUNs under their mapped numbers, with their read-only flag', () => {
    const t = tpg({ acls: [{ initiator: 'iqn.x:A', mappedLuns: [{ mappedLun: 7, tpgLun: 1, readOnly: true }, { mappedLun: 8, tpgLun: 9, readOnly: false }] }] });
    // Mapping to a TPG LUN that does not exist shows nothing; names compare case-insensitively.
    expect(computeLuns(t, 'IQN.X:a')).toEqual(m([[7, D1, true]]));
  });

  it('demo mode: every TPG LUN, read-only when demoModeWriteProtect; an ACL still wins', () => {
    const t = tpg({ attributes: { ...DEFAULT_TPG_ATTRIBUTES, generateNodeAcls: true, demoModeWriteProtect: true } });
    expect(computeLuns(t, 'iqn.x:any')).toEqual(m([[0, D0, true], [1, D1, true]]));
    t.acls = [{ initiator: 'iqn.x:any', mappedLuns: [] }];
    expect(computeLuns(t, 'iqn.x:any').size).toBe(0);
  });

  it('no ACL and no demo mode: nothing', () => {
    expect(computeLuns(tpg(), 'iqn.x:none').size).toBe(0);
  });
});

describe('SessionLunMap', () => {
  it('answers from its snapshot and lists LUNs in ascending order; replace() swaps both', () => {
    const map = new SessionLunMap(m([[3, D0], [1, D1]]));
    expect(map.list()).toEqual([1, 3]);
    expect(map.get(3)?.device).toBe(D0);
    map.replace(m([[2, D2]]));
    expect(map.list()).toEqual([2]);
    expect(map.get(3)).toBeUndefined();
    // list() hands out a copy: a caller cannot corrupt the map.
    map.list().push(99);
    expect(map.list()).toEqual([2]);
  });
});

describe('diffLuns', () => {
  it('nothing changed', () => {
    expect(diffLuns(m([[0, D0]]), m([[0, D0]]))).toEqual({ changed: false, gone: [] });
  });
  it('a LUN added: changed, nothing gone', () => {
    expect(diffLuns(m([[0, D0]]), m([[0, D0], [1, D1]]))).toEqual({ changed: true, gone: [] });
  });
  it('a LUN removed: changed and gone', () => {
    expect(diffLuns(m([[0, D0], [1, D1]]), m([[0, D0]]))).toEqual({ changed: true, gone: [1] });
  });
  it('a LUN number now pointing at another device counts as gone (its commands drain)', () => {
    expect(diffLuns(m([[0, D0]]), m([[0, D2]]))).toEqual({ changed: true, gone: [0] });
  });
  it('only the read-only flag flipped: not an inventory change', () => {
    expect(diffLuns(m([[0, D0, false]]), m([[0, D0, true]]))).toEqual({ changed: false, gone: [] });
  });
});

describe('CmdSnWindow.setDepth', () => {
  it('a deeper window opens at once; a shallower one never moves MaxCmdSN back', () => {
    const w = new CmdSnWindow<string>(1, 4);
    expect(w.maxCmdSN).toBe(4);
    w.setDepth(10);
    expect(w.maxCmdSN).toBe(10);
    w.setDepth(2);
    expect(w.maxCmdSN).toBe(10);
    // Once ExpCmdSN passes, the smaller depth rules: 9 delivered -> exp 10, window [10, 11].
    for (let i = 1; i <= 9; i++) w.offer(i, String(i));
    expect(w.refresh()).toBe(11);
  });
});

describe('PortalTable.plan', () => {
  const table = () => new PortalTable(() => undefined, {});

  it('shares one listener per host:port, gives port 0 its own, and keeps listeners of unchanged portals', () => {
    const pt = table();
    const t1 = tpg({ portals: [{ host: '127.0.0.1', port: 3260 }, { host: '127.0.0.1', port: 0 }] });
    const p1 = pt.plan('iqn.a', [t1]);
    expect(p1.fresh).toHaveLength(2);
    pt.commit(p1);
    // Another target on the same host:port shares the listener.
    const p2 = pt.plan('iqn.b', [tpg({ portals: [{ host: '127.0.0.1', port: 3260 }] })]);
    expect(p2.fresh).toHaveLength(0);
    expect(p2.refs[0].listener).toBe(p1.refs[0].listener);
    pt.commit(p2);
    // The same portals again: no new listener, the port-0 one kept.
    const p3 = pt.plan('iqn.a', [t1]);
    expect(p3.fresh).toHaveLength(0);
    expect(p3.refs.map((r) => r.listener)).toEqual(p1.refs.map((r) => r.listener));
    // A portal moved to another TPG tag is a new portal of that TPG, but the
    // host:port listener is still the shared one.
    const p4 = pt.plan('iqn.a', [{ ...t1, tag: 2, portals: [{ host: '127.0.0.1', port: 3260 }] }]);
    expect(p4.fresh).toHaveLength(0);
    pt.commit(p4);
    expect(pt.of('iqn.a').map((r) => r.tag)).toEqual([2]);
    // Nothing has been bound: the table is not listening.
    expect(pt.addresses()).toEqual([]);
  });

  it('two new portals on the same host:port in one plan need one listener', () => {
    const pt = table();
    const p = pt.plan('iqn.a', [
      tpg({ tag: 1, portals: [{ host: '::1', port: 3261 }] }),
      tpg({ tag: 2, portals: [{ host: '::1', port: 3261 }] }),
    ]);
    expect(p.fresh).toHaveLength(1);
    expect(p.refs[0].listener).toBe(p.refs[1].listener);
  });
});
