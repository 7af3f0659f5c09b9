// `lunkit fuse export add|delete|list`: LUNs of the running daemon shown as
// files in a FUSE directory (our tcm_loop). The daemon mounts the directory
// on the first export and unmounts it when its last export goes.

import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { callVerb, listVerb } from '../verbs.js';

interface AddArgs extends CommonArgs {
  name: string;
  backstore: string;
  mountpoint?: string;
  'read-only'?: boolean;
}

interface DeleteArgs extends CommonArgs {
  name: string;
  mountpoint?: string;
}

const mountpointOption = {
  type: 'string',
  describe: 'FUSE mount directory (absolute; default: the only one, else /run/lunkit/fuse)',
} as const;

const add: CommandModule<object, AddArgs> = {
  command: 'add <name> <backstore>',
  describe: 'Show a backstore as the file <mountpoint>/<name>',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string', describe: 'file name in the mount directory' })
        .positional('backstore', { type: 'string', describe: 'backstore name' })
        .option('mountpoint', mountpointOption)
        .option('read-only', { type: 'boolean', default: false, describe: 'the file is read-only' })
        .example('$0 fuse export add disk0 disk0', '/run/lunkit/fuse/disk0, ready for losetup')
        .example('$0 fuse export add golden disk1 --mountpoint /mnt/luns --read-only', 'a read-only file under /mnt/luns'),
    ) as Argv<AddArgs>,
  handler: (args) =>
    callVerb(
      args,
      'fuse.export.add',
      () => ({
        name: args.name,
        backstore: args.backstore,
        readOnly: args['read-only'] ?? false,
        ...(args.mountpoint !== undefined ? { mountpoint: args.mountpoint } : {}),
      }),
      (_params, result) => `Exported ${args.backstore} as ${result.file ?? args.name}.`,
    ),
};

const del: CommandModule<object, DeleteArgs> = {
  command: 'delete <name>',
  describe: 'Remove a FUSE export (the directory is unmounted with its last file)',
  builder: (y: Argv) =>
    withCommon(y.positional('name', { type: 'string' }).option('mountpoint', mountpointOption).example('$0 fuse export delete disk0', 'remove the file')) as Argv<DeleteArgs>,
  handler: (args) =>
    callVerb(
      args,
      'fuse.export.delete',
      () => ({ name: args.name, ...(args.mountpoint !== undefined ? { mountpoint: args.mountpoint } : {}) }),
      (_params) => `Deleted FUSE export ${args.name}.`,
    ),
};

const list = listVerb({
  describe: 'List the FUSE exports',
  example: ['$0 fuse export list', 'file, backstore, mode'],
  headers: ['FILE', 'BACKSTORE', 'MODE'],
  view: (config) => {
    const mounts = config.fuse ?? {};
    const rows = Object.entries(mounts).flatMap(([mnt, m]) => Object.entries(m.exports).map(([n, e]) => [`${mnt}/${n}`, e.backstore, e.readOnly ? 'ro' : 'rw']));
    return { data: mounts, rows };
  },
});

const exportCmd: CommandModule = {
  command: 'export <command>',
  describe: 'Add, delete and list FUSE exports',
  builder: (y: Argv) => y.command(add).command(del).command(list).example('$0 fuse export add disk0 disk0', 'backstore disk0 as a file in the FUSE directory').demandCommand(1, 'name a fuse export command: add, delete or list'),
  handler: () => undefined,
};

export const fuseCommand: CommandModule = {
  command: 'fuse <command>',
  describe: 'FUSE exports: LUNs as local files (loop-mountable)',
  builder: (y: Argv) => y.command(exportCmd).example('$0 fuse export list', 'the FUSE files').demandCommand(1, 'name a fuse command: export'),
  handler: () => undefined,
};
