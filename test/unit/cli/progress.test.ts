// The progress bar: drawn on a terminal from progress notifications, absent
// (no onProgress, nothing written) when stdout is not a TTY or with --json.

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import type { Io } from '../../../src/cli/output.js';
import { createProgress } from '../../../src/cli/progress.js';

class FakeTerminal extends Writable {
  text = '';
  columns = 100;
  rows = 24;
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
  cursorTo(_x: number, _y?: number | (() => void), cb?: () => void): boolean {
    if (typeof _y === 'function') _y();
    else cb?.();
    return true;
  }
  clearLine(_dir: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  moveCursor(_dx: number, _dy: number, cb?: () => void): boolean {
    cb?.();
    return true;
  }
  getWindowSize(): [number, number] {
    return [this.columns, this.rows];
  }
}

function io(isTTY: boolean): { io: Io; out: FakeTerminal } {
  const out = new FakeTerminal(isTTY);
  return { io: { stdout: out as unknown as Io['stdout'], stderr: new FakeTerminal(false) }, out };
}

describe('progress bar', () => {
  it('draws a bar with sizes on a terminal', () => {
    const { io: t, out } = io(true);
    const p = createProgress(t, false);
    expect(p.onProgress).toBeDefined();
    p.onProgress!({ what: 'preallocating disk0', done: 0, total: 1024 ** 3 });
    p.onProgress!({ what: 'preallocating disk0', done: 1024 ** 3, total: 1024 ** 3 });
    p.stop();
    expect(out.text).toContain('preallocating disk0');
    expect(out.text).toContain('█');
    expect(out.text).toContain('100%');
    expect(out.text).toContain('1G/1G');
  });

  it('counts objects for restore', () => {
    const { io: t, out } = io(true);
    const p = createProgress(t, false, 'objects');
    p.onProgress!({ what: 'applying', done: 3, total: 12 });
    p.stop();
    expect(out.text).toContain('3/12');
    expect(out.text).toContain('25%');
  });

  it('draws nothing when stdout is not a terminal, or with --json', () => {
    for (const [tty, json] of [
      [false, false],
      [true, true],
    ] as const) {
      const { io: t, out } = io(tty);
      const p = createProgress(t, json);
      expect(p.onProgress).toBeUndefined();
      p.stop();
      expect(out.text).toBe('');
    }
  });
});
