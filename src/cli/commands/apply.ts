// `lunkit apply FILE`: converge the running daemon to FILE. The daemon's
// runtime reconciles object by object (runtime.ts applyNow): unchanged
// backstores stay open, unchanged targets are not touched, so sessions on them
// run on undisturbed; only what the diff lists is opened, bound, updated or
// removed, and a failing step rolls every earlier one back (all or nothing).
// `restore` sends the same request; apply shows the diff first, sends nothing
// when nothing would change, applies only onto the revision it diffed against
// (ifRevision: another client's change in between fails it, nothing applied),
// and --dry-run is `lunkit diff`.

import type { Argv, CommandModule } from 'yargs';

import { printResult, processIo, runVerb, withCommon } from '../output.js';
import { createProgress } from '../progress.js';
import { diffAgainstDaemon, diffJson, loadFileDoc, runDiff, type DiffArgs } from './diff.js';

interface ApplyArgs extends DiffArgs {
  'dry-run'?: boolean;
}

async function runApply(args: ApplyArgs): Promise<void> {
  if (args['dry-run']) return runDiff(args);
  await runVerb(args, () => loadFileDoc(args.file), async (client, doc) => {
    const { renderDiff } = await import('../../daemon/config-diff.js');
    const { diff, revision } = await diffAgainstDaemon(client, doc);
    if (diff.changes.length === 0) {
      printResult({ ...diffJson(diff, revision), applied: false }, args.json, () => `Nothing to change: the daemon already runs ${args.file}.`);
      return;
    }
    const progress = createProgress(processIo, args.json, 'objects');
    try {
      const res = await client.call<{ revision: number }>('config.replace', { config: doc, ifRevision: revision }, progress.onProgress ? { onProgress: progress.onProgress } : undefined);
      progress.stop();
      printResult({ ...diffJson(diff, res.revision), applied: true }, args.json, () => `${renderDiff(diff)}\nApplied ${args.file}.`);
    } finally {
      progress.stop();
    }
  });
}

export const applyCommand: CommandModule<object, ApplyArgs> = {
  command: 'apply <file>',
  describe: 'Converge the running daemon to a configuration file, touching only what changed (all-or-nothing)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('file', { type: 'string', describe: 'a configuration file (lunkit save format, docs/config.md)' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'show the diff only (= lunkit diff; exit 2 when something would change)' })
        .example('$0 apply /etc/lunkit/saveconfig.json', 'add, change and remove only what differs; sessions on the rest keep running')
        .example('$0 apply lab.json --dry-run', 'what would change, without changing it'),
    ) as Argv<ApplyArgs>,
  handler: runApply,
};
