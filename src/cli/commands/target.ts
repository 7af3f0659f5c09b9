// `lunkit target create|delete|list`: iSCSI targets (with their first TPG).

import type { Argv, CommandModule } from 'yargs';

import { getConfig, renderTable } from '../config-view.js';
import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { targetCreateParams, targetParams } from '../params.js';

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
    runVerb(
      args,
      () => targetCreateParams(args),
      async (client, params) => {
        const res = await client.call('target.create', params);
        printResult(res, args.json, () => `Created target ${args.iqn} (tpg ${params.tpg as number}).`);
      },
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
    runVerb(
      args,
      () => targetParams(args),
      async (client, params) => {
        const res = await client.call('target.delete', params);
        printResult(res, args.json, () => `Deleted target ${args.iqn}.`);
      },
    ),
};

const list: CommandModule<object, CommonArgs> = {
  command: 'list',
  describe: 'List the iSCSI targets with their TPGs, portals, LUNs and ACLs',
  builder: (y: Argv) => withCommon(y.example('$0 target list', 'one line per TPG')) as Argv<CommonArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => undefined,
      async (client) => {
        const { config } = await getConfig(client);
        const targets = config.iscsi?.targets ?? {};
        const rows: string[][] = [];
        for (const [iqn, t] of Object.entries(targets)) {
          for (const [tag, tpg] of Object.entries(t.tpgs)) {
            rows.push([iqn, tag, tpg.portals.map(String).join(','), String(Object.keys(tpg.luns ?? {}).length), String(Object.keys(tpg.acls ?? {}).length)]);
          }
        }
        printResult(targets, args.json, () => renderTable(['TARGET', 'TPG', 'PORTALS', 'LUNS', 'ACLS'], rows));
      },
    ),
};

export const targetCommand: CommandModule = {
  command: 'target <command>',
  describe: 'Create, delete and list iSCSI targets',
  builder: (y: Argv) => y.command(create).command(del).command(list).demandCommand(1, 'name a target command: create, delete or list'),
  handler: () => undefined,
};
