// `lunkit detach <file | dir | id>`: stop an attachment made by `lunkit attach`.

import type { Argv, CommandModule } from 'yargs';
import { AttachError, requireRoot } from '../../attach/errors.js';
import { detach, findAttach } from '../../attach/attach.js';

interface DetachArgs {
  target: string;
  force: boolean;
}

export const detachCommand: CommandModule<object, DetachArgs> = {
  command: 'detach <target>',
  describe: 'Stop an attachment (by its file, its directory or its id): flush, unmount, remove its state',
  builder: (y: Argv) =>
    y
      .positional('target', { type: 'string', demandOption: true })
      .option('force', { type: 'boolean', default: false, describe: 'detach even while a loop device uses the file' })
      .example('$0 detach /run/lunkit/attach/disk.img-xxxxxx/disk.img', 'the file `lunkit attach` printed')
      .example('$0 detach /mnt/nbd/disk --force', 'even while a loop device uses it') as Argv<DetachArgs>,
  handler: async (args) => {
    requireRoot('lunkit detach');
    const state = await findAttach(args.target);
    if (!state) throw new AttachError('ERR_ATTACH_NOT_FOUND', `no attachment for ${args.target}`);
    await detach(state, { force: args.force });
    process.stdout.write(`detached ${state.file}\n`);
  },
};
