// `lunkit mount <image | nbd://... | iscsi://... | lunkit:<backstore>> <dir>`:
// FUSE file + loop device + mount(8) in one step; `lunkit umount <dir>` undoes it.
// A lunkit:<backstore> source is served by the running daemon (--socket).

import type { Argv, CommandModule } from 'yargs';
import { requireRoot } from '../../attach/errors.js';
import { mountImage } from '../../attach/mount.js';
import type { MkfsType } from '../../attach/system.js';
import { applyUrlSecrets, withUrlSecretOptions, type UrlSecretArgs } from '../secret.js';

interface MountArgs extends UrlSecretArgs {
  source: string;
  dir: string;
  options?: string;
  type?: string;
  mkfs?: MkfsType;
  'read-only': boolean;
  'block-size': 512 | 4096;
  'loop-direct-io': boolean;
  json: boolean;
  connections?: number;
  erl?: number;
  socket?: string;
}

export const mountCommand: CommandModule<object, MountArgs> = {
  command: 'mount <source> <dir>',
  describe: 'Mount the filesystem of an image file, NBD export, iSCSI LUN or daemon LUN on a directory (FUSE file + loop device)',
  builder: (y: Argv) =>
    withUrlSecretOptions(y)
      .positional('source', { type: 'string', demandOption: true, describe: 'image file, nbd://host[:port]/export, nbd+unix:///export?socket=PATH, iscsi://[user@]host[:port]/iqn/lun or lunkit:<backstore>' })
      .positional('dir', { type: 'string', demandOption: true, describe: 'existing directory to mount on' })
      .option('options', { alias: 'o', type: 'string', describe: 'mount(8) options, passed through' })
      .option('type', { alias: 't', type: 'string', describe: 'filesystem type for mount(8) (default: probed)' })
      .option('mkfs', { choices: ['ext4', 'xfs'] as const, describe: 'create this filesystem first (destroys the contents)' })
      .option('read-only', { alias: 'r', type: 'boolean', default: false })
      .option('block-size', { choices: [512, 4096] as const, default: 512 as const })
      .option('loop-direct-io', { type: 'boolean', default: true, describe: 'losetup --direct-io=on: one page cache, not two (default; --no-loop-direct-io turns it off; see docs/fuse.md)' })
      .option('json', { type: 'boolean', default: false })
      .option('connections', { type: 'number', describe: 'iscsi://: connections per session (MC/S); nbd://: NBD connections if the server has multi-conn (default 4, else 1)' })
      .option('erl', { type: 'number', choices: [0, 1, 2], describe: 'iscsi://: ErrorRecoveryLevel to ask for' })
      .option('socket', { type: 'string', describe: 'lunkit:<backstore>: control socket of the daemon (default $LUNKIT_SOCKET or /run/lunkit/lunkit.sock)' })
      .example('$0 mount disk.img /mnt/disk', 'mount the filesystem inside disk.img')
      .example('$0 mount nbd://server/exp /mnt/x --mkfs ext4', 'format and mount a remote export')
      .example('$0 mount iscsi://10.0.0.5/iqn.2003-01.org.example:disk/1 /mnt/x --connections 2', 'a remote iSCSI LUN')
      .example('$0 mount lunkit:disk0 /mnt/x', 'backstore disk0 of the running daemon') as Argv<MountArgs>,
  handler: async (args) => {
    requireRoot('lunkit mount');
    await applyUrlSecrets(args);
    const state = await mountImage({
      source: args.source,
      dir: args.dir,
      options: args.options,
      fsType: args.type,
      mkfs: args.mkfs,
      readOnly: args['read-only'],
      blockSize: args['block-size'],
      loopDirectIo: args['loop-direct-io'],
      connections: args.connections,
      erl: args.erl,
      socket: args.socket,
      onStep: args.json ? undefined : (m) => process.stderr.write(`lunkit: ${m}\n`),
    });
    process.stdout.write(args.json ? JSON.stringify(state) + '\n' : `mounted ${args.source} on ${state.dir} (${state.loop}, ${state.file})\n`);
  },
};
