// `lunkit backstore filter NAME`: the live filters of a backstore (their
// statistics), and switching an error or delay filter on or off or giving it
// new rules while I/O runs (docs/cli.md "Filters"). Run-time only: the
// configuration keeps the filters as configured; change `filters` there (or
// `backstore create --filter`) to change the stack.

import type { Argv, CommandModule } from 'yargs';

import { renderTable } from '../config-view.js';
import { printResult, runVerb, UsageError, withCommon, type CommonArgs } from '../output.js';
import { checkName } from '../params.js';

interface FilterArgs extends CommonArgs {
  name: string;
  type?: string;
  nth?: number;
  on?: boolean;
  off?: boolean;
  rules?: string;
  delays?: string;
  resetStats?: boolean;
}

interface FilterState {
  index: number;
  type: string;
  enabled?: boolean;
  stats?: { injected?: Record<string, number>; passed?: Record<string, number>; delayed?: Record<string, number>; pending?: number };
}

/** A JSON option value, or a usage error naming the option. */
export function jsonOption(flag: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError('ERR_USAGE', `--${flag}: not JSON (${(e as Error).message})`);
  }
}

/** `--filter JSON` values of backstore create: each one filter config, first = outermost. */
export function filterOptions(values: unknown): unknown[] | undefined {
  if (values === undefined) return undefined;
  const list = Array.isArray(values) ? values : [values];
  return list.map((v) => jsonOption('filter', String(v)));
}

function sum(counts: Record<string, number> | undefined): number {
  return Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
}

function rows(filters: FilterState[]): string[][] {
  return filters.map((f) => [
    String(f.index),
    f.type,
    f.enabled === undefined ? '-' : f.enabled ? 'on' : 'off',
    f.type === 'error' ? `${sum(f.stats?.injected)} injected, ${sum(f.stats?.passed)} passed` : f.type === 'delay' ? `${sum(f.stats?.delayed)} delayed, ${f.stats?.pending ?? 0} waiting` : '',
  ]);
}

export const filterVerb: CommandModule<object, FilterArgs> = {
  command: 'filter <name>',
  describe: 'Show the filters of a backstore; switch an error/delay filter on or off or change its rules live',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string', describe: 'backstore name' })
        .option('type', { type: 'string', choices: ['error', 'delay'], describe: 'the filter to change (with --on/--off/--rules/--delays)' })
        .option('nth', { type: 'number', describe: 'which filter of that type, 0 = outermost (default 0)' })
        .option('on', { type: 'boolean', describe: 'enable the filter' })
        .option('off', { type: 'boolean', describe: 'disable the filter (operations pass untouched)' })
        .option('rules', { type: 'string', describe: 'error filter: new rules, a JSON list (docs/config.md "Filters")' })
        .option('delays', { type: 'string', describe: 'delay filter: new delays, a JSON object' })
        .option('reset-stats', { type: 'boolean', describe: 'error filter: zero its counters' })
        .example('$0 backstore filter disk0', 'the filters of disk0 and what they did')
        .example(`$0 backstore filter disk0 --type error --rules '[{"error":"ENOSPC","ops":["write"],"lba":{"start":0,"count":2048}}]' --on`, 'fail writes to the first 2048 blocks with ENOSPC')
        .example('$0 backstore filter disk0 --type error --off', 'stop injecting'),
    ) as Argv<FilterArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => {
        const backstore = checkName(args.name, 'backstore name');
        const change = args.on || args.off || args.rules !== undefined || args.delays !== undefined || args.resetStats;
        if (!change) return { method: 'backstore.filter.get', params: { backstore } as Record<string, unknown> };
        if (args.on && args.off) throw new UsageError('ERR_USAGE', '--on and --off together');
        if (!args.type) throw new UsageError('ERR_USAGE', 'name the filter to change with --type error or --type delay');
        const params: Record<string, unknown> = { backstore, type: args.type };
        if (args.nth !== undefined) params.nth = args.nth;
        if (args.on) params.enabled = true;
        if (args.off) params.enabled = false;
        if (args.rules !== undefined) params.rules = jsonOption('rules', args.rules);
        if (args.delays !== undefined) params.delays = jsonOption('delays', args.delays);
        if (args.resetStats) params.resetStats = true;
        return { method: 'backstore.filter.set', params };
      },
      async (client, { method, params }) => {
        const res = await client.call<{ filters?: FilterState[]; filter?: FilterState }>(method, params);
        const list = res.filters ?? (res.filter ? [res.filter] : []);
        printResult(res, args.json, () =>
          list.length === 0 ? `Backstore ${args.name} has no filters.\n` : renderTable(['#', 'FILTER', 'STATE', 'COUNTS'], rows(list)),
        );
      },
    ),
};
