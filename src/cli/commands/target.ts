// `lunkit target create|delete|list`: iSCSI targets (with their first TPG).

import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { targetCreateParams, targetParams } from '../params.js';
import { callVerb, listVerb } from '../verbs.js';

interface CreateArgs extends CommonArgs {
  iqn: string;
  portal?: string[];
  tpg?: number;
  alias?: string;
}

const create: CommandModule<object, CreateArgs> = {
  command: 'create <iqn>',
  describe: 'Create an iSCSI target with one TPG; its portals start listening at once',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('iqn', { type: 'string', describe: 'target name: iqn.yyyy-mm.reversed.domain[:id], eui.<16 hex> or naa.<16|32 hex>' })
        .option('portal', { type: 'string', array: true, describe: 'host:port to listen on (repeat for more; default 0.0.0.0:3260)' })
        .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' })
        .option('alias', { type: 'string', describe: 'TargetAlias sent at login' })
        .example('$0 target create iqn.2026-01.org.example:t1', 'listen on 0.0.0.0:3260')
        .example('$0 target create iqn.2026-01.org.example:t1 --portal 10.0.0.1:3260 --portal 10.0.1.1:3260', 'two portals'),
    ) as Argv<CreateArgs>,
  handler: (args) =>
    callVerb(
      args,
      'target.create',
      () => targetCreateParams(args),
      (params) => `Created target ${args.iqn} (tpg ${params.tpg as number}).`,
    ),
};

interface IqnArgs extends CommonArgs {
  iqn: string;
}

const del: CommandModule<object, IqnArgs> = {
  command: 'delete <iqn>',
  describe: 'Delete a target; its sessions end',
  builder: (y: Argv) =>
    withCommon(y.positional('iqn', { type: 'string' }).example('$0 target delete iqn.2026-01.org.example:t1', 'delete the target')) as Argv<IqnArgs>,
  handler: (args) =>
    callVerb(
      args,
      'target.delete',
      () => targetParams(args),
      (_params) => `Deleted target ${args.iqn}.`,
    ),
};

const list = listVerb({
  describe: 'List the iSCSI targets with their TPGs, portals, LUNs and ACLs',
  example: ['$0 target list', 'one line per TPG'],
  headers: ['TARGET', 'TPG', 'PORTALS', 'LUNS', 'ACLS'],
  view: (config) => {
    const targets = config.iscsi?.targets ?? {};
    const rows: string[][] = [];
    for (const [iqn, t] of Object.entries(targets)) {
      for (const [tag, tpg] of Object.entries(t.tpgs)) {
        rows.push([iqn, tag, tpg.portals.map(String).join(','), String(Object.keys(tpg.luns ?? {}).length), String(Object.keys(tpg.acls ?? {}).length)]);
      }
    }
    return { data: targets, rows };
  },
});

export const targetCommand: CommandModule = {
  command: 'target <command>',
  describe: 'Create, delete and list iSCSI targets',
  builder: (y: Argv) => y.command(create).command(del).command(list).example('$0 target create iqn.2026-01.org.example:t1 --portal 0.0.0.0:3260', 'a target listening on every address').demandCommand(1, 'name a target command: create, delete or list'),
  handler: () => undefined,
};
