// `lunkit demo`: the main job on an embedded default, what ./scripts/demo.sh
// runs. A ramdisk LUN (1 GiB by default) over iSCSI on 127.0.0.1:3260, any
// initiator allowed (LIO demo mode), the same LUN over NBD as export "demo" on
// 127.0.0.1:10809, and (as root, where /dev/fuse exists) as the file
// /run/lunkit/demo/demo, until SIGINT/SIGTERM.
//
// On a terminal (stdin and stdout TTYs) the demo also opens the live
// dashboard (src/dashboard) in-process on its own runtime, with a hint on how
// to connect an initiator; `q` there stops the demo as SIGINT does. Log lines
// are held while the dashboard owns the screen and printed after it. Without
// a terminal (scripts, CI) it prints the URLs and serves until a signal.

import { existsSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { Argv, CommandModule } from 'yargs';
import { parseConfig } from '../../daemon/config.js';
import { StatsEventLog, collectStatsSnapshot } from '../../daemon/metrics.js';
import type { LunkitRuntime } from '../../daemon/runtime.js';
import { runDashboard } from '../../dashboard/app.js';
import { createLogger } from '../../util/log.js';
import { serveUntilSignalled } from '../serve-loop.js';

export const DEMO_IQN = 'iqn.2026-11.io.lunkit:demo';

interface DemoArgs {
  host: string;
  port: number;
  'nbd-port': number;
  size: string;
  'fuse-dir': string;
  fuse: boolean;
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
async function addDemoFile(rt: LunkitRuntime, doc: Record<string, unknown>, dir: string): Promise<string> {
  if (process.getuid?.() !== 0) return 'not shown (FUSE mounts need root)';
  if (!existsSync('/dev/fuse')) return 'not shown (no /dev/fuse on this machine)';
  try {
    await rt.apply(parseConfig({ ...doc, fuse: { [dir]: { exports: { [DEMO_NBD_EXPORT]: { backstore: 'ram0' } } } } }, 'the demo defaults'));
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
 * The dashboard on this terminal, on the demo's runtime. Resolves once the
 * terminal is restored: after `q` (then it asks for the SIGINT shutdown) or
 * when `signal` aborts (the demo is stopping for another reason).
 */
function openDashboard(rt: LunkitRuntime, events: StatsEventLog, hint: string, log: HeldLog, signal: AbortSignal): Promise<void> {
  log.holding = true;
  return runDashboard({
    io: { input: process.stdin, output: process.stdout },
    source: { snapshot: (since) => Promise.resolve(collectStatsSnapshot({ core: rt.core, iscsi: rt.iscsi, events }, { eventsSince: since })) },
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

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Serve a ramdisk LUN over iSCSI on 127.0.0.1:3260 and NBD on 127.0.0.1:10809 to any client (the embedded default)',
  builder: (y: Argv) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1' })
      .option('port', { type: 'number', default: 3260 })
      .option('nbd-port', { type: 'number', default: 10809, describe: 'NBD port (0 picks a free one)' })
      .option('size', { type: 'string', default: '1G', describe: 'ramdisk size (512M, 1G, ...)' })
      .option('fuse', { type: 'boolean', default: true, describe: 'also show the LUN as a file in a FUSE directory (root only; --no-fuse to skip)' })
      .option('fuse-dir', { type: 'string', default: '/run/lunkit/demo', describe: 'FUSE mount directory of the demo file' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const }) as Argv<DemoArgs>,
  handler: async (args) => {
    const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const held = new HeldLog();
    const logger = createLogger({ level: args['log-level'], ...(interactive ? { out: held } : {}) });
    // Subscribed before the runtime starts, so the dashboard sees every login.
    const events = interactive ? new StatsEventLog() : undefined;
    const closing = new AbortController();
    let dashboard: Promise<void> | undefined;
    // Closing the terminal (SIGHUP) stops the demo cleanly too, so no FUSE mount stays behind.
    const onHangup = (): void => {
      process.emit('SIGINT', 'SIGINT');
    };
    if (interactive) process.on('SIGHUP', onHangup);
    const cfg = parseConfig(demoConfig(args.host, args.port, args.size, args['nbd-port']), 'the demo defaults');
    const demoDoc = demoConfig(args.host, args.port, args.size, args['nbd-port']) as Record<string, unknown>;
    try {
      process.exitCode = await serveUntilSignalled(cfg, logger, async (rt) => {
        const fuseLine = args.fuse ? await addDemoFile(rt, demoDoc, args['fuse-dir']) : 'off (--no-fuse)';
        const a = rt.addresses()[0];
        const host = a.host.includes(':') ? `[${a.host}]` : a.host;
        const url = `iscsi://${host}:${a.port}/${DEMO_IQN}/0`;
        const n = rt.nbdAddresses()[0];
        const nbdUrl = n ? `nbd://${hostPort(n.host, n.port)}/${DEMO_NBD_EXPORT}` : '';
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
            interactive ? 'Stop with q in the dashboard, Ctrl-C or SIGTERM.' : 'Stop with Ctrl-C or SIGTERM.',
            'ready',
            '',
          ].join('\n'),
        );
        if (events) dashboard = openDashboard(rt, events, `watch it move: iscsi-perf ${url}`, held, closing.signal);
      });
    } finally {
      // Stopped by a signal while the dashboard is open: give the terminal back.
      closing.abort();
      await dashboard;
      held.release();
      events?.close();
      process.off('SIGHUP', onHangup);
    }
  },
};
