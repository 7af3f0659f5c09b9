// The blessed side of the dashboard: one full-screen box whose content is
// view.ts's frame. Input and output streams are injected (a fake TTY in
// tests, process.stdin/stdout in `lunkit top`). Drawing happens only when
// the reducer returned a new state; blessed's smartCSR then writes only the
// cells that changed.
//
// Terminal traps (docs/stats.md): under tmux's TERM=tmux-256color blessed
// silently drops to 8 colours and under screen-256color it prints a terminfo
// error, so both map to xterm-256color. Panes draw no ACS borders, and on a
// UTF-8 terminal blessed is kept from turning "─" into ACS line drawing.

import blessed from 'blessed';
import type { Readable, Writable } from 'node:stream';

import type { DashboardState } from './model.js';
import { drawFrame } from './view.js';

export interface DashboardIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (on: boolean) => unknown };
  output: NodeJS.WritableStream & { columns?: number; rows?: number; isTTY?: boolean };
}

export interface RendererOptions {
  /** terminfo name; default from TERM, with tmux/screen mapped to xterm-256color. */
  terminal?: string;
  /** Environment to read TERM from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The terminfo entry blessed should use for this TERM (see the file comment). */
export function terminalFor(term: string | undefined): string {
  if (!term || term === 'dumb') return 'xterm-256color';
  if (/^(tmux|screen)/.test(term)) return 'xterm-256color';
  return term;
}

/** Normalises a blessed keypress to the reducer's key names (model.ts). */
export function keyName(ch: string | undefined, key: { name?: string; full?: string; ctrl?: boolean; shift?: boolean } | undefined): string | undefined {
  const name = key?.name;
  if (key?.ctrl && name === 'c') return 'C-c';
  if (name === 'tab') return key?.shift ? 'shift-tab' : 'tab';
  if (name === 'return' || name === 'enter') return 'enter';
  if (name === 'escape' || name === 'backspace' || name === 'up' || name === 'down' || name === 'left' || name === 'right') return name;
  if (name === 'pageup' || name === 'pagedown' || name === 'home' || name === 'end') return name;
  if (ch !== undefined && [...ch].length === 1 && ch >= ' ' && ch !== '\x7f') return ch;
  return undefined;
}

export class DashboardRenderer {
  private readonly screen: blessed.Widgets.Screen;
  private readonly box: blessed.Widgets.BoxElement;
  private last: DashboardState | undefined;
  private destroyed = false;

  constructor(io: DashboardIo, opts: RendererOptions = {}) {
    const env = opts.env ?? process.env;
    this.screen = blessed.screen({
      input: io.input as unknown as Writable,
      output: io.output as unknown as Readable,
      terminal: opts.terminal ?? terminalFor(env.TERM),
      smartCSR: true,
      fullUnicode: false,
      warnings: false,
      autoPadding: false,
      title: 'lunkit top',
    });
    // blessed swaps box-drawing characters for the terminal's ACS line
    // drawing (smacs + "q") unless told the ACS is "broken"; tmux capture-pane
    // then shows "q" for "─". On a UTF-8 terminal write the characters
    // themselves, as NCURSES_NO_UTF8_ACS=1 would.
    const tput = (this.screen as unknown as { tput?: { unicode?: boolean; brokenACS?: boolean } }).tput;
    if (tput?.unicode) tput.brokenACS = true;
    this.box = blessed.box({
      parent: this.screen,
      top: 0,
      left: 0,
      width: '100%',
      height: '100%',
      tags: true,
      wrap: false,
    });
  }

  get width(): number {
    return Number(this.screen.width);
  }

  get height(): number {
    return Number(this.screen.height);
  }

  /** Calls `fn` with the reducer's key name for every key pressed. */
  onKey(fn: (key: string) => void): void {
    this.screen.on('keypress', (ch: string | undefined, key: { name?: string; full?: string; ctrl?: boolean; shift?: boolean } | undefined) => {
      const k = keyName(ch, key);
      if (k !== undefined) fn(k);
    });
  }

  onResize(fn: (width: number, height: number) => void): void {
    this.screen.on('resize', () => fn(this.width, this.height));
  }

  /** Draws `state` unless it is the one drawn last. */
  draw(state: DashboardState): void {
    if (this.destroyed || state === this.last) return;
    this.last = state;
    this.box.setContent(drawFrame(state).join('\n'));
    this.screen.render();
  }

  /** Leaves the alternate screen and restores the terminal's modes. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.screen.destroy();
  }
}
