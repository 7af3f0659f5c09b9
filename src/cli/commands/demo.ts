// `lunkit demo`: the main job on an embedded default, what ./scripts/demo.sh
// runs. A ramdisk LUN (1 GiB by default) over iSCSI on 127.0.0.1:3260, any
// initiator allowed (LIO demo mode), and the same LUN over NBD as export
// "demo" on 127.0.0.1:10809, until SIGINT/SIGTERM.

import type { Argv, CommandModule } from 'yargs';
import { parseConfig } from '../../daemon/config.js';
import { createLogger } from '../../util/log.js';
import { serveUntilSignalled } from '../serve-loop.js';

export const DEMO_IQN = 'iqn.2026-11.io.lunkit:demo';

interface DemoArgs {
  host: string;
  port: number;
  'nbd-port': number;
  size: string;
  'log-level': 'debug' | 'info' | 'warn' | 'error';
}

export const DEMO_NBD_EXPORT = 'demo';

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function demoConfig(host: string, port: number, size: string, nbdPort = 10809): unknown {
  return {
    backstores: { ram0: { type: 'ramdisk', size } },
    nbd: {
      listen: [hostPort(host, nbdPort)],
      exports: { [DEMO_NBD_EXPORT]: { backstore: 'ram0', description: 'lunkit demo ramdisk' } },
    },
    iscsi: {
      targets: {
        [DEMO_IQN]: {
          alias: 'lunkit demo',
          tpgs: { '1': { portals: [hostPort(host, port)], luns: { '0': 'ram0' }, attributes: { generateNodeAcls: true } } },
        },
      },
    },
  };
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Serve a ramdisk LUN over iSCSI on 127.0.0.1:3260 and NBD on 127.0.0.1:10809 to any client (the embedded default)',
  builder: (y: Argv) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1' })
      .option('port', { type: 'number', default: 3260 })
      .option('nbd-port', { type: 'number', default: 10809, describe: 'NBD port (0 picks a free one)' })
      .option('size', { type: 'string', default: '1G', describe: 'ramdisk size (512M, 1G, ...)' })
      .option('log-level', { choices: ['debug', 'info', 'warn', 'error'] as const, default: 'info' as const }) as Argv<DemoArgs>,
  handler: async (args) => {
    const logger = createLogger({ level: args['log-level'] });
    const cfg = parseConfig(demoConfig(args.host, args.port, args.size, args['nbd-port']), 'the demo defaults');
    process.exitCode = await serveUntilSignalled(cfg, logger, (rt) => {
      const a = rt.addresses()[0];
      const host = a.host.includes(':') ? `[${a.host}]` : a.host;
      const url = `iscsi://${host}:${a.port}/${DEMO_IQN}/0`;
      const n = rt.nbdAddresses()[0];
      const nbdUrl = n ? `nbd://${hostPort(n.host, n.port)}/${DEMO_NBD_EXPORT}` : '';
      process.stdout.write(
        [
          `lunkit demo: a ${args.size} ramdisk LUN over iSCSI and NBD`,
          `  URL:       ${url}`,
          `  discover:  iscsi-ls -s iscsi://${host}:${a.port}/`,
          `  inquire:   iscsi-inq ${url}`,
          `  copy in:   qemu-img convert -O raw disk.img ${url}`,
          `  NBD:       ${nbdUrl}`,
          `  nbdinfo:   nbdinfo ${nbdUrl}`,
          'Stop with Ctrl-C or SIGTERM.',
          'ready',
          '',
        ].join('\n'),
      );
    });
  },
};
