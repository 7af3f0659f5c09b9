// `lunkit top [--socket PATH] [--interval S]`: the live dashboard (blessed)
// on this terminal, fed by the daemon's stats.subscribe stream (or
// stats.snapshot polls against a daemon without subscriptions).

import type { Argv, CommandModule } from 'yargs';

import { ControlClient } from '../../daemon/control-client.js';
import { runDashboard, type SnapshotFeed } from '../../dashboard/app.js';
import { UsageError, reportError, type CommonArgs } from '../output.js';
import { streamSnapshots, type SnapshotStream } from './stats.js';

interface TopArgs extends CommonArgs {
  interval: number;
}

/** The dashboard's feed from the daemon: streamSnapshots started on `start`, stopped on quit. */
export function daemonFeed(client: ControlClient, intervalMs: number): SnapshotFeed {
  return {
    start: (sink) => {
      let stream: SnapshotStream | undefined;
      let ended = false;
      const handlers = {
        onSnapshot: (snap: Parameters<typeof sink.snapshot>[0]) => sink.snapshot(snap),
        onError: (err: Error) => sink.error(err.message),
      };
      streamSnapshots(client, intervalMs, handlers).then(
        (s) => {
          stream = s;
          if (ended) void s.stop();
        },
        (err: unknown) => sink.error(err instanceof Error ? err.message : String(err)),
      );
      return () => {
        ended = true;
        void stream?.stop();
      };
    },
  };
}

export const topCommand: CommandModule<object, TopArgs> = {
  command: 'top',
  describe: 'Live dashboard: objects, sessions, per-LUN throughput, latency and events (q quits)',
  builder: (y: Argv) =>
    y
      .option('socket', { type: 'string', describe: 'control socket of the daemon (default $LUNKIT_SOCKET or /run/lunkit/lunkit.sock)' })
      .option('interval', { alias: 'i', type: 'number', default: 1, describe: 'seconds between snapshots' })
      .example('$0 top', 'watch the local daemon')
      .example('$0 top --interval 0.5', 'refresh twice a second') as unknown as Argv<TopArgs>,
  handler: async (args) => {
    let client: ControlClient | undefined;
    try {
      if (!(args.interval > 0)) throw new UsageError('ERR_INVALID_PARAMS', '--interval must be a number of seconds above 0');
      if (!process.stdout.isTTY || !process.stdin.isTTY) {
        throw new UsageError('ERR_NOT_A_TERMINAL', 'lunkit top needs a terminal; use `lunkit stats --watch` in scripts');
      }
      const c = (client = await ControlClient.connect(args.socket));
      await runDashboard({
        io: { input: process.stdin, output: process.stdout },
        source: daemonFeed(c, args.interval * 1000),
        intervalMs: args.interval * 1000,
      });
      // blessed resumed stdin; let the process exit now that the screen is gone.
      process.stdin.pause();
      process.exitCode = 0;
    } catch (err) {
      process.exitCode = reportError(err, false);
    } finally {
      client?.close();
    }
  },
};
