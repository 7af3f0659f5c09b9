// `lunkit diff FILE`: what `lunkit apply FILE` would add (+), change (~, old ->
// new, secrets masked) and remove (-) in the running daemon, object by object
// (src/daemon/config-diff.ts). Exit code like diff(1): 0 nothing would
// change, 2 something would, 1 error (an invalid file lists every problem
// with its JSON path, as restore does).

import type { Argv, CommandModule } from 'yargs';

import { EXIT_USAGE, printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import type { ConfigDiff } from '../../daemon/config-diff.js';
import type { ControlClient } from '../../daemon/control-client.js';

export interface DiffArgs extends CommonArgs {
  file: string;
}

/** Reads and validates `file` (throws ConfigError naming every problem); the parsed document. */
export async function loadFileDoc(file: string): Promise<unknown> {
  // Loaded here: the schema is only needed by the desired-state verbs.
  const { loadConfigDoc } = await import('../../daemon/saveconfig.js');
  return (await loadConfigDoc(file)).doc;
}

/** The running configuration and what turning it into `doc` would change. */
export async function diffAgainstDaemon(client: ControlClient, doc: unknown): Promise<{ diff: ConfigDiff; revision: number }> {
  const { diffConfig } = await import('../../daemon/config-diff.js');
  const cur = await client.call<{ config: unknown; revision: number }>('config.get');
  return { diff: diffConfig(cur.config, doc), revision: cur.revision };
}

/** The --json form of a diff (docs/cli.md "lunkit diff"). */
export function diffJson(diff: ConfigDiff, revision: number): Record<string, unknown> {
  return { changed: diff.changes.length > 0, revision, summary: diff.summary, changes: diff.changes };
}

export async function runDiff(args: DiffArgs): Promise<void> {
  let changed = false;
  await runVerb(args, () => loadFileDoc(args.file), async (client, doc) => {
    const { renderDiff } = await import('../../daemon/config-diff.js');
    const { diff, revision } = await diffAgainstDaemon(client, doc);
    changed = diff.changes.length > 0;
    printResult(diffJson(diff, revision), args.json, () => renderDiff(diff));
  });
  // runVerb left 0 on success: 2 says "something would change", like diff(1).
  if (process.exitCode === 0 && changed) process.exitCode = EXIT_USAGE;
}

export const diffCommand: CommandModule<object, DiffArgs> = {
  command: 'diff <file>',
  describe: 'Show what applying a configuration file would add, change and remove (exit 0: nothing, 2: changes)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('file', { type: 'string', describe: 'a configuration file (lunkit save format, docs/config.md)' })
        .example('$0 diff /etc/lunkit/saveconfig.json', 'what apply would do to the running daemon')
        .example('$0 diff lab.json --json', 'the same for scripts (stable, docs/cli.md)'),
    ) as Argv<DiffArgs>,
  handler: runDiff,
};
