// `lunkit import targetcli FILE`: read the saveconfig.json that targetcli /
// rtslib write (/etc/target/saveconfig.json) and turn it into a lunkit
// configuration (docs/targetcli.md). Without --apply the configuration is
// printed (or written with --out, mode 0600: it holds CHAP secrets); with
// --apply it replaces the running daemon's configuration all-or-nothing.
// Whatever lunkit cannot represent is listed on stderr, never dropped silently.

import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';

import { ControlClient } from '../../daemon/control-client.js';
import { saveConfigFile } from '../../daemon/saveconfig.js';
import { importTargetcli, type TargetcliImport } from '../../daemon/targetcli/from-targetcli.js';
import { TargetcliError } from '../../daemon/targetcli/saveconfig-schema.js';
import { EXIT_OK, printResult, processIo, reportError, withCommon, type CommonArgs, type Io } from '../output.js';
import { createProgress } from '../progress.js';

export interface ImportTargetcliArgs extends CommonArgs {
  file: string;
  out?: string;
  apply?: boolean;
  'dry-run'?: boolean;
  verbose?: boolean;
}

/** Reads and converts the file; TargetcliError names the file and every path at fault. */
export async function readTargetcliFile(file: string): Promise<TargetcliImport> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new TargetcliError([`cannot read the file: ${(e as Error).message}`], file);
  }
  return importTargetcli(text, file);
}

/** Lists what was not carried over (and, with --verbose, the LIO defaults dropped) on stderr. */
export function reportLeftOut(io: Io, source: string, unsupported: string[], notes: string[], verbose: boolean): void {
  if (unsupported.length > 0) {
    io.stderr.write(`lunkit: ${unsupported.length} item${unsupported.length === 1 ? '' : 's'} of ${source} not carried over as is:\n`);
    for (const u of unsupported) io.stderr.write(`  - ${u}\n`);
  }
  if (verbose && notes.length > 0) {
    io.stderr.write(`lunkit: ${notes.length} LIO default${notes.length === 1 ? '' : 's'} dropped (lunkit behaves so anyway):\n`);
    for (const n of notes) io.stderr.write(`  - ${n}\n`);
  }
}

/** The handler, with injectable output; returns the exit code. */
export async function runImportTargetcli(args: ImportTargetcliArgs, io: Io = processIo): Promise<number> {
  let client: ControlClient | undefined;
  try {
    const res = await readTargetcliFile(args.file);
    const { config, unsupported, notes } = res;
    if (!args.json) reportLeftOut(io, args.file, unsupported, notes, args.verbose ?? false);
    const extra = { unsupported, notes };
    if (args.apply) {
      client = await ControlClient.connect(args.socket);
      const progress = createProgress(io, args.json, 'objects');
      try {
        const params: Record<string, unknown> = { config };
        if (args['dry-run']) params.dryRun = true;
        const r = await client.call<Record<string, unknown>>('config.replace', params, { onProgress: progress.onProgress });
        progress.stop();
        printResult({ ...r, ...extra }, args.json, () =>
          args['dry-run'] ? `${args.file} converts to a configuration the daemon accepts; nothing was changed.` : `Replaced the running configuration with ${args.file} (revision ${String(r.revision)}).`,
        io);
      } finally {
        progress.stop();
      }
    } else if (args.out !== undefined) {
      await saveConfigFile(args.out, config, 0);
      const targets = Object.keys(config.iscsi?.targets ?? {}).length;
      const backstores = Object.keys(config.backstores ?? {}).length;
      printResult({ out: args.out, ...extra }, args.json, () => `Wrote ${args.out}: ${backstores} backstore${backstores === 1 ? '' : 's'}, ${targets} target${targets === 1 ? '' : 's'}.`, io);
    } else if (args.json) {
      printResult({ config, ...extra }, true, () => '', io);
    } else {
      io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    }
    return EXIT_OK;
  } catch (err) {
    return reportError(err, args.json, io);
  } finally {
    client?.close();
  }
}

const importTargetcliCommand: CommandModule<object, ImportTargetcliArgs> = {
  command: 'targetcli <file>',
  describe: 'Convert a targetcli/rtslib saveconfig.json into a lunkit configuration',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'the saveconfig.json (e.g. /etc/target/saveconfig.json)' })
        .option('out', { alias: 'o', type: 'string', describe: 'write the lunkit configuration to this file (mode 0600) instead of stdout' })
        .option('apply', { type: 'boolean', describe: "replace the running daemon's configuration with it (all-or-nothing)" })
        .option('dry-run', { type: 'boolean', default: false, describe: 'with --apply: let the daemon validate it, change nothing' })
        .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'also list the LIO defaults that were dropped' })
        .conflicts('out', 'apply')
        .example('$0 import targetcli /etc/target/saveconfig.json --out lunkit.json', 'convert, listing what cannot move')
        .example('$0 import targetcli saveconfig.json --apply', 'load it into the running daemon'),
    ) as unknown as Argv<ImportTargetcliArgs>,
  handler: async (args) => {
    process.exitCode = await runImportTargetcli(args);
  },
};

export const importCommand: CommandModule = {
  command: 'import <format>',
  describe: 'Import a configuration written by another tool (targetcli)',
  builder: (y: Argv) => y.command(importTargetcliCommand).example('$0 import targetcli /etc/target/saveconfig.json', 'take over a LIO configuration').demandCommand(1, 'name the format: lunkit import targetcli <file>'),
  handler: () => {},
};
