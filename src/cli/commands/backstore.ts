// `lunkit backstore create|delete|list|resize|filter|reset|snapshot|commit|clear-error`: storage objects (LIO's
// backstores). Creating a thick file backstore and resizing show a progress bar
// on a terminal.

import type { Argv, CommandModule } from 'yargs';

import type { ConfigDoc } from '../../daemon/config-doc.js';
import { withCommon, type CommonArgs } from '../output.js';
import { CLI_OPTIONS } from '../../backstores/cli-options.js';
import { BACKSTORE_DESCRIPTORS, commonConfig, describeBackstore } from '../../backstores/registry.js';
import { BACKSTORE_TYPES, backstoreCliOptions, backstoreCreateParams, backstoreResizeParams, checkName } from '../params.js';
import { formatSize } from '../../util/size.js';
import { callVerb, listVerb } from '../verbs.js';
import { filterOptions, filterVerb } from './backstore-filter.js';
import { commitVerb, resetVerb, snapshotVerb } from './backstore-qcow2.js';
import { clearErrorVerb } from './backstore-clear-error.js';

interface CreateArgs extends CommonArgs {
  type: string;
  name: string;
  /** The options of every backstore type, by key (src/backstores/registry.ts). */
  [option: string]: unknown;
}

/** "a, b, c or d" */
function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** Help text of an option: shared options as they are, a type's own prefixed with the types that take it. */
function optionHelp(key: string): string {
  const by = new Map<string, string[]>();
  let shared: string | undefined;
  for (const d of BACKSTORE_DESCRIPTORS) {
    for (const o of d.cli.options) {
      if (o.key !== key) continue;
      if (Object.values(CLI_OPTIONS).includes(o)) shared = o.describe;
      else by.set(o.describe, [...(by.get(o.describe) ?? []), d.type]);
    }
  }
  return shared ?? [...by].map(([text, types]) => `${types.join('/')}: ${text}`).join('; ');
}

const create: CommandModule<object, CreateArgs> = {
  command: 'create <type> <name>',
  describe: `Create a backstore: ${orList(BACKSTORE_DESCRIPTORS.map((d) => `${d.type} (${d.cli.usage})`))}`,
  builder: (y: Argv) => {
    let b = y
      .positional('type', { choices: BACKSTORE_TYPES, describe: 'backstore type' })
      .positional('name', { type: 'string', describe: 'backstore name (A-Z a-z 0-9 _ . : -)' });
    for (const o of backstoreCliOptions()) {
      b = b.option(o.flag, { type: o.type, describe: optionHelp(o.key), ...(o.choices ? { choices: [...o.choices] } : {}) });
    }
    b = b.option('filter', {
      type: 'string',
      array: true,
      describe: 'a filter between the core and the backstore, as JSON (repeatable, first = outermost): {"type":"delay","write":"5ms"}, {"type":"error",...}, {"type":"readonly"}',
    });
    for (const d of BACKSTORE_DESCRIPTORS) for (const [cmd, what] of d.cli.examples ?? []) b = b.example(cmd, what);
    return withCommon(b) as Argv<CreateArgs>;
  },
  handler: (args) =>
    callVerb(
      args,
      'backstore.create',
      () => {
        const options: Record<string, unknown> = {};
        for (const o of backstoreCliOptions()) options[o.key] = args[o.key];
        const params = backstoreCreateParams({ ...options, type: args.type, name: args.name });
        const filters = filterOptions(args.filter);
        if (filters) params.backstore.filters = filters;
        return params;
      },
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
      const c = commonConfig(bs);
      const summary = describeBackstore(bs);
      const size = c.size !== undefined ? formatSize(Number(c.size)) : '-';
      const flags = [
        ...(summary.flags ?? []),
        c.readOnly ? 'ro' : undefined,
        c.blockSize !== undefined && c.blockSize !== 512 ? `bs=${c.blockSize}` : undefined,
        c.filters && c.filters.length > 0 ? `filters=${c.filters.map((f) => f.type).join('+')}` : undefined,
      ].filter((f): f is string => f !== undefined);
      return [name, bs.type, size, summary.where ?? '-', flags.join(',')];
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
  describe: 'Create, delete, list and resize backstores; their live filters; reset, snapshot and commit a qcow2 image; clear a medium error',
  builder: (y: Argv) =>
    y
      .command(create)
      .command(del)
      .command(list)
      .command(resize)
      .command(filterVerb)
      .command(resetVerb)
      .command(snapshotVerb)
      .command(commitVerb)
      .command(clearErrorVerb)
      .example('$0 backstore create file disk0 --path /srv/disk0.img --size 10G', 'a thin 10 GiB file LU')
      .example('$0 backstore list --json', 'every backstore, for scripts')
      .demandCommand(1, 'name a backstore command: create, delete, list, resize, filter, reset, snapshot, commit or clear-error'),
  handler: () => undefined,
};
