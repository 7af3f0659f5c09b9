// `lunkit umount <dir>`: undo `lunkit mount` (umount, losetup -d, detach), also after a crash or a half-done mount.

import type { Argv, CommandModule } from 'yargs';
import { requireRoot } from '../../attach/errors.js';
import { umountImage } from '../../attach/mount.js';

interface UmountArgs {
  dir: string;
}

export const umountCommand: CommandModule<object, UmountArgs> = {
  command: 'umount <dir>',
  describe: 'Unmount what `lunkit mount` mounted on dir: filesystem, loop device, FUSE file',
  builder: (y: Argv) => y.positional('dir', { type: 'string', demandOption: true }).example('$0 umount /mnt/disk', 'unmount what `lunkit mount` mounted and detach it') as Argv<UmountArgs>,
  handler: async (args) => {
    requireRoot('lunkit umount');
    await umountImage(args.dir);
    process.stdout.write(`unmounted ${args.dir}\n`);
  },
};
