// Runs a LunkitRuntime in the foreground until SIGINT, SIGTERM or SIGHUP: the first
// signal stops cleanly (in-flight commands finish, backstores are flushed);
// a second one exits at once. Works the same with and without a terminal.

import { LunkitRuntime } from '../daemon/runtime.js';
import type { LunkitConfig } from '../daemon/config-schema.js';
import type { Logger } from '../util/log.js';
import { keepServingOnUnhandledRejection } from '../util/process-guard.js';

export async function serveUntilSignalled(
  cfg: LunkitConfig,
  logger: Logger,
  onReady: (rt: LunkitRuntime) => void | Promise<void>,
): Promise<number> {
  const rt = await LunkitRuntime.start(cfg, { logger });
  try {
    await onReady(rt);
  } catch (e) {
    await rt.stop(0);
    throw e;
  }
  return untilSignalled(() => rt.stop(), logger);
}

/**
 * Resolves with an exit code once `stop` has run after SIGINT, SIGTERM or SIGHUP: 0 if
 * it succeeded, 1 if it failed. A second signal exits at once. Unhandled
 * rejections are logged and the process keeps serving.
 */
export function untilSignalled(stop: () => Promise<void>, logger: Logger): Promise<number> {
  // While serving, a stray rejected promise is logged, not fatal (util/process-guard.ts says why).
  keepServingOnUnhandledRejection(logger);
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signalled) {
        logger.warn('second signal: exiting without waiting', { signal: sig });
        process.exit(1);
      }
      signalled = true;
      logger.info('signal received, shutting down', { signal: sig });
      stop().then(
        () => resolve(0),
        (e: unknown) => {
          logger.error('shutdown failed', { err: e });
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // The terminal went away: stop cleanly too (a FUSE mount must not stay behind).
    process.on('SIGHUP', onSignal);
  });
}
