// NO_COLOR (no-color.org): lunkit adds no colour anywhere, so there is
// nothing to turn off. The dashboard highlights with bold, underline and
// inverse video only; this draws a frame on a fake TTY and checks that every
// SGR sequence blessed writes sets attributes, never a colour (30-38, 40-48,
// 90-97, 100-107; 39/49, back to the terminal's default, are allowed).

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { initialState, reduce } from '../../../src/dashboard/model.js';
import { DashboardRenderer } from '../../../src/dashboard/render.js';
import { snapshotAt } from './fixture.js';

class FakeTty extends PassThrough {
  isTTY = true;
  columns = 100;
  rows = 30;
  setRawMode(): this {
    return this;
  }
}

/** The colour parameters of every SGR (ESC [ ... m) in `raw`. */
function colourParams(raw: string): string[] {
  const found: string[] = [];
  // eslint-disable-next-line no-control-regex -- escape sequences are the point here
  for (const m of raw.matchAll(/\x1b\[([0-9;]*)m/g)) {
    const ps = m[1] === '' ? ['0'] : m[1].split(';');
    for (let i = 0; i < ps.length; i++) {
      const p = Number(ps[i]);
      if (p === 38 || p === 48) {
        found.push(m[0]);
        break;
      }
      if ((p >= 30 && p <= 37) || (p >= 40 && p <= 47) || (p >= 90 && p <= 97) || (p >= 100 && p <= 107)) found.push(m[0]);
    }
  }
  return found;
}

describe('dashboard and NO_COLOR', () => {
  it('the colour check sees colour', () => {
    expect(colourParams('\x1b[1m\x1b[7mx\x1b[0m\x1b[39;49m')).toEqual([]);
    expect(colourParams('\x1b[31mred\x1b[0m\x1b[1;42m\x1b[38;5;208m')).toEqual(['\x1b[31m', '\x1b[1;42m', '\x1b[38;5;208m']);
  });

  it('draws a frame (sessions, LUNs, highlights) with attributes only', async () => {
    const input = new FakeTty();
    const output = new FakeTty();
    const chunks: Buffer[] = [];
    output.on('data', (d: Buffer) => chunks.push(d));
    const r = new DashboardRenderer({ input, output }, { terminal: 'xterm-256color', env: { TERM: 'xterm-256color', NO_COLOR: '1' } });
    try {
      let s = initialState({ width: r.width, height: r.height, now: 1_700_000_010_000 });
      s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(9, 0) });
      s = reduce(s, { type: 'snapshot', snapshot: snapshotAt(10, 5000) });
      r.draw(s);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      r.destroy();
    }
    const raw = Buffer.concat(chunks).toString('utf8');
    expect(raw).toContain('disk0');
    // eslint-disable-next-line no-control-regex -- escape sequences are the point here
    expect(raw).toMatch(/\x1b\[[0-9;]*7[0-9;]*m/); // the focused pane's inverse title
    expect(colourParams(raw)).toEqual([]);
  });
});
