// `lunkit serve --config FILE`: run the target described by a JSON config in
// the foreground.

import type { Argv, CommandModule } from 'yargs';
import { loadConfigFile } from '../../daemon/config.js';
import { createLogger } from '../../util/log.js';
import { serveUntilSignalled } from '../serve-loop.js';

interface ServeArgs {
  config: string;
  'log-level': 'debug' | 'info' | 'warn' | 'error';
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve the backstores and iSCSI targets of a JSON configuration until SIGINT/SIGTERM',
  builder: (y: Argv) =>
    y
      .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'configuration file (see docs/config.md)' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const })
      .option('io-threads', {
        type: 'number',
        describe: 'threads for file I/O (libuv pool; read by bin/lunkit.js before start). Default: one per core',
      })
      .example('$0 serve --config /etc/lunkit/lunkit.json', 'serve the targets in that file') as Argv<ServeArgs>,
  handler: async (args) => {
    const logger = createLogger({ level: args['log-level'] });
    const cfg = await loadConfigFile(args.config);
    process.exitCode = await serveUntilSignalled(cfg, logger, (rt) => {
      for (const a of rt.addresses()) process.stdout.write(`listening ${a.host}:${a.port}\n`);
      for (const iqn of Object.keys(cfg.iscsi.targets)) {
        const a = rt.addresses()[0];
        if (a) process.stdout.write(`target iscsi://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/${iqn}/0\n`);
      }
      process.stdout.write('ready\n');
    });
  },
};
