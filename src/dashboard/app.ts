// The dashboard's loop: snapshots from a source (the daemon's
// stats.snapshot, polled every interval), a 1 Hz tick for the clock and
// session ages, keys and resizes from the renderer; every event goes
// through reduce() and the renderer draws only new states.

import type { StatsSnapshot } from '../daemon/metrics.js';
import { initialState, reduce, type DashboardEvent, type DashboardState } from './model.js';
import { DashboardRenderer, type DashboardIo, type RendererOptions } from './render.js';

/** Where snapshots come from. `eventsSince`: the last event seq already seen. */
export interface SnapshotSource {
  snapshot(eventsSince: number): Promise<StatsSnapshot>;
}

export interface DashboardOptions extends RendererOptions {
  io: DashboardIo;
  source: SnapshotSource;
  /** Poll interval, ms (default 1000). */
  intervalMs?: number;
  /** ASCII-only drawing (default: when LANG/LC_* do not say UTF-8). */
  ascii?: boolean;
}

export function wantsAscii(env: NodeJS.ProcessEnv): boolean {
  const lang = `${env.LC_ALL ?? ''}:${env.LC_CTYPE ?? ''}:${env.LANG ?? ''}`;
  return !/utf-?8/i.test(lang);
}

/** Runs until `q`; resolves with the final state once the terminal is restored. */
export function runDashboard(opts: DashboardOptions): Promise<DashboardState> {
  const renderer = new DashboardRenderer(opts.io, opts);
  const interval = Math.max(100, opts.intervalMs ?? 1000);
  let state = initialState({ width: renderer.width, height: renderer.height, now: Date.now(), ascii: opts.ascii ?? wantsAscii(opts.env ?? process.env) });
  let pollTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  return new Promise((resolve) => {
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      clearInterval(tick);
      if (pollTimer) clearTimeout(pollTimer);
      renderer.destroy();
      resolve(state);
    };
    const dispatch = (ev: DashboardEvent): void => {
      if (stopped) return;
      state = reduce(state, ev);
      if (state.quit) {
        stop();
        return;
      }
      renderer.draw(state);
    };
    const poll = async (): Promise<void> => {
      const since = state.events.length > 0 ? state.events[state.events.length - 1].seq : 0;
      try {
        dispatch({ type: 'snapshot', snapshot: await opts.source.snapshot(since) });
      } catch (err) {
        dispatch({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      }
      if (!stopped) pollTimer = setTimeout(() => void poll(), interval);
    };
    const tick = setInterval(() => dispatch({ type: 'tick', now: Math.floor(Date.now() / 1000) * 1000 }), 1000);
    renderer.onKey((key) => dispatch({ type: 'key', key }));
    renderer.onResize((width, height) => dispatch({ type: 'resize', width, height }));
    renderer.draw(state);
    void poll();
  });
}
