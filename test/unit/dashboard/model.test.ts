// The dashboard's pure reducer: rates from snapshot deltas, one-minute
// histories, focus, selection, drill-down, filter, quit, resize.

import { describe, expect, it } from 'vitest';

import { HISTORY_MS, initialState, lunRows, reduce, sessionRows, treeLines, type DashboardEvent, type DashboardState } from '../../../src/dashboard/model.js';
import { drawFrame, layout } from '../../../src/dashboard/view.js';
import { IQN, INITIATOR, event, snapshotAt } from './fixture.js';

function run(s: DashboardState, ...events: DashboardEvent[]): DashboardState {
  return events.reduce(reduce, s);
}
const keys = (...k: string[]): DashboardEvent[] => k.map((key) => ({ type: 'key', key }));

describe('reduce: snapshots', () => {
  it('turns counter deltas into per-LUN rates and interval latency', () => {
    const s = run(initialState(), { type: 'snapshot', snapshot: snapshotAt(0, 1000) }, { type: 'snapshot', snapshot: snapshotAt(2, 5000) });
    const r = s.lunRates['1'];
    expect(r.iops).toBe(2000); // 4000 commands in 2 s
    expect(r.readBps).toBe(2000 * 4096);
    expect(r.writeBps).toBe(0);
    expect(r.meanUs).toBe(100);
    expect(r.p99Us).toBe(104); // upper bound of the [100, 104) us bucket
    expect(s.lunRates['2'].iops).toBe(0);
    expect(s.nexusRates['5'].iops).toBe(2000);
  });

  it('keeps one minute of history per LUN', () => {
    let s = initialState();
    for (let t = 0; t <= 90; t++) s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(t, t * 10) });
    const h = s.lunHistory['1'];
    expect(h.t.length).toBe(HISTORY_MS / 1000);
    expect(h.t[h.t.length - 1] - h.t[0]).toBeLessThan(HISTORY_MS);
    expect(h.iops.every((v) => v === 10)).toBe(true);
  });

  it('appends only new events, by seq, and follows the tail', () => {
    let s = reduce(initialState(), { type: 'snapshot', snapshot: snapshotAt(0, 0, [event(1, 'a'), event(2, 'b')]) });
    s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(1, 0, [event(2, 'b'), event(3, 'c')]) });
    expect(s.events.map((e) => e.text)).toEqual(['a', 'b', 'c']);
    expect(s.cursor.events).toBe(2);
    // A restarted daemon numbers from 1 again.
    s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(2, 0, [event(1, 'fresh')]) });
    expect(s.events.map((e) => e.text)).toEqual(['fresh']);
  });

  it('derives session, LUN and tree rows', () => {
    const s = reduce(initialState(), { type: 'snapshot', snapshot: snapshotAt(0, 0) });
    const sess = sessionRows(s);
    expect(sess).toHaveLength(1);
    expect(sess[0]).toMatchObject({ key: 'n5', initiator: INITIATOR, address: '127.0.0.1:40000', isid: '23d000000001', connections: 1, digests: 'H-', erl: '0' });
    expect(lunRows(s).map((r) => [r.name, r.mappings])).toEqual([
      ['disk0', [`${IQN}/0`]],
      ['ram1', [`${IQN}/1`]],
    ]);
    expect(treeLines(s).map((l) => l.text)).toEqual([IQN, 'tpg1 127.0.0.1:3260 demo', 'lun0 disk0 file 1.0GiB', 'lun1 ram1 ramdisk 64.0MiB']);
  });
});

describe('reduce: keys', () => {
  const base = reduce(initialState(), { type: 'snapshot', snapshot: snapshotAt(0, 0) });

  it('tabs between panes both ways', () => {
    expect(base.focus).toBe('sessions');
    expect(run(base, ...keys('tab')).focus).toBe('luns');
    expect(run(base, ...keys('tab', 'tab', 'tab')).focus).toBe('tree');
    expect(run(base, ...keys('shift-tab')).focus).toBe('tree');
  });

  it('moves the cursor within the rows and no further', () => {
    const s = run(base, ...keys('tab', 'down', 'down', 'down'));
    expect(s.focus).toBe('luns');
    expect(s.cursor.luns).toBe(1);
    expect(run(s, ...keys('up', 'up')).cursor.luns).toBe(0);
    expect(run(s, ...keys('home')).cursor.luns).toBe(0);
  });

  it('enter drills into a LUN or a session, escape comes back', () => {
    const lun = run(base, ...keys('tab', 'down', 'enter'));
    expect(lun.detail).toEqual({ kind: 'lun', key: '2' });
    expect(drawFrame(lun).join('\n')).toContain('LU ram1');
    expect(run(lun, ...keys('escape')).detail).toBeNull();
    const sess = run(base, ...keys('enter'));
    expect(sess.detail).toEqual({ kind: 'session', key: 'n5' });
    expect(drawFrame(sess).join('\n')).toContain('ISID 23d000000001');
    const tree = run(base, ...keys('shift-tab', 'down', 'down', 'enter'));
    expect(tree.detail).toEqual({ kind: 'lun', key: '1' });
  });

  it('/ edits a filter that narrows every pane; escape clears it', () => {
    const s = run(base, ...keys('tab', '/', 'r', 'a', 'm', 'enter'));
    expect(s.filter).toBe('ram');
    expect(s.editingFilter).toBe(false);
    expect(lunRows(s).map((r) => r.name)).toEqual(['ram1']);
    expect(sessionRows(s)).toHaveLength(0);
    // While editing, q is text, not quit.
    const typing = run(base, ...keys('/', 'q'));
    expect(typing.quit).toBe(false);
    expect(typing.filter).toBe('q');
    expect(run(typing, ...keys('backspace')).filter).toBe('');
    expect(run(s, ...keys('escape')).filter).toBe('');
    expect(run(base, { type: 'filter', text: 'disk' }).filter).toBe('disk');
  });

  it('q quits, from anywhere but the filter prompt', () => {
    expect(run(base, ...keys('q')).quit).toBe(true);
    expect(run(base, ...keys('enter', 'q')).quit).toBe(true);
  });

  it('returns the same state when nothing changes (no redraw)', () => {
    expect(reduce(base, { type: 'key', key: 'x' })).toBe(base);
    expect(reduce(base, { type: 'resize', width: 80, height: 24 })).toBe(base);
    expect(reduce(base, { type: 'tick', now: base.now })).toBe(base);
    // The clock never goes back (a snapshot set a later time than the tick's whole second).
    expect(reduce(base, { type: 'tick', now: base.now - 500 })).toBe(base);
    expect(reduce(base, { type: 'tick', now: base.now + 1000 }).now).toBe(base.now + 1000);
    expect(reduce(base, { type: 'key', key: 'up' })).toBe(base);
  });

  it('resize and errors update the state', () => {
    expect(run(base, { type: 'resize', width: 132, height: 43 })).toMatchObject({ width: 132, height: 43 });
    const e = run(base, { type: 'error', message: 'daemon gone' });
    expect(e.status).toBe('daemon gone');
    expect(drawFrame(e)[0]).toContain('[daemon gone]');
    expect(run(e, { type: 'snapshot', snapshot: snapshotAt(1, 0) }).status).toBeNull();
  });
});

describe('view', () => {
  it('draws exactly width x height at 80x24 and at 200x60', () => {
    for (const [w, h] of [
      [80, 24],
      [200, 60],
      [40, 10],
    ]) {
      let s = run(initialState({ width: w, height: h }), { type: 'snapshot', snapshot: snapshotAt(0, 0) }, { type: 'snapshot', snapshot: snapshotAt(1, 100) });
      s = run(s, { type: 'snapshot', snapshot: snapshotAt(2, 300, [event(1, 'login {x}')]) });
      const frame = drawFrame(s);
      expect(frame).toHaveLength(h);
      for (const line of frame) {
        const plain = line.replace(/\{(\/?)(bold|inverse|underline)\}/g, '').replace(/\{open\}/g, '{').replace(/\{close\}/g, '}');
        expect([...plain].length).toBe(w);
      }
      expect(frame.join('\n')).toContain('login {open}x{close}');
    }
  });

  it('draws each pane title as a rule that reaches the pane\'s right edge', () => {
    for (const [w, h, ascii] of [
      [80, 24, false],
      [100, 30, true],
      [200, 60, false],
    ] as const) {
      const s = run(initialState({ width: w, height: h, ascii }), { type: 'snapshot', snapshot: snapshotAt(0, 0) });
      const rule = ascii ? '-' : '─';
      const titles = drawFrame(s)
        .map((l) => l.replace(/\{(\/?)(bold|inverse|underline)\}/g, ''))
        .filter((l) => l.startsWith(`${rule} `));
      expect(titles.length).toBeGreaterThanOrEqual(2);
      for (const t of titles) {
        // Side by side panes are one space apart: no run of spaces, rule to the edge.
        expect(t).not.toMatch(/ {2}/);
        expect(t.endsWith(rule)).toBe(true);
      }
    }
  });

  it('shows the hint above the footer, with the panes above it', () => {
    const s = run(initialState({ width: 80, height: 24, hint: 'watch it move: iscsi-perf iscsi://h/t/0' }), { type: 'snapshot', snapshot: snapshotAt(0, 0) });
    const frame = drawFrame(s).map((l) => l.replace(/\{(\/?)(bold|inverse|underline)\}/g, ''));
    expect(frame).toHaveLength(24);
    expect(frame[22].trimEnd()).toBe('watch it move: iscsi-perf iscsi://h/t/0');
    expect(frame[23]).toMatch(/^tab pane/);
    expect(frame.filter((l) => l.startsWith('─ '))).toHaveLength(4);
    // Without a hint that row belongs to the events pane.
    expect(drawFrame({ ...s, hint: null }).join('\n')).not.toContain('watch it move');
  });

  it('lays panes out inside the screen without overlap', () => {
    for (const [w, h] of [
      [80, 24],
      [160, 50],
    ]) {
      const rects = Object.values(layout(w, h));
      const cells = new Set<string>();
      for (const r of rects) {
        expect(r.y).toBeGreaterThanOrEqual(1);
        expect(r.y + r.height).toBeLessThanOrEqual(h - 1);
        expect(r.x + r.width).toBeLessThanOrEqual(w);
        for (let y = r.y; y < r.y + r.height; y++) {
          const k = `${y}:${r.x}`;
          expect(cells.has(k)).toBe(false);
          cells.add(k);
        }
      }
    }
  });
});
