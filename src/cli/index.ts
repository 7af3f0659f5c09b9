// The lunkit command line: one yargs command module per verb (STYLE.md §20);
// handlers call the library and print.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { serveCommand } from './commands/serve.js';
import { demoCommand } from './commands/demo.js';

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  await yargs(argv)
    .scriptName('lunkit')
    .usage('$0 <command> [options]\n\nA userspace SCSI target toolkit: SPC-4/SBC-3 core, file/ramdisk/null backstores, iSCSI target.')
    .command(serveCommand)
    .command(demoCommand)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .completion('completion', 'print a shell completion script')
    .fail((msg, err) => {
      if (err) {
        const code = (err as { code?: string }).code;
        process.stderr.write(`lunkit: ${err.message}${code ? ` (${code})` : ''}\n`);
        process.exit(1);
      }
      process.stderr.write(`lunkit: ${msg}\n(see lunkit --help)\n`);
      process.exit(2);
    })
    .help()
    .version()
    .parseAsync();
}
