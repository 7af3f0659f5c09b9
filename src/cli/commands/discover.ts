// `lunkit discover iscsi://host[:port]`: SendTargets discovery with the lunkit
// initiator; prints each target and its portals (--json for scripts).

import type { Argv, CommandModule } from 'yargs';

import { discoverTargets, formatPortal, parseIscsiUrl } from '../../initiator/index.js';
import { printResult, reportError } from '../output.js';
import { sessionOptions, withInitiatorOptions, type InitiatorArgs } from './iscsi.js';

interface DiscoverArgs extends InitiatorArgs {
  url: string;
}

export const discoverCommand: CommandModule<object, DiscoverArgs> = {
  command: 'discover <url>',
  describe: 'List the targets and portals an iSCSI portal reports (SendTargets=All)',
  builder: (y: Argv) =>
    withInitiatorOptions(y.positional('url', { type: 'string', demandOption: true, describe: 'iscsi://[user[%password]@]host[:port]' }))
      .example('$0 discover iscsi://192.168.1.10', 'targets and their portals')
      .example('$0 discover iscsi://127.0.0.1:3261 --json', 'the same as JSON') as Argv<DiscoverArgs>,
  handler: async (args) => {
    try {
      const { env, ...o } = await sessionOptions(args);
      const u = parseIscsiUrl(args.url, { requireLun: false, env });
      const targets = await discoverTargets({
        ...o,
        host: u.host,
        port: u.port,
        chap: u.chap,
        targetChap: u.chap === undefined ? undefined : (o.targetChap ?? u.targetChap),
      });
      printResult(targets, args.json, () =>
        targets.map((t) => [t.name, ...t.portals.map((p) => `  ${formatPortal(p.host, p.port)}${p.tpgt === undefined ? '' : `,${p.tpgt}`}`)].join('\n')).join('\n'),
      );
      process.exitCode = 0;
    } catch (err) {
      process.exitCode = reportError(err, args.json);
    }
  },
};
