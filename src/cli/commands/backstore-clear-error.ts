// `lunkit backstore clear-error NAME`: trust a LU's flushes again after one
// failed (docs/cli.md; core/io-guard.ts). A failed fdatasync may have lost
// writes the initiator was told were durable, so the LU refuses every flush
// and FUA write (MEDIUM ERROR) until the operator has checked or restored
// the data and says so here.

import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { checkName } from '../params.js';
import { callVerb } from '../verbs.js';

interface NameArgs extends CommonArgs {
  name: string;
}

export const clearErrorVerb: CommandModule<object, NameArgs> = {
  command: 'clear-error <name>',
  describe: 'After a failed flush: let the LU accept flushes and FUA writes again (check the data first: writes may have been lost)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string', describe: 'a backstore shown with MEDIUM ERROR in `lunkit ls` or `lunkit stats`' })
        .example('$0 backstore clear-error disk0', 'disk0 flushes again (its data was checked)'),
    ) as Argv<NameArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.clearError',
      () => ({ name: checkName(args.name, 'backstore name') }),
      (_p, res) => {
        const c = res.cleared as { code: string; at: number; refused: number } | null;
        return c === null
          ? `Backstore ${args.name} had no medium error; nothing changed.`
          : `Cleared the medium error of backstore ${args.name} (${c.code} at ${new Date(c.at).toISOString()}, ${c.refused} flushes/FUA writes refused since).`;
      },
    ),
};
