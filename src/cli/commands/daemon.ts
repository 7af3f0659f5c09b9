// `lunkit daemon`: run lunkit in the foreground with a control socket that
// the other verbs (and scripts) use to change it live. Prints
// "control socket PATH", the listening portals and "ready" on stdout once it
// serves; the first SIGINT/SIGTERM stops it cleanly (in-flight commands
// finish, backstores are flushed), a second one exits at once.
// Under systemd (Type=notify, contrib/systemd/lunkit.service) it sends
// READY=1 once the configuration is applied and every portal, the control
// socket and the metrics endpoint listen, and STOPPING=1 when a signal starts
// the shutdown (daemon/sd-notify.ts).

import type { Argv, CommandModule } from 'yargs';
import { LunkitDaemon } from '../../daemon/daemon.js';
import { defaultSocketPath } from '../../daemon/paths.js';
import { createSdNotifier } from '../../daemon/sd-notify.js';
import { createLogger } from '../../util/log.js';
import { UsageError } from '../output.js';
import { untilSignalled } from '../serve-loop.js';

interface DaemonArgs {
  config?: string;
  socket: string;
  autosave: boolean;
  metrics?: string;
  backups: number;
  'log-level': 'debug' | 'info' | 'warn' | 'error';
}

export const daemonCommand: CommandModule<object, DaemonArgs> = {
  command: 'daemon',
  describe: 'Run lunkit in the foreground with a control socket; the other verbs change it live',
  builder: (y: Argv) =>
    y
      .option('config', { alias: 'c', type: 'string', describe: 'configuration to load at start (all or nothing) and the default file of `lunkit save`' })
      .option('socket', { type: 'string', default: defaultSocketPath(), describe: 'control socket path (env LUNKIT_SOCKET)' })
      .option('metrics', { type: 'string', describe: 'serve Prometheus metrics on host:port (e.g. 127.0.0.1:9470; port 0 picks one)' })
      .option('autosave', { type: 'boolean', default: false, describe: 'save the configuration after every change (to --config, or /etc/lunkit/saveconfig.json)' })
      .option('backups', { type: 'number', default: 5, describe: 'previous copies a save keeps (FILE.1 .. FILE.N)' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const })
      .option('io-threads', {
        type: 'number',
        describe: 'threads for file I/O (libuv pool; read by bin/lunkit.js before start). Default: one per core',
      })
      .check((a) => {
        if (!Number.isInteger(a.backups) || a.backups < 0 || a.backups > 100) throw new UsageError('ERR_INVALID_NUMBER', '--backups takes a whole number 0..100');
        return true;
      })
      .example('$0 daemon --config /etc/lunkit/saveconfig.json --autosave', 'serve the saved configuration and save every change')
      .example('$0 daemon --socket /tmp/lunkit.sock', 'start empty, controlled through /tmp/lunkit.sock') as Argv<DaemonArgs>,
  handler: async (args) => {
    const logger = createLogger({ level: args['log-level'] });
    const systemd = createSdNotifier({ logger });
    let daemon: LunkitDaemon;
    try {
      daemon = await LunkitDaemon.start({
        configFile: args.config,
        socketPath: args.socket,
        autosave: args.autosave,
        metrics: args.metrics,
        backups: args.backups,
        logger,
      });
    } catch (e) {
      // systemctl status shows why; the exit code (1) is what fails the start.
      systemd.notify({ STATUS: `failed to start: ${e instanceof Error ? e.message : String(e)}` });
      throw e;
    }
    process.stdout.write(`control socket ${daemon.socketPath}\n`);
    for (const a of daemon.runtime.addresses()) process.stdout.write(`listening ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}\n`);
    for (const a of daemon.runtime.nbdAddresses()) process.stdout.write(`nbd listening ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}\n`);
    if (daemon.metricsUrl) process.stdout.write(`metrics ${daemon.metricsUrl}\n`);
    process.stdout.write('ready\n');
    const portals = daemon.runtime.addresses().length + daemon.runtime.nbdAddresses().length;
    systemd.notify({ READY: 1, MAINPID: process.pid, STATUS: `serving: ${portals} portal(s) listening, control socket ${daemon.socketPath}` });
    process.exitCode = await untilSignalled(() => {
      systemd.notify({ STOPPING: 1, STATUS: 'stopping: finishing in-flight commands, flushing backstores' });
      return daemon.stop();
    }, logger);
  },
};
