// config-diff.ts: per-object add/change/remove between canonical documents,
// config-error paths, masked secrets, nested collections as objects of their own.

import { describe, expect, it } from 'vitest';

import { diffConfig, MASK, renderDiff } from '../../../src/daemon/config-diff.js';
import { validateDoc } from '../../../src/daemon/config-doc.js';

const T1 = 'iqn.2026-01.org.example:t1';
const T2 = 'iqn.2026-01.org.example:t2';
const I1 = 'iqn.1994-05.com.redhat:c1';

interface TestTpg {
  portals: string[];
  luns: Record<string, string>;
  acls?: Record<string, { chap: { userid: string; password: string } }>;
  attributes?: Record<string, number>;
}
interface TestDoc {
  backstores: Record<string, unknown>;
  iscsi: { targets: Record<string, { tpgs: Record<string, TestTpg> }> };
  nbd?: unknown;
  limits?: unknown;
}

function doc(mut: (d: TestDoc) => void = () => {}): unknown {
  const d: TestDoc = {
    backstores: { a: { type: 'ramdisk', size: 1 << 20 }, b: { type: 'ramdisk', size: 1 << 20 } },
    iscsi: {
      targets: {
        [T1]: { tpgs: { '1': { portals: ['127.0.0.1:3260'], luns: { '0': 'a' }, acls: { [I1]: { chap: { userid: 'u', password: 'secretpass12' } } } } } },
        [T2]: { tpgs: { '1': { portals: ['127.0.0.1:3260'], luns: { '0': 'b' } } } },
      },
    },
  };
  mut(d);
  return validateDoc(d).doc;
}

describe('diffConfig', () => {
  it('finds nothing between equal documents', () => {
    const d = diffConfig(doc(), doc());
    expect(d.changes).toEqual([]);
    expect(renderDiff(d)).toBe('No changes.');
  });

  it('lists each object added, changed and removed at its config-error path', () => {
    const next = doc((d) => {
      d.backstores.c = { type: 'ramdisk', size: 1 << 20 };
      d.iscsi.targets[T1].tpgs['1'].luns['1'] = 'c';
      d.iscsi.targets[T1].tpgs['1'].attributes = { nopInInterval: 7 };
      delete d.iscsi.targets[T2];
    });
    const d = diffConfig(doc(), next);
    expect(d.changes.map((c) => `${c.op} ${c.path}`)).toEqual([
      'add backstores.c',
      'remove iscsi.targets["iqn.2026-01.org.example:t2"]',
      'change iscsi.targets["iqn.2026-01.org.example:t1"].tpgs["1"]',
      'add iscsi.targets["iqn.2026-01.org.example:t1"].tpgs["1"].luns["1"]',
    ]);
    const tpg = d.changes[2];
    expect(tpg.op === 'change' && tpg.fields).toEqual([{ field: 'attributes.nopInInterval', old: expect.any(Number), new: 7 }]);
    expect(d.summary).toEqual({ add: 2, change: 1, remove: 1 });
    expect(renderDiff(d)).toMatch(/^\+ backstores\.c /m);
    expect(renderDiff(d)).toMatch(/^- iscsi\.targets\["iqn\.2026-01\.org\.example:t2"\]$/m);
    expect(renderDiff(d)).toMatch(/^ {4}attributes\.nopInInterval: \d+ -> 7$/m);
    expect(renderDiff(d)).toMatch(/2 to add, 1 to change, 1 to remove\.$/);
  });

  it('shows a LUN moved to another backstore as old -> new', () => {
    const d = diffConfig(doc(), doc((x) => (x.iscsi.targets[T1].tpgs['1'].luns['0'] = 'b')));
    expect(d.changes).toEqual([{ op: 'change', path: `iscsi.targets["${T1}"].tpgs["1"].luns["0"]`, fields: [{ field: '', old: 'a', new: 'b' }] }]);
    expect(renderDiff(d).split('\n')[0]).toBe(`~ iscsi.targets["${T1}"].tpgs["1"].luns["0"]: "a" -> "b"`);
  });

  it('masks CHAP passwords in changes, additions and removals', () => {
    const changed = diffConfig(doc(), doc((d) => (d.iscsi.targets[T1].tpgs['1'].acls![I1].chap.password = 'othersecret1')));
    expect(changed.changes).toEqual([
      { op: 'change', path: `iscsi.targets["${T1}"].tpgs["1"].acls["${I1}"]`, fields: [{ field: 'chap.password', old: MASK, new: MASK }] },
    ]);
    const removed = diffConfig(doc(), doc((d) => delete d.iscsi.targets[T1]));
    const added = diffConfig(doc((d) => delete d.iscsi.targets[T1]), doc());
    for (const d of [changed, removed, added]) {
      expect(JSON.stringify(d)).not.toContain('secretpass12');
      expect(renderDiff(d)).not.toContain('secretpass12');
    }
    expect(JSON.stringify(added)).toContain(MASK);
  });

  it('treats sections (limits, nbd) as objects and their collections as objects of their own', () => {
    const next = doc((d) => {
      d.limits = { tmfTaskWait: 9 };
      d.nbd = { listen: ['127.0.0.1:0'], exports: { x: { backstore: 'a' } } };
    });
    // The canonical document keeps the budgets (it once dropped them, so save and every control change lost them).
    expect(validateDoc({ limits: { tmfTaskWait: 9 } }).doc.limits).toEqual({ tmfTaskWait: 9 });
    const d = diffConfig(doc(), next);
    expect(d.changes.map((c) => `${c.op} ${c.path}`)).toEqual(['add nbd', 'add limits']);
    const d2 = diffConfig(next, doc((x) => {
      x.limits = { tmfTaskWait: 9 };
      x.nbd = { listen: ['127.0.0.1:0'], exports: { y: { backstore: 'b' } } };
    }));
    expect(d2.changes.map((c) => `${c.op} ${c.path}`)).toEqual(['remove nbd.exports.x', 'add nbd.exports.y']);
  });
});
