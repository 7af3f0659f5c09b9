// `lunkit nbd export add|delete|list`: NBD exports of backstores. The first
// export creates the NBD listener (127.0.0.1:10809) if there is none.

import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { nbdExportAddParams } from '../params.js';
import { callVerb, listVerb } from '../verbs.js';

interface AddArgs extends CommonArgs {
  name: string;
  backstore: string;
  'read-only'?: boolean;
  description?: string;
}

const add: CommandModule<object, AddArgs> = {
  command: 'add <name> <backstore>',
  describe: 'Export a backstore over NBD under a name',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string', describe: 'export name clients ask for' })
        .positional('backstore', { type: 'string', describe: 'backstore name' })
        .option('read-only', { type: 'boolean', default: false, describe: 'refuse writes' })
        .option('description', { type: 'string', describe: 'text shown by nbdinfo' })
        .example('$0 nbd export add disk0 disk0', 'nbd://127.0.0.1/disk0')
        .example('$0 nbd export add golden disk1 --read-only --description "golden image"', 'a read-only export'),
    ) as Argv<AddArgs>,
  handler: (args) =>
    callVerb(
      args,
      'nbd.export.add',
      () => nbdExportAddParams({ name: args.name, backstore: args.backstore, readOnly: args['read-only'], description: args.description }),
      (_params) => `Added NBD export ${args.name} -> ${args.backstore}.`,
    ),
};

interface NameArgs extends CommonArgs {
  name: string;
}

const del: CommandModule<object, NameArgs> = {
  command: 'delete <name>',
  describe: 'Delete an NBD export; connections to it end',
  builder: (y: Argv) => withCommon(y.positional('name', { type: 'string' }).example('$0 nbd export delete disk0', 'stop exporting disk0')) as Argv<NameArgs>,
  handler: (args) =>
    callVerb(
      args,
      'nbd.export.delete',
      () => ({ name: args.name }),
      (_params) => `Deleted NBD export ${args.name}.`,
    ),
};

const list = listVerb({
  describe: 'List the NBD exports',
  example: ['$0 nbd export list', 'name, backstore, flags'],
  headers: ['EXPORT', 'BACKSTORE', 'MODE', 'DESCRIPTION'],
  view: (config) => {
    const exports = config.nbd?.exports ?? {};
    return { data: exports, rows: Object.entries(exports).map(([n, e]) => [n, e.backstore, e.readOnly ? 'ro' : 'rw', e.description ?? '']) };
  },
});

const exportCmd: CommandModule = {
  command: 'export <command>',
  describe: 'Add, delete and list NBD exports',
  builder: (y: Argv) => y.command(add).command(del).command(list).example('$0 nbd export add disk0 disk0', 'serve backstore disk0 as NBD export disk0').demandCommand(1, 'name an nbd export command: add, delete or list'),
  handler: () => undefined,
};

export const nbdCommand: CommandModule = {
  command: 'nbd <command>',
  describe: 'NBD server exports',
  builder: (y: Argv) => y.command(exportCmd).example('$0 nbd export list', 'the NBD exports').demandCommand(1, 'name an nbd command: export'),
  handler: () => undefined,
};
