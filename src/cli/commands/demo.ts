// `lunkit demo`: the daemon of `lunkit daemon` (LunkitDaemon, with its
// control socket) on an embedded default, what ./scripts/demo.sh runs. A
// ramdisk LUN (1 GiB by default) over iSCSI on 127.0.0.1:3260, any initiator
// allowed (LIO demo mode), the same LUN over NBD as export "demo" on
// 127.0.0.1:10809, and (as root, where /dev/fuse exists) as the file
// /run/lunkit/demo/demo, until SIGINT/SIGTERM.
//
// The control socket is the default one (/run/lunkit/lunkit.sock, or
// $LUNKIT_SOCKET), so `lunkit ls`, `lunkit sessions`, `lunkit top`, `lunkit
// stats` and every change verb work against the demo from another terminal
// without flags. If a daemon already listens there the demo says so and
// exits before binding a port (its portals would clash anyway). A user who
// may not create /run/lunkit gets a socket under $XDG_RUNTIME_DIR (or
// /tmp/lunkit-UID) and the banner shows the LUNKIT_SOCKET=... to use.
//
// On a terminal (stdin and stdout TTYs) the demo also opens the live
// dashboard (src/dashboard) in-process on the daemon's snapshot, with a hint
// on how to connect an initiator; `q` there stops the demo as SIGINT does
// (`lunkit top` in another terminal is the same view without owning the
// demo). Log lines are held while the dashboard owns the screen and printed
// after it. Without a terminal (scripts, CI) it prints the banner and serves
// until a signal.

import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Argv, CommandModule } from 'yargs';
import { parseConfig } from '../../daemon/config.js';
import type { RequestContext } from '../../daemon/control-server.js';
import { LunkitDaemon, type DaemonOptions } from '../../daemon/daemon.js';
import { DEFAULT_SOCKET_PATH, defaultSocketPath } from '../../daemon/paths.js';
import { runDashboard } from '../../dashboard/app.js';
import { LunkitError, isLunkitError } from '../../protocols/errors.js';
import { createLogger, type Logger } from '../../util/log.js';
import { untilSignalled } from '../serve-loop.js';

export const DEMO_IQN = 'iqn.2026-11.io.lunkit:demo';

interface DemoArgs {
  host: string;
  port: number;
  'nbd-port': number;
  size: string;
  'fuse-dir': string;
  fuse: boolean;
  socket?: string;
  'log-level': 'debug' | 'info' | 'warn' | 'error';
}

export const DEMO_NBD_EXPORT = 'demo';

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function demoConfig(host: string, port: number, size: string, nbdPort = 10809): unknown {
  return {
    backstores: { ram0: { type: 'ramdisk', size } },
    nbd: {
      listen: [hostPort(host, nbdPort)],
      exports: { [DEMO_NBD_EXPORT]: { backstore: 'ram0', description: 'lunkit demo ramdisk' } },
    },
    iscsi: {
      targets: {
        [DEMO_IQN]: {
          alias: 'lunkit demo',
          tpgs: {
            '1': {
              portals: [hostPort(host, port)],
              luns: { '0': 'ram0' },
              attributes: { generateNodeAcls: true },
              // MC/S and connection recovery on offer, so `lunkit attach
              // iscsi://... --connections 4 --erl 2` shows them; initiators
              // that ask for less (open-iscsi, libiscsi) get what they ask.
              parameters: { MaxConnections: '8', ErrorRecoveryLevel: '2' },
            },
          },
        },
      },
    },
  };
}

/**
 * Shows the demo LUN as a file through FUSE. Optional: without root or
 * /dev/fuse (or libfuse2) the demo goes on over iSCSI and NBD and says why.
 */
async function addDemoFile(daemon: LunkitDaemon, dir: string): Promise<string> {
  if (process.getuid?.() !== 0) return 'not shown (FUSE mounts need root)';
  if (!existsSync('/dev/fuse')) return 'not shown (no /dev/fuse on this machine)';
  try {
    // The same change `lunkit fuse export add` makes: all or nothing, in the daemon's configuration.
    await daemon.handle('fuse.export.add', { name: DEMO_NBD_EXPORT, backstore: 'ram0', mountpoint: dir }, LOCAL_REQUEST);
  } catch (e) {
    return `not shown (${(e as Error).message})`;
  }
  return `${dir}/${DEMO_NBD_EXPORT}  (losetup --find --show ${dir}/${DEMO_NBD_EXPORT}; mkfs; mount)`;
}

/** Log output that is held (up to `max` lines) while `holding`, then goes to stderr. */
class HeldLog extends Writable {
  holding = false;
  private readonly held: string[] = [];
  constructor(private readonly max = 1000) {
    super();
  }
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const text = chunk.toString();
    if (!this.holding) {
      process.stderr.write(text);
    } else if (this.held.length < this.max) {
      this.held.push(text);
    } else if (this.held.length === this.max) {
      this.held.push('(further log lines dropped while the dashboard was open)\n');
    }
    done();
  }
  /** Stops holding and prints what was held. */
  release(): void {
    this.holding = false;
    for (const t of this.held.splice(0)) process.stderr.write(t);
  }
}

/**
 * The dashboard on this terminal, on the demo daemon's snapshots. Resolves
 * once the terminal is restored: after `q` (then it asks for the SIGINT
 * shutdown) or when `signal` aborts (the demo is stopping for another reason).
 */
function openDashboard(daemon: LunkitDaemon, hint: string, log: HeldLog, signal: AbortSignal): Promise<void> {
  log.holding = true;
  // After a hangup the terminal is gone and writes to it fail with EIO
  // (blessed leaving the screen, the held log): nothing to tell anyone, and
  // the shutdown SIGHUP started must not be cut short by an unhandled error.
  const terminalGone = (): void => undefined;
  process.stdout.on('error', terminalGone);
  process.stderr.on('error', terminalGone);
  return runDashboard({
    io: { input: process.stdin, output: process.stdout },
    source: { snapshot: (since) => Promise.resolve(daemon.statsSnapshot(since)) },
    hint,
    signal,
  }).then(
    () => {
      // blessed resumed stdin; release it so the process can exit.
      process.stdin.pause();
      log.release();
      // `q`: the same clean shutdown as Ctrl-C outside the dashboard.
      if (!signal.aborted) process.emit('SIGINT', 'SIGINT');
    },
    (err: unknown) => {
      process.stdin.pause();
      log.release();
      process.stderr.write(`lunkit demo: the dashboard failed: ${err instanceof Error ? err.message : String(err)}\n`);
    },
  );
}

/** A request context for the demo's own changes (no client to notify). */
const LOCAL_REQUEST: RequestContext = { id: null, progress: () => undefined, connection: { notify: () => false, onClose: () => undefined } };

/** Where an unprivileged user's demo puts its socket when /run/lunkit is not theirs. */
export function userSocketPath(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'lunkit', 'lunkit.sock') : join(tmpdir(), `lunkit-${uid}`, 'lunkit.sock');
}

/**
 * The demo daemon on `socket`. A socket a live daemon holds ends the demo
 * with what to do; without permission for the default path (and none asked
 * for) it retries on userSocketPath().
 */
export async function startDemoDaemon(
  socket: string,
  chosen: boolean,
  logger: Logger,
  start: (opts: DaemonOptions) => Promise<LunkitDaemon> = (opts) => LunkitDaemon.start(opts),
): Promise<LunkitDaemon> {
  try {
    return await start({ socketPath: socket, logger });
  } catch (e) {
    if (isLunkitError(e, 'ERR_CONTROL_SOCKET_IN_USE')) {
      throw new LunkitError(
        'ERR_CONTROL_SOCKET_IN_USE',
        `a lunkit daemon already runs on ${socket}; its verbs answer there, so the demo does not start. ` +
          'Stop that daemon first, or run the demo on its own socket and ports: lunkit demo --socket /tmp/demo.sock --port 3261 --nbd-port 10810, ' +
          'then LUNKIT_SOCKET=/tmp/demo.sock lunkit ls',
      );
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (!chosen && (code === 'EACCES' || code === 'EPERM')) {
      const mine = userSocketPath();
      logger.info('no permission for the default control socket; using a per-user one', { socket: mine, default: socket });
      return startDemoDaemon(mine, true, logger, start);
    }
    throw e;
  }
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Run the daemon on the embedded default: a ramdisk LUN over iSCSI on 127.0.0.1:3260 and NBD on 127.0.0.1:10809 to any client, controlled through the default socket',
  builder: (y: Argv) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1' })
      .option('port', { type: 'number', default: 3260 })
      .option('nbd-port', { type: 'number', default: 10809, describe: 'NBD port (0 picks a free one)' })
      .option('size', { type: 'string', default: '1G', describe: 'ramdisk size (512M, 1G, ...)' })
      .option('fuse', { type: 'boolean', default: true, describe: 'also show the LUN as a file in a FUSE directory (root only; --no-fuse to skip)' })
      .option('fuse-dir', { type: 'string', default: '/run/lunkit/demo', describe: 'FUSE mount directory of the demo file' })
      .option('socket', { type: 'string', describe: `control socket of the demo daemon (default $LUNKIT_SOCKET or ${DEFAULT_SOCKET_PATH}; other verbs need LUNKIT_SOCKET=PATH for any other path)` })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const })
      .example('$0 demo', 'serve the demo; then `lunkit ls` or `lunkit top` in another terminal')
      .example('$0 demo --socket /tmp/demo.sock --port 3261 --nbd-port 10810 --no-fuse', 'a second demo beside a running daemon (LUNKIT_SOCKET=/tmp/demo.sock lunkit ls)') as Argv<DemoArgs>,
  handler: async (args) => {
    const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const held = new HeldLog();
    const logger = createLogger({ level: args['log-level'], ...(interactive ? { out: held } : {}) });
    // Checked before anything starts: a bad --size is a usage problem, not a failed start.
    const doc = demoConfig(args.host, args.port, args.size, args['nbd-port']);
    parseConfig(doc, 'the demo defaults');
    const daemon = await startDemoDaemon(args.socket ?? defaultSocketPath(), args.socket !== undefined || Boolean(process.env.LUNKIT_SOCKET), logger);
    const closing = new AbortController();
    let dashboard: Promise<void> | undefined;
    // Closing the terminal (SIGHUP) stops the demo cleanly too, so no FUSE
    // mount stays behind: untilSignalled handles SIGHUP like SIGINT (a second
    // handler here would count as a second signal and exit at once).
    try {
      try {
        // The embedded default goes in as one change, like `lunkit restore` of it.
        await daemon.handle('config.replace', { config: doc }, LOCAL_REQUEST);
      } catch (e) {
        await daemon.stop(0);
        throw e;
      }
      const fuseLine = args.fuse ? await addDemoFile(daemon, args['fuse-dir']) : 'off (--no-fuse)';
      const rt = daemon.runtime;
      const a = rt.addresses()[0];
      const host = a.host.includes(':') ? `[${a.host}]` : a.host;
      const url = `iscsi://${host}:${a.port}/${DEMO_IQN}/0`;
      const n = rt.nbdAddresses()[0];
      const nbdUrl = n ? `nbd://${hostPort(n.host, n.port)}/${DEMO_NBD_EXPORT}` : '';
      // Another terminal finds the default socket by itself; any other path it must be told.
      const told = daemon.socketPath === DEFAULT_SOCKET_PATH ? '' : `  (export LUNKIT_SOCKET=${daemon.socketPath} in the other terminal)`;
      process.stdout.write(
        [
          `lunkit demo: a ${args.size} ramdisk LUN over iSCSI and NBD`,
          `  URL:       ${url}`,
          `  discover:  iscsi-ls -s iscsi://${host}:${a.port}/`,
          `  inquire:   iscsi-inq ${url}`,
          `  copy in:   qemu-img convert -O raw disk.img ${url}`,
          `  NBD:       ${nbdUrl}`,
          `  nbdinfo:   nbdinfo ${nbdUrl}`,
          `  file:      ${fuseLine}`,
          `  control:   ${daemon.socketPath}${told}`,
          '  manage:    lunkit ls | lunkit sessions --json | lunkit top | lunkit stats   (from another terminal)',
          interactive ? 'Stop with q in the dashboard, Ctrl-C or SIGTERM.' : 'Stop with Ctrl-C or SIGTERM.',
          'ready',
          '',
        ].join('\n'),
      );
      if (interactive) dashboard = openDashboard(daemon, `watch it move: iscsi-perf ${url}`, held, closing.signal);
      process.exitCode = await untilSignalled(() => daemon.stop(), logger);
    } finally {
      // Stopped by a signal while the dashboard is open: give the terminal back.
      closing.abort();
      await dashboard;
      held.release();
    }
  },
};
