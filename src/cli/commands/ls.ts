// `lunkit ls [path]`: the running configuration as a tree, like targetcli's ls.

import type { Argv, CommandModule } from 'yargs';

import { ControlError } from '../../daemon/control-client.js';
import { getConfig } from '../config-view.js';
import { printResult, processIo, runVerb, withCommon, type CommonArgs } from '../output.js';
import { buildTree, findNode, renderTree } from '../tree.js';

interface LsArgs extends CommonArgs {
  path: string;
  width?: number;
}

export const lsCommand: CommandModule<object, LsArgs> = {
  command: 'ls [path]',
  describe: 'Show the running configuration as a tree (backstores, iSCSI targets, NBD exports)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('path', { type: 'string', default: '/', describe: 'subtree to show, e.g. /iscsi/IQN/tpg1/luns' })
        .option('width', { type: 'number', describe: 'line width (default: the terminal width, or 80)' })
        .example('$0 ls', 'the whole tree')
        .example('$0 ls /backstores/file', 'only the file backstores')
        .example('$0 ls /iscsi/iqn.2026-01.org.example:t1/tpg1/acls', 'the ACLs of one TPG')
        .example('$0 ls --json', 'the configuration document (what save writes)'),
    ) as Argv<LsArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => undefined,
      async (client) => {
        const { config } = await getConfig(client);
        const root = buildTree(config);
        const n = findNode(root, args.path);
        if (!n) throw new ControlError('ERR_NOT_FOUND', `no path ${args.path} in the tree (see lunkit ls)`);
        const width = args.width ?? Math.max(60, Math.min(processIo.stdout.columns ?? 80, 160));
        printResult(n.data, args.json, () => renderTree(n, width));
      },
    ),
};
