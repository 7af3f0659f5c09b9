// A progress bar for long requests (preallocating a file backstore, resize,
// restore of many objects), drawn from the daemon's `progress` notifications.
// Only on a terminal and never with --json: piped or scripted output stays
// exactly the result, with no bar characters.

import cliProgress from 'cli-progress';

import type { ControlProgress } from '../daemon/control-client.js';
import { formatSize } from '../util/size.js';
import type { Io } from './output.js';

export interface ProgressReporter {
  /** Pass as the call's onProgress; undefined when no bar is drawn. */
  onProgress?: (p: ControlProgress) => void;
  /** Ends the bar (leaves the terminal on a fresh line). */
  stop(): void;
}

function amount(n: number, bytes: boolean): string {
  if (!bytes) return String(n);
  // formatSize gives exact units; a bar wants a rounded one.
  for (const [u, m] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (n >= m) return `${(n / m).toFixed(n % m === 0 ? 0 : 1)}${u}`;
  }
  return formatSize(n);
}

/** `unit` 'bytes' shows sizes, 'objects' plain counts. */
export function createProgress(io: Io, json: boolean, unit: 'bytes' | 'objects' = 'bytes'): ProgressReporter {
  if (json || io.stdout.isTTY !== true) return { stop: () => undefined };
  let bar: cliProgress.SingleBar | undefined;
  const onProgress = (p: ControlProgress): void => {
    const payload = { what: p.what, doneText: amount(p.done, unit === 'bytes'), totalText: amount(p.total, unit === 'bytes') };
    if (!bar) {
      bar = new cliProgress.SingleBar(
        {
          stream: io.stdout,
          format: '{what} [{bar}] {percentage}% | {doneText}/{totalText} | ETA {eta_formatted}',
          hideCursor: true,
          clearOnComplete: false,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(p.total, 1), p.done, payload);
    } else {
      if (bar.getTotal() !== p.total) bar.setTotal(Math.max(p.total, 1));
      bar.update(p.done, payload);
    }
  };
  return {
    onProgress,
    stop: () => {
      bar?.stop();
      bar = undefined;
    },
  };
}
