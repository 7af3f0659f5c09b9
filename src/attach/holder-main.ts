// Entry point of a detached attach holder: `node holder-main.js <id>` with
// the plan (JSON) in LUNKIT_HOLDER_PLAN (not argv: it may hold a CHAP secret).
// Started by attach.ts (startDetached) with stdout/stderr on a log file and a
// pipe on fd LUNKIT_READY_FD, on which it writes "ready <file>" once serving
// or "error <message>" when it cannot start. SIGTERM, SIGINT and SIGHUP stop it
// cleanly (flush, unmount).

import { closeSync, writeSync } from 'node:fs';
import { createLogger } from '../util/log.js';
import { runHolder } from './holder.js';
import { describeSource } from './source.js';
import { HOLDER_PLAN_ENV, type HolderPlan } from './plan.js';

function report(line: string): void {
  const fd = Number(process.env.LUNKIT_READY_FD);
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, line + '\n');
    closeSync(fd);
  } catch {
    // The parent went away: nobody to tell.
  }
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env[HOLDER_PLAN_ENV] ?? process.argv[2] ?? '') as HolderPlan;
  delete process.env[HOLDER_PLAN_ENV];
  const logger = createLogger({});
  let holder: Awaited<ReturnType<typeof runHolder>>;
  try {
    holder = await runHolder(plan, logger);
  } catch (e) {
    const err = e as Error & { code?: string };
    logger.error('attach failed', { err: err.message, code: err.code });
    report(`error ${err.code ?? 'ERR_ATTACH_START'} ${err.message}`);
    process.exit(1);
  }
  logger.info('attached', { file: holder.state.file, source: describeSource(plan.source) });
  const stop = (sig: string): void => {
    logger.info('stopping', { signal: sig });
    void holder.stop().then(() => process.exit(0));
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => stop(sig));
  report(`ready ${holder.state.file}`);
}

void main();
