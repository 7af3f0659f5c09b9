// `lunkit portal add|delete IQN host:port`: network portals of a TPG, live.

import type { Argv, CommandModule } from 'yargs';

import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { portalParams } from '../params.js';

interface PortalArgs extends CommonArgs {
  iqn: string;
  portal: string;
  tpg: number;
}

function portalVerb(action: 'add' | 'delete'): CommandModule<object, PortalArgs> {
  return {
    command: `${action} <iqn> <portal>`,
    describe: action === 'add' ? 'Add a portal; it starts listening at once' : 'Delete a portal; it stops listening (sessions on it end)',
    builder: (y: Argv) =>
      withCommon(
        y
          .positional('iqn', { type: 'string', describe: 'target name' })
          .positional('portal', { type: 'string', describe: 'host:port, [v6]:port or host (port 3260)' })
          .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' })
          .example(`$0 portal ${action} iqn.2026-01.org.example:t1 192.168.1.10:3260`, `${action} a portal of TPG 1`),
      ) as Argv<PortalArgs>,
    handler: (args) =>
      runVerb(
        args,
        () => portalParams(args),
        async (client, params) => {
          const res = await client.call(`portal.${action}`, params);
          printResult(res, args.json, () => `${action === 'add' ? 'Added' : 'Deleted'} portal ${params.portal} of ${params.iqn} tpg ${params.tpg}.`);
        },
      ),
  };
}

export const portalCommand: CommandModule = {
  command: 'portal <command>',
  describe: 'Add and delete the portals (listening addresses) of a TPG',
  builder: (y: Argv) => y.command(portalVerb('add')).command(portalVerb('delete')).example('$0 portal add iqn.2026-01.org.example:t1 192.0.2.10:3260', 'one more address for the target').demandCommand(1, 'name a portal command: add or delete'),
  handler: () => undefined,
};
