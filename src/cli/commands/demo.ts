// `lunkit demo`: the main job on an embedded default, what ./scripts/demo.sh
// runs. A ramdisk LUN (1 GiB by default) over iSCSI on 127.0.0.1:3260, any
// initiator allowed (LIO demo mode), until SIGINT/SIGTERM.

import type { Argv, CommandModule } from 'yargs';
import { parseConfig } from '../../daemon/config.js';
import { createLogger } from '../../util/log.js';
import { serveUntilSignalled } from '../serve-loop.js';

export const DEMO_IQN = 'iqn.2026-11.io.lunkit:demo';

interface DemoArgs {
  host: string;
  port: number;
  size: string;
  'log-level': 'debug' | 'info' | 'warn' | 'error';
}

export function demoConfig(host: string, port: number, size: string): unknown {
  return {
    backstores: { ram0: { type: 'ramdisk', size } },
    iscsi: {
      targets: {
        [DEMO_IQN]: {
          alias: 'lunkit demo',
          tpgs: { '1': { portals: [`${host.includes(':') ? `[${host}]` : host}:${port}`], luns: { '0': 'ram0' }, attributes: { generateNodeAcls: true } } },
        },
      },
    },
  };
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Serve a ramdisk LUN over iSCSI on 127.0.0.1:3260 to any initiator (the embedded default)',
  builder: (y: Argv) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1' })
      .option('port', { type: 'number', default: 3260 })
      .option('size', { type: 'string', default: '1G', describe: 'ramdisk size (512M, 1G, ...)' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const }) as Argv<DemoArgs>,
  handler: async (args) => {
    const logger = createLogger({ level: args['log-level'] });
    const cfg = parseConfig(demoConfig(args.host, args.port, args.size), 'the demo defaults');
    process.exitCode = await serveUntilSignalled(cfg, logger, (rt) => {
      const a = rt.addresses()[0];
      const host = a.host.includes(':') ? `[${a.host}]` : a.host;
      const url = `iscsi://${host}:${a.port}/${DEMO_IQN}/0`;
      process.stdout.write(
        [
          `lunkit demo: a ${args.size} ramdisk LUN over iSCSI`,
          `  URL:       ${url}`,
          `  discover:  iscsi-ls -s iscsi://${host}:${a.port}/`,
          `  inquire:   iscsi-inq ${url}`,
          `  copy in:   qemu-img convert -O raw disk.img ${url}`,
          'Stop with Ctrl-C or SIGTERM.',
          'ready',
          '',
        ].join('\n'),
      );
    });
  },
};
