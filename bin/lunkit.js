#!/usr/bin/env node
// The lunkit executable: runs the compiled CLI (npm run build, or ./scripts/setup.sh).
import { availableParallelism } from 'node:os';

// File I/O runs on libuv's thread pool. Measured on 2 cores with iscsi-perf
// (4 KiB random reads, 32 in flight, page-cache data): 16 threads 18k IOPS,
// 4 threads 30k, 2 threads 40k, 1 thread 44k, because every extra thread
// preempts the event loop on wake-up. So the default is one thread per core;
// slow media with deep queues may want more (set UV_THREADPOOL_SIZE, or
// --io-threads on `serve`). It must be set before the pool first starts.
if (!process.env.UV_THREADPOOL_SIZE) {
  const flag = process.argv.indexOf('--io-threads');
  const wanted = flag > 0 ? Number(process.argv[flag + 1]) : NaN;
  process.env.UV_THREADPOOL_SIZE = String(Number.isInteger(wanted) && wanted > 0 ? wanted : availableParallelism());
}

const { main } = await import('../dist/cli/index.js');
main().catch((err) => {
  process.stderr.write(`lunkit: ${err?.message ?? err}\n`);
  process.exit(1);
});
