// `lunkit save [file]`: the daemon writes its running configuration atomically
// (temp file, fsync, rename, fsync dir), keeping the previous copies.

import type { Argv, CommandModule } from 'yargs';

import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { saveParams } from '../params.js';

interface SaveArgs extends CommonArgs {
  file?: string;
}

export const saveCommand: CommandModule<object, SaveArgs> = {
  command: 'save [file]',
  describe: "Save the running configuration (default: the daemon's --config file, or /etc/lunkit/saveconfig.json)",
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('file', { type: 'string', describe: 'where to write it (the daemon writes it: it needs access)' })
        .example('$0 save', 'to the default file')
        .example('$0 save ./lab.json', 'to lab.json here, keeping lab.json.1 ... as backups'),
    ) as Argv<SaveArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => saveParams({ file: args.file }),
      async (client, params) => {
        const res = await client.call<{ path: string; backups?: unknown }>('config.save', params);
        printResult(res, args.json, () => `Saved the configuration to ${res.path}.`);
      },
    ),
};
