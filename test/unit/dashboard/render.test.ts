// The blessed renderer on a fake TTY: PassThrough streams with a size,
// output captured as text with the escape sequences stripped.

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { runDashboard, type SnapshotSink } from '../../../src/dashboard/app.js';
import { initialState, reduce } from '../../../src/dashboard/model.js';
import { DashboardRenderer, keyName, terminalFor } from '../../../src/dashboard/render.js';
import { IQN, INITIATOR, event, snapshotAt } from './fixture.js';

class FakeTty extends PassThrough {
  isTTY = true;
  columns: number;
  rows: number;
  constructor(columns: number, rows: number) {
    super();
    this.columns = columns;
    this.rows = rows;
  }
  setRawMode(): this {
    return this;
  }
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

function fakeIo(columns = 80, rows = 24): { input: FakeTty; output: FakeTty; captured: () => string } {
  const input = new FakeTty(columns, rows);
  const output = new FakeTty(columns, rows);
  const chunks: Buffer[] = [];
  output.on('data', (d: Buffer) => chunks.push(d));
  return {
    input,
    output,
    // Drop CSI/OSC sequences and charset switches: what is left is the text drawn.
    /* eslint-disable no-control-regex -- escape sequences are the point here */
    captured: () =>
      Buffer.concat(chunks)
        .toString('utf8')
        .replace(/\x1b\][^\x07]*\x07/g, '')
        .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, ' ')
        .replace(/\x1b[()][0-9A-Za-z]/g, '')
        .replace(/\x1b[=>78]/g, ''),
    /* eslint-enable no-control-regex */
  };
}

describe('dashboard renderer on a fake TTY', () => {
  it('draws the session and LUN rows at 80x24 and quits on q', async () => {
    const io = fakeIo(80, 24);
    const r = new DashboardRenderer({ input: io.input, output: io.output }, { terminal: 'xterm-256color' });
    try {
      expect(r.width).toBe(80);
      expect(r.height).toBe(24);
      const keys: string[] = [];
      r.onKey((k) => keys.push(k));
      let s = initialState({ width: r.width, height: r.height, now: 1_700_000_010_000 });
      s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(9, 0) });
      s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(10, 5000) });
      r.draw(s);
      await new Promise((res) => setTimeout(res, 50));
      const text = io.captured();
      expect(text).toContain('client7'); // the initiator, cut from the left to fit
      expect(text).toContain('127.0.0.1:40000');
      expect(text).toContain('23d000000001');
      expect(text).toContain('disk0');
      expect(text).toContain('ram1');
      expect(text).toContain('19.5MiB/s'); // 5000 x 4 KiB in one second
      expect(text).toContain(IQN.slice(0, 20));
      io.input.write('q');
      await new Promise((res) => setTimeout(res, 50));
      expect(keys).toContain('q');
      expect(INITIATOR).toContain('client7');
    } finally {
      r.destroy();
    }
  });

  it('redraws at the new size after a resize', async () => {
    const io = fakeIo(80, 24);
    const r = new DashboardRenderer({ input: io.input, output: io.output }, { terminal: 'xterm-256color' });
    try {
      const sizes: Array<[number, number]> = [];
      r.onResize((w, h) => sizes.push([w, h]));
      io.output.resize(132, 40);
      await new Promise((res) => setTimeout(res, 100));
      expect(sizes.at(-1)).toEqual([132, 40]);
      expect(r.width).toBe(132);
    } finally {
      r.destroy();
    }
  });

  it('maps TERM and key names', () => {
    expect(terminalFor('tmux-256color')).toBe('xterm-256color');
    expect(terminalFor('screen-256color')).toBe('xterm-256color');
    expect(terminalFor(undefined)).toBe('xterm-256color');
    expect(terminalFor('xterm')).toBe('xterm');
    expect(keyName('\t', { name: 'tab' })).toBe('tab');
    expect(keyName(undefined, { name: 'tab', shift: true })).toBe('shift-tab');
    expect(keyName('\r', { name: 'return' })).toBe('enter');
    expect(keyName('q', { name: 'q' })).toBe('q');
    expect(keyName('/', undefined)).toBe('/');
    expect(keyName('\x03', { name: 'c', ctrl: true })).toBe('C-c');
    expect(keyName(undefined, { name: 'f1' })).toBeUndefined();
  });

  it('runDashboard draws what a feed pushes, stops the feed on q and resolves with the last state', async () => {
    const io = fakeIo(80, 24);
    let sink: SnapshotSink | undefined;
    let stopped = 0;
    const done = runDashboard({
      io: { input: io.input, output: io.output },
      terminal: 'xterm-256color',
      ascii: false,
      hint: 'watch it move: iscsi-perf iscsi://127.0.0.1:3260/x/0',
      source: {
        start: (s) => {
          sink = s;
          return () => stopped++;
        },
      },
    });
    expect(sink).toBeDefined();
    sink!.snapshot(snapshotAt(9, 0));
    sink!.snapshot(snapshotAt(10, 5000));
    await new Promise((res) => setTimeout(res, 50));
    expect(io.captured()).toContain('19.5MiB/s');
    expect(io.captured()).toContain('watch it move: iscsi-perf');
    sink!.error('the daemon closed the connection');
    await new Promise((res) => setTimeout(res, 50));
    expect(io.captured()).toContain('[the daemon closed the connection]');
    io.input.write('q');
    const final = await done;
    expect(final.quit).toBe(true);
    expect(final.snapshot?.time).toBe(snapshotAt(10, 5000).time);
    expect(stopped).toBe(1);
  });

  it('runDashboard closes when its signal aborts, and polls a pull source with eventsSince', async () => {
    const io = fakeIo(80, 24);
    const asked: number[] = [];
    const ac = new AbortController();
    const done = runDashboard({
      io: { input: io.input, output: io.output },
      terminal: 'xterm-256color',
      intervalMs: 100,
      source: {
        snapshot: (since) => {
          asked.push(since);
          return Promise.resolve(snapshotAt(asked.length, asked.length * 10, asked.length === 1 ? [event(4, 'login x')] : []));
        },
      },
      signal: ac.signal,
    });
    await new Promise((res) => setTimeout(res, 350));
    ac.abort();
    const final = await done;
    expect(final.quit).toBe(false);
    expect(asked[0]).toBe(0);
    expect(asked.slice(1).every((n) => n === 4)).toBe(true);
    expect(asked.length).toBeGreaterThanOrEqual(2);
  });
});
