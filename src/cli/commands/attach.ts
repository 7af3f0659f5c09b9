// `lunkit attach <image | nbd://... | iscsi://...> [file]`: show a disk image,
// a remote NBD export or a remote iSCSI LUN as one local file in a FUSE
// directory (what nbdfuse does). By default the holder runs detached and this
// prints the file's path.

import type { Argv, CommandModule } from 'yargs';
import { AttachError, requireRoot } from '../../attach/errors.js';
import { attachDaemonLun } from '../../attach/daemon-lun.js';
import { startDetached } from '../../attach/attach.js';
import { planAttach } from '../../attach/plan.js';
import { describeSource, parseSource, withSourceOptions } from '../../attach/source.js';
import { applyUrlSecrets, withUrlSecretOptions, type UrlSecretArgs } from '../secret.js';
import { createLogger } from '../../util/log.js';

interface AttachArgs extends UrlSecretArgs {
  source: string;
  file?: string;
  'block-size': 512 | 4096;
  'read-only': boolean;
  foreground: boolean;
  'direct-io': boolean;
  json: boolean;
  connections?: number;
  erl?: number;
  socket?: string;
}

export const attachCommand: CommandModule<object, AttachArgs> = {
  command: 'attach <source> [file]',
  describe: 'Show an image file, NBD export or iSCSI LUN as a local file (FUSE); prints its path',
  builder: (y: Argv) =>
    withUrlSecretOptions(y)
      .positional('source', { type: 'string', demandOption: true, describe: 'image file, nbd://host[:port]/export, nbd+unix:///export?socket=PATH or iscsi://[user@]host[:port]/iqn/lun' })
      .positional('file', { type: 'string', describe: 'path of the file to create: its directory becomes the FUSE mount point (default: /run/lunkit/attach/<id>/<name>)' })
      .option('block-size', { choices: [512, 4096] as const, default: 512 as const, describe: 'logical block size of the LUN' })
      .option('read-only', { alias: 'r', type: 'boolean', default: false })
      .option('foreground', { alias: 'f', type: 'boolean', default: false, describe: 'serve in this process until SIGINT/SIGTERM' })
      .option('direct-io', { type: 'boolean', default: false, describe: 'mount the FUSE directory with direct_io (no page cache)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the attachment record as JSON' })
      .option('connections', { type: 'number', describe: 'iscsi://: connections per session (MC/S; the target may grant fewer); nbd://: NBD connections if the server has multi-conn (default 4, else 1)' })
      .option('erl', { type: 'number', choices: [0, 1, 2], describe: 'iscsi://: ErrorRecoveryLevel to ask for' })
      .option('socket', { type: 'string', describe: 'lunkit:<backstore>: control socket of the daemon (default $LUNKIT_SOCKET or /run/lunkit/lunkit.sock)' })
      .example('$0 attach disk.img', 'prints /run/lunkit/attach/disk.img-xxxxxx/disk.img')
      .example('$0 attach nbd://server/exp /mnt/nbd/disk', 'serve the export as /mnt/nbd/disk')
      .example('$0 attach nbd://server/exp --connections 8', 'over 8 NBD connections (if the server has multi-conn)')
      .example('$0 attach iscsi://10.0.0.5/iqn.2003-01.org.example:disk/1 --connections 4 --erl 2', 'a remote LUN over 4 connections') as Argv<AttachArgs>,
  handler: async (args) => {
    requireRoot('lunkit attach');
    await applyUrlSecrets(args);
    const source = withSourceOptions(parseSource(args.source), { connections: args.connections, erl: args.erl });
    if (source.kind === 'daemon-lun') {
      if (args.foreground) throw new AttachError('ERR_ATTACH_SOURCE', 'lunkit:<backstore> is served by the daemon: --foreground does not apply');
      const state = await attachDaemonLun({ backstore: source.backstore, socket: args.socket, file: args.file, readOnly: args['read-only'] });
      process.stdout.write(args.json ? JSON.stringify(state) + '\n' : `${state.file}\n`);
      return;
    }
    const plan = planAttach(source, { file: args.file, blockSize: args['block-size'], readOnly: args['read-only'], directIo: args['direct-io'] });
    if (!args.foreground) {
      const state = await startDetached(plan);
      process.stdout.write(args.json ? JSON.stringify(state) + '\n' : `${state.file}\n`);
      return;
    }
    const logger = createLogger({});
    // Loaded only here: the holder brings the FUSE fabric and the core.
    const { runHolder } = await import('../../attach/holder.js');
    const holder = await runHolder(plan, logger);
    process.stdout.write(args.json ? JSON.stringify(holder.state) + '\n' : `${holder.state.file}\n`);
    logger.info('attached; SIGINT or SIGTERM detaches', { source: describeSource(source), file: holder.state.file });
    await new Promise<void>((res) => {
      const stop = (): void => {
        void holder.stop().then(res);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
