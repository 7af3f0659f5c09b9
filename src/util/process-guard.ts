// What a serving lunkit process (daemon, serve, demo) does with a promise
// rejection nobody handled: log it loudly and keep serving.
//
// Why not exit (Node's default since v15): the rejection is one lost error in
// one code path, often on one client's connection (a socket write that failed
// after the peer left, a backstore call whose caller had already given up). The
// daemon's state is not torn the way it can be by an exception thrown in the
// middle of an update, and exiting would drop every session of every initiator
// and every NBD client over it; if a remote client can provoke it, exiting
// turns a bug into a remote denial of service. nbdkit and LIO behave the same
// way: an error in one connection is logged and the server goes on serving
// the others. A bug should be seen, so it is logged at error level with its
// stack, and rate-limited so that a rejection per request cannot flood the log.
//
// Uncaught exceptions keep Node's default (exit): a throw can leave a
// half-updated structure behind, and a supervisor restarting a clean process
// is safer than serving from it.

import { RateLimitedLog } from './admission.js';
import type { Logger } from './log.js';

/** Installs the handler; returns a function that removes it again. */
export function keepServingOnUnhandledRejection(logger: Logger, intervalMs = 10_000): () => void {
  let count = 0;
  const log = new RateLimitedLog((msg, fields) => logger.error(msg, fields), 'unhandled promise rejection (a bug: please report it); still serving', intervalMs);
  const onRejection = (reason: unknown): void => {
    count++;
    const err = reason instanceof Error ? reason : undefined;
    log.note({ err: err ? err.message : String(reason), code: (err as { code?: unknown } | undefined)?.code, stack: err?.stack, count });
  };
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('unhandledRejection', onRejection);
    log.flush();
  };
}
