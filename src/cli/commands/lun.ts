// `lunkit lun add|delete`: LUNs of a TPG. Sessions get REPORTED LUNS DATA HAS
// CHANGED; a LUN being deleted drains or aborts its commands first.

import type { Argv, CommandModule } from 'yargs';

import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { lunAddParams, lunDeleteParams } from '../params.js';
import { callVerb } from '../verbs.js';

interface AddArgs extends CommonArgs {
  iqn: string;
  backstore: string;
  lun?: number;
  tpg: number;
}

const add: CommandModule<object, AddArgs> = {
  command: 'add <iqn> <backstore>',
  describe: 'Add a LUN backed by a backstore (the lowest free number unless --lun)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('iqn', { type: 'string', describe: 'target name' })
        .positional('backstore', { type: 'string', describe: 'backstore name' })
        .option('lun', { type: 'number', describe: 'LUN number 0..16383' })
        .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' })
        .example('$0 lun add iqn.2026-01.org.example:t1 disk0', 'next free LUN')
        .example('$0 lun add iqn.2026-01.org.example:t1 rd0 --lun 5', 'as LUN 5'),
    ) as Argv<AddArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => lunAddParams(args),
      async (client, params) => {
        const res = await client.call<{ lun: number }>('lun.add', params);
        printResult(res, args.json, () => `Added LUN ${res.lun} -> ${args.backstore} on ${args.iqn} tpg ${params.tpg as number}.`);
      },
    ),
};

interface DeleteArgs extends CommonArgs {
  iqn: string;
  lun: number;
  tpg: number;
  force?: boolean;
}

const del: CommandModule<object, DeleteArgs> = {
  command: 'delete <iqn> <lun>',
  describe: 'Delete a LUN (refused while an ACL maps it, unless --force)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('iqn', { type: 'string', describe: 'target name' })
        .positional('lun', { type: 'number', describe: 'LUN number' })
        .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' })
        .option('force', { type: 'boolean', describe: 'also remove the ACL mappings of this LUN' })
        .example('$0 lun delete iqn.2026-01.org.example:t1 0', 'delete LUN 0'),
    ) as Argv<DeleteArgs>,
  handler: (args) =>
    callVerb(
      args,
      'lun.delete',
      () => lunDeleteParams(args),
      (params) => `Deleted LUN ${args.lun} of ${args.iqn} tpg ${params.tpg as number}.`,
    ),
};

export const lunCommand: CommandModule = {
  command: 'lun <command>',
  describe: 'Add and delete the LUNs of a TPG',
  builder: (y: Argv) => y.command(add).command(del).example('$0 lun add iqn.2026-01.org.example:t1 disk0', 'disk0 as the next free LUN of the target').demandCommand(1, 'name a lun command: add or delete'),
  handler: () => undefined,
};
