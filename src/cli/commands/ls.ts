// `lunkit ls [path]`: the running configuration as a tree, like targetcli's ls.

import type { Argv, CommandModule } from 'yargs';

import { ControlError, type ControlClient } from '../../daemon/control-client.js';
import type { ConfigDoc } from '../../daemon/config-doc.js';
import { getConfig } from '../config-view.js';
import { printResult, processIo, runVerb, withCommon, type CommonArgs } from '../output.js';
import { buildTree, findNode, renderTree, type TreeNode } from '../tree.js';

/**
 * Run-time state the configuration does not hold: a LU whose flush failed
 * (core/io-guard.ts) is shown as such on its backstore's line, since every
 * flush and FUA write of it fails until `lunkit backstore clear-error`.
 */
async function markMediumErrors(client: ControlClient, root: TreeNode, config: ConfigDoc): Promise<void> {
  const { errors } = await client.call<{ errors: Record<string, { code: string; at: number }> }>('backstore.errors');
  for (const [name, e] of Object.entries(errors)) {
    const type = config.backstores?.[name]?.type;
    const n = type === undefined ? undefined : findNode(root, `/backstores/${type}/${name}`);
    if (n) n.info = `${n.info} [MEDIUM ERROR: flush failed (${e.code}) at ${new Date(e.at).toISOString()}]`.trim();
  }
}

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
        await markMediumErrors(client, root, config);
        const n = findNode(root, args.path);
        if (!n) throw new ControlError('ERR_NOT_FOUND', `no path ${args.path} in the tree (see lunkit ls)`);
        const width = args.width ?? Math.max(60, Math.min(processIo.stdout.columns ?? 80, 160));
        printResult(n.data, args.json, () => renderTree(n, width));
      },
    ),
};
