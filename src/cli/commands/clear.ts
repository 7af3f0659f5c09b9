// `lunkit clear`: remove every target, NBD export and backstore.

import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { callVerb } from '../verbs.js';

export const clearCommand: CommandModule<object, CommonArgs> = {
  command: 'clear',
  describe: 'Remove every target, NBD export and backstore (sessions end; image files stay on disk)',
  builder: (y: Argv) => withCommon(y.example('$0 clear && $0 restore lab.json', 'start again from a file')) as Argv<CommonArgs>,
  handler: (args) =>
    callVerb(args, 'config.clear', () => ({}), () => 'Cleared the configuration.'),
};
