// `lunkit export targetcli`: write the lunkit configuration as a targetcli /
// rtslib saveconfig.json, so a setup can move to a kernel LIO host
// (`targetctl restore FILE` or `targetcli restoreconfig FILE`). The
// configuration comes from a file (--config) or from the running daemon
// (config.get). Whatever LIO cannot hold is listed on stderr.

import type { Argv, CommandModule } from 'yargs';

import { ControlClient } from '../../daemon/control-client.js';
import { loadConfigDoc, saveConfigFile } from '../../daemon/saveconfig.js';
import { exportTargetcli } from '../../daemon/targetcli/to-targetcli.js';
import { EXIT_OK, printResult, processIo, reportError, withCommon, type CommonArgs, type Io } from '../output.js';
import { reportLeftOut } from './import.js';

export interface ExportTargetcliArgs extends CommonArgs {
  out?: string;
  config?: string;
}

/** The handler, with injectable output; returns the exit code. */
export async function runExportTargetcli(args: ExportTargetcliArgs, io: Io = processIo): Promise<number> {
  let client: ControlClient | undefined;
  try {
    let config: unknown;
    let source: string;
    if (args.config !== undefined) {
      config = (await loadConfigDoc(args.config)).doc;
      source = args.config;
    } else {
      client = await ControlClient.connect(args.socket);
      config = (await client.call<{ config: unknown }>('config.get')).config;
      source = `the daemon at ${client.socketPath}`;
    }
    const { doc, unsupported } = exportTargetcli(config);
    if (!args.json) reportLeftOut(io, source, unsupported, [], false);
    if (args.out !== undefined) {
      await saveConfigFile(args.out, doc, 0);
      printResult({ out: args.out, unsupported }, args.json, () => `Wrote ${args.out}; load it on the LIO host with \`targetctl restore ${args.out}\`.`, io);
    } else if (args.json) {
      printResult({ doc, unsupported }, true, () => '', io);
    } else {
      io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    }
    return EXIT_OK;
  } catch (err) {
    return reportError(err, args.json, io);
  } finally {
    client?.close();
  }
}

const exportTargetcliCommand: CommandModule<object, ExportTargetcliArgs> = {
  command: 'targetcli',
  describe: 'Write the configuration as a targetcli/rtslib saveconfig.json for kernel LIO',
  builder: (y: Argv) =>
    withCommon(
      y
        .option('out', { alias: 'o', type: 'string', describe: 'write it to this file (mode 0600) instead of stdout' })
        .option('config', { alias: 'c', type: 'string', describe: 'convert this lunkit configuration file instead of asking the daemon' })
        .conflicts('config', 'socket')
        .example('$0 export targetcli --out saveconfig.json', "the running daemon's configuration")
        .example('$0 export targetcli --config lunkit.json', 'a configuration file, to stdout'),
    ) as unknown as Argv<ExportTargetcliArgs>,
  handler: async (args) => {
    process.exitCode = await runExportTargetcli(args);
  },
};

export const exportCommand: CommandModule = {
  command: 'export <format>',
  describe: 'Export the configuration for another tool (targetcli)',
  builder: (y: Argv) => y.command(exportTargetcliCommand).example('$0 export targetcli --out saveconfig.json', 'the configuration in targetcli\'s format').demandCommand(1, 'name the format: lunkit export targetcli'),
  handler: () => {},
};
