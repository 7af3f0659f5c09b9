// `lunkit backstore create|delete|list|resize`: storage objects (LIO's
// backstores). Creating a thick file backstore and resizing show a progress bar
// on a terminal.

import type { Argv, CommandModule } from 'yargs';

import type { ConfigDoc } from '../../daemon/config-doc.js';
import { withCommon, type CommonArgs } from '../output.js';
import { BACKSTORE_TYPES, backstoreCreateParams, backstoreResizeParams, checkName } from '../params.js';
import { formatSize } from '../../util/size.js';
import { callVerb, listVerb } from '../verbs.js';

interface CreateArgs extends CommonArgs {
  type: string;
  name: string;
  size?: string;
  path?: string;
  thin?: boolean;
  'block-size'?: number;
  url?: string;
  'read-only'?: boolean;
  removable?: boolean;
  serial?: string;
}

const create: CommandModule<object, CreateArgs> = {
  command: 'create <type> <name>',
  describe: 'Create a backstore: file (--path, --size), ramdisk (--size), null (--size) or nbd (--url)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('type', { choices: BACKSTORE_TYPES, describe: 'backstore type' })
        .positional('name', { type: 'string', describe: 'backstore name (A-Z a-z 0-9 _ . : -)' })
        .option('size', { type: 'string', describe: 'size with unit (10G, 512M); for file: the size of a new file' })
        .option('path', { type: 'string', describe: 'file: the image file (created if missing)' })
        .option('thin', { type: 'boolean', describe: 'file: sparse file with UNMAP (default), --no-thin preallocates' })
        .option('block-size', { type: 'number', choices: [512, 4096], describe: 'logical block size (default 512)' })
        .option('url', { type: 'string', describe: 'nbd: nbd://host[:port]/export or nbd+unix:///export?socket=PATH' })
        .option('read-only', { type: 'boolean', describe: 'refuse writes' })
        .option('removable', { type: 'boolean', describe: 'report a removable medium' })
        .option('serial', { type: 'string', describe: 'unit serial number (VPD page 0x80)' })
        .example('$0 backstore create file disk0 --path /srv/disk0.img --size 10G', 'a sparse 10 GiB image file')
        .example('$0 backstore create file disk1 --path /srv/disk1.img --size 1G --no-thin', 'a preallocated file (progress bar)')
        .example('$0 backstore create ramdisk rd0 --size 512M', 'a RAM disk')
        .example('$0 backstore create nbd remote0 --url nbd://10.0.0.5/export', 'an NBD server as backstore'),
    ) as Argv<CreateArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.create',
      () =>
        backstoreCreateParams({
          type: args.type,
          name: args.name,
          size: args.size,
          path: args.path,
          thin: args.thin,
          blockSize: args['block-size'],
          url: args.url,
          readOnly: args['read-only'],
          removable: args.removable,
          serial: args.serial,
        }),
      () => `Created ${args.type} backstore ${args.name}.`,
      { progress: 'bytes' },
    ),
};

interface NameArgs extends CommonArgs {
  name: string;
}

const del: CommandModule<object, NameArgs> = {
  command: 'delete <name>',
  describe: 'Delete a backstore (refused while a LUN or an NBD export uses it)',
  builder: (y: Argv) =>
    withCommon(y.positional('name', { type: 'string' }).example('$0 backstore delete disk0', 'delete backstore disk0')) as Argv<NameArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.delete',
      () => ({ name: checkName(args.name, 'backstore name') }),
      (_params) => `Deleted backstore ${args.name}.`,
    ),
};

interface ResizeArgs extends CommonArgs {
  name: string;
  size: string;
}

const resize: CommandModule<object, ResizeArgs> = {
  command: 'resize <name> <size>',
  describe: 'Change the size of a backstore; sessions get CAPACITY DATA HAS CHANGED',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string' })
        .positional('size', { type: 'string', describe: 'new size with unit (20G)' })
        .example('$0 backstore resize disk0 20G', 'grow disk0 to 20 GiB'),
    ) as Argv<ResizeArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.resize',
      () => backstoreResizeParams({ name: args.name, size: String(args.size) }),
      (params) => `Resized backstore ${args.name} to ${formatSize(params.size)}.`,
      { progress: 'bytes' },
    ),
};

/** Rows of `backstore list`: name, type, size, where, flags. */
export function backstoreRows(cfg: ConfigDoc): string[][] {
  return Object.entries(cfg.backstores ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, bs]) => {
      const size = 'size' in bs && bs.size !== undefined ? formatSize(Number(bs.size)) : '-';
      const where = bs.type === 'file' ? bs.path : bs.type === 'nbd' ? bs.url : '-';
      const flags = [
        bs.type === 'file' ? (bs.thin === false ? 'thick' : 'thin') : undefined,
        'readOnly' in bs && bs.readOnly ? 'ro' : undefined,
        bs.blockSize !== undefined && bs.blockSize !== 512 ? `bs=${bs.blockSize}` : undefined,
      ].filter((f): f is string => f !== undefined);
      return [name, bs.type, size, where, flags.join(',')];
    });
}

const list = listVerb({
  describe: 'List the backstores',
  example: ['$0 backstore list --json', 'the backstores as JSON'],
  headers: ['NAME', 'TYPE', 'SIZE', 'PATH/URL', 'FLAGS'],
  view: (config) => ({ data: config.backstores ?? {}, rows: backstoreRows(config) }),
});

export const backstoreCommand: CommandModule = {
  command: 'backstore <command>',
  describe: 'Create, delete, list and resize backstores',
  builder: (y: Argv) =>
    y
      .command(create)
      .command(del)
      .command(list)
      .command(resize)
      .demandCommand(1, 'name a backstore command: create, delete, list or resize'),
  handler: () => undefined,
};
