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

// A process that serves FUSE files needs glibc's malloc settings from its
// first instruction (src/fabrics/fuse/malloc.ts, docs/fuse.md "The daemon"):
// glibc reads GLIBC_TUNABLES once, and Node 20 cannot execve itself. So a
// `daemon`/`serve` whose --config has a `fuse` section (or a `demo` that shows
// its FUSE file) runs as a child started with them, and this process only
// relays signals and the exit status. The marker LUNKIT_FUSE_MALLOC (set in
// the child; `default` by a user opts out) keeps it from happening twice.
// Other verbs pay nothing but the argv check below.
const LUNKIT_PARENT_FD = 'LUNKIT_PARENT_FD';
if (process.env[LUNKIT_PARENT_FD]) {
  await watchParent();
} else if (process.env.LUNKIT_FUSE_MALLOC === undefined && (await servesFuse(process.argv.slice(2)))) {
  await runTuned();
}

const { main } = await import('../dist/cli/index.js');
main().catch((err) => {
  process.stderr.write(`lunkit: ${err?.message ?? err}\n`);
  process.exit(1);
});

/** Value of an option given as `--name V`, `--name=V` or `-a V`. */
function optionValue(args, name, alias) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === `--${name}` || (alias && a === `-${alias}`)) return args[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/** Whether this invocation will host a FuseFabric at start. Cheap; any doubt means no. */
async function servesFuse(args) {
  const verb = args[0];
  if (verb === 'demo') {
    const { existsSync } = await import('node:fs');
    const off = args.includes('--no-fuse') || optionValue(args, 'fuse') === 'false';
    return !off && existsSync('/dev/fuse');
  }
  if (verb !== 'daemon' && verb !== 'serve') return false;
  const file = optionValue(args, 'config', 'c');
  if (!file) return false;
  try {
    const { readFileSync } = await import('node:fs');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    return typeof doc?.fuse === 'object' && doc.fuse !== null && Object.keys(doc.fuse).length > 0;
  } catch {
    return false; // the CLI reports a missing or broken file itself
  }
}

/** Runs this same command line in a child with the malloc settings; never returns. */
async function runTuned() {
  const { spawn } = await import('node:child_process');
  const { withFuseMallocTunables, FUSE_MALLOC_MARKER } = await import('../dist/fabrics/fuse/malloc.js');
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    // fd 3: a pipe the child watches to learn that this process is gone.
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    // Own session: a terminal's Ctrl-C reaches only this process, which relays it once
    // (the daemon takes a second SIGINT as "exit without cleaning up").
    detached: true,
    env: {
      ...process.env,
      GLIBC_TUNABLES: withFuseMallocTunables(process.env.GLIBC_TUNABLES),
      [FUSE_MALLOC_MARKER]: 'tuned',
      [LUNKIT_PARENT_FD]: '3',
    },
  });
  // SIGWINCH too: the child is outside the terminal's process group, and the demo's dashboard follows resizes.
  const relayed = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
  const relay = (sig) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const s of relayed) process.on(s, relay);
  const [code, signal] = await new Promise((res) => {
    child.once('error', (e) => {
      process.stderr.write(`lunkit: cannot start: ${e.message}\n`);
      res([1, null]);
    });
    child.once('exit', (c, s) => res([c, s]));
  });
  if (signal) {
    // Die the way the child died, so a supervisor sees the same status.
    for (const s of relayed) process.off(s, relay);
    process.kill(process.pid, signal);
    await new Promise((r) => setTimeout(r, 1000));
  }
  process.exit(code ?? 1);
}

/**
 * In the child of runTuned(): when the parent disappears (only SIGKILL or a
 * crash can do that, it relays every other signal), die the same way, so
 * `kill -9` on the PID a user or supervisor knows leaves no server behind.
 */
async function watchParent() {
  const fd = Number(process.env[LUNKIT_PARENT_FD]);
  delete process.env[LUNKIT_PARENT_FD];
  if (!Number.isInteger(fd) || fd < 3) return;
  const { Socket } = await import('node:net');
  const pipe = new Socket({ fd, readable: true, writable: false });
  const gone = () => process.kill(process.pid, 'SIGKILL');
  pipe.on('end', gone);
  pipe.on('error', gone);
  pipe.resume();
  pipe.unref();
}
