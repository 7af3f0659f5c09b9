// `lunkit restore FILE`: replace the whole running configuration with a saved
// one. The file is read, migrated and validated here first (every problem with
// its JSON path), then the daemon validates it again and applies it
// all-or-nothing. A progress bar counts the objects applied on a terminal.

import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { callVerb } from '../verbs.js';

interface RestoreArgs extends CommonArgs {
  file: string;
  'dry-run'?: boolean;
}

export const restoreCommand: CommandModule<object, RestoreArgs> = {
  command: 'restore <file>',
  describe: 'Replace the running configuration with a saved one (validated first; all-or-nothing)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('file', { type: 'string', describe: 'a file written by lunkit save (or by hand, see docs/config.md)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'only validate, on the daemon too; change nothing' })
        .example('$0 restore /etc/lunkit/saveconfig.json', 'back to the saved state')
        .example('$0 restore lab.json --dry-run', 'check a file against the running daemon'),
    ) as Argv<RestoreArgs>,
  handler: (args) =>
    callVerb(
      args,
      'config.replace',
      async () => {
        // Loaded here: the schema is only needed by this verb.
        const { loadConfigDoc } = await import('../../daemon/saveconfig.js');
        const params: Record<string, unknown> = { config: (await loadConfigDoc(args.file)).doc };
        if (args['dry-run']) params.dryRun = true;
        return params;
      },
      () => (args['dry-run'] ? `${args.file} is valid; nothing was changed.` : `Restored the configuration from ${args.file}.`),
      { progress: 'objects' },
    ),
};
