// The dashboard's loop: snapshots from a source (pushed by a feed such as
// the daemon's stats.subscribe stream, or pulled from a poll source such as
// stats.snapshot every interval), a 1 Hz tick for the clock and session ages,
// keys and resizes from the renderer; every event goes through reduce() and
// the renderer draws only new states.

import type { StatsSnapshot } from '../daemon/metrics.js';
import { initialState, reduce, type DashboardEvent, type DashboardState } from './model.js';
import { DashboardRenderer, type DashboardIo, type RendererOptions } from './render.js';

/** Pulled snapshots, polled every interval. `eventsSince`: the last event seq already seen. */
export interface SnapshotSource {
  snapshot(eventsSince: number): Promise<StatsSnapshot>;
}

/** What a feed delivers to: snapshots, and problems to show in the header. */
export interface SnapshotSink {
  snapshot(snapshot: StatsSnapshot): void;
  error(message: string): void;
}

/** Pushed snapshots (a subscription): `start` begins delivery and returns the function that ends it. */
export interface SnapshotFeed {
  start(sink: SnapshotSink): () => void;
}

export interface DashboardOptions extends RendererOptions {
  io: DashboardIo;
  source: SnapshotSource | SnapshotFeed;
  /** Poll interval of a SnapshotSource, ms (default 1000). */
  intervalMs?: number;
  /** ASCII-only drawing (default: when LANG/LC_* do not say UTF-8). */
  ascii?: boolean;
  /** A line shown above the keys (the demo's "connect an initiator" command). */
  hint?: string;
  /** Closes the dashboard (restoring the terminal) from outside, as `q` does. */
  signal?: AbortSignal;
}

export function wantsAscii(env: NodeJS.ProcessEnv): boolean {
  const lang = `${env.LC_ALL ?? ''}:${env.LC_CTYPE ?? ''}:${env.LANG ?? ''}`;
  return !/utf-?8/i.test(lang);
}

/** Runs until `q` (or opts.signal aborts); resolves with the final state once the terminal is restored. */
export function runDashboard(opts: DashboardOptions): Promise<DashboardState> {
  const renderer = new DashboardRenderer(opts.io, opts);
  const interval = Math.max(100, opts.intervalMs ?? 1000);
  let state = initialState({ width: renderer.width, height: renderer.height, now: Date.now(), ascii: opts.ascii ?? wantsAscii(opts.env ?? process.env), hint: opts.hint });
  let pollTimer: NodeJS.Timeout | undefined;
  let stopFeed: (() => void) | undefined;
  let stopped = false;
  let lastSnapshotAt = 0;

  return new Promise((resolve) => {
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      opts.signal?.removeEventListener('abort', stop);
      clearInterval(tick);
      if (pollTimer) clearTimeout(pollTimer);
      stopFeed?.();
      renderer.destroy();
      resolve(state);
    };
    const dispatch = (ev: DashboardEvent): void => {
      if (stopped) return;
      if (ev.type === 'snapshot') lastSnapshotAt = Date.now();
      state = reduce(state, ev);
      if (state.quit) {
        stop();
        return;
      }
      renderer.draw(state);
    };
    const source = opts.source;
    const poll = async (pull: SnapshotSource): Promise<void> => {
      const since = state.events.length > 0 ? state.events[state.events.length - 1].seq : 0;
      try {
        dispatch({ type: 'snapshot', snapshot: await pull.snapshot(since) });
      } catch (err) {
        dispatch({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      }
      if (!stopped) pollTimer = setTimeout(() => void poll(pull), interval);
    };
    // The 1 Hz clock redraws only when no snapshot did in the last second
    // (a snapshot moves the clock too): one frame per second while idle.
    const tick = setInterval(() => {
      if (Date.now() - lastSnapshotAt < 1100) return;
      dispatch({ type: 'tick', now: Math.floor(Date.now() / 1000) * 1000 });
    }, 1000);
    if (opts.signal?.aborted) {
      stop();
      return;
    }
    opts.signal?.addEventListener('abort', stop, { once: true });
    renderer.onKey((key) => dispatch({ type: 'key', key }));
    renderer.onResize((width, height) => dispatch({ type: 'resize', width, height }));
    renderer.draw(state);
    if ('start' in source) {
      stopFeed = source.start({
        snapshot: (snapshot) => dispatch({ type: 'snapshot', snapshot }),
        error: (message) => dispatch({ type: 'error', message }),
      });
    } else {
      void poll(source);
    }
  });
}
