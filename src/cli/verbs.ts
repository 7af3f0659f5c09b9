// The two shapes most control verbs take: send one method and print a line
// (the result object with --json), or show one part of the configuration as
// a table. Everything else about a verb (its arguments, checks, help text)
// stays in its own command module.

import type { Argv, CommandModule } from 'yargs';

import type { ConfigDoc } from '../daemon/config-doc.js';
import { getConfig, renderTable } from './config-view.js';
import { printResult, processIo, runVerb, withCommon, type CommonArgs } from './output.js';
import { createProgress } from './progress.js';

export interface CallOptions {
  /** Draw a progress bar from the daemon's notifications (on a terminal, without --json). */
  progress?: 'bytes' | 'objects';
}

/** Handler body of a verb that sends `method` with the prepared params and prints `message`. */
export function callVerb<P extends Record<string, unknown>>(
  args: CommonArgs,
  method: string,
  prepare: () => P | Promise<P>,
  message: (params: P, result: Record<string, unknown>) => string,
  opts: CallOptions = {},
): Promise<void> {
  return runVerb(args, prepare, async (client, params) => {
    const progress = opts.progress ? createProgress(processIo, args.json, opts.progress) : undefined;
    try {
      const res = await client.call<Record<string, unknown>>(method, params, progress?.onProgress ? { onProgress: progress.onProgress } : undefined);
      progress?.stop();
      printResult(res, args.json, () => message(params, res));
    } finally {
      progress?.stop();
    }
  });
}

export interface ListVerbSpec {
  describe: string;
  example: [command: string, description: string];
  headers: string[];
  /** The part of the configuration listed: `data` for --json, `rows` for the table. */
  view(config: ConfigDoc): { data: unknown; rows: string[][] };
}

/** A `list` verb over the daemon's configuration. */
export function listVerb(spec: ListVerbSpec): CommandModule<object, CommonArgs> {
  return {
    command: 'list',
    describe: spec.describe,
    builder: (y: Argv) => withCommon(y.example(...spec.example)) as Argv<CommonArgs>,
    handler: (args) =>
      runVerb(
        args,
        () => undefined,
        async (client) => {
          const { config } = await getConfig(client);
          const { data, rows } = spec.view(config);
          printResult(data, args.json, () => renderTable(spec.headers, rows));
        },
      ),
  };
}
