// The nbd backstore type: a remote NBD export through lunkit's own client
// (README.md). Config, CLI and targetcli mapping; the I/O is nbd.ts.

import { z } from 'zod';
import { CLI_OPTIONS, cliOption } from '../cli-options.js';
import { defineBackstore } from '../descriptor.js';
import { blockSizeSchema, serialSchema } from '../schema.js';

const NBD_URL = /^nbd(\+unix)?:\/\//;

export const NbdBackstoreSchema = z.strictObject({
  type: z.literal('nbd'),
  /** nbd://host[:port]/export or nbd+unix:///export?socket=/path */
  url: z.string().regex(NBD_URL, 'NBD URLs start with nbd:// or nbd+unix://'),
  blockSize: blockSizeSchema,
  readOnly: z.boolean().default(false),
  removable: z.boolean().default(false),
  serial: serialSchema,
  connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** Reconnect attempts with back-off before I/O fails. */
  retries: z.number().int().min(0).max(100).default(5),
  /** Upstream connections when the export advertises CAN_MULTI_CONN (absent: 1). */
  connections: z.number().int().min(1).max(64).optional(),
});

export const nbdBackstore = defineBackstore({
  type: 'nbd',
  summary: 'a remote NBD export (nbdkit, qemu-nbd, another lunkit)',
  schema: NbdBackstoreSchema,
  reopenOn: ['url', 'blockSize', 'readOnly', 'connectTimeoutMs', 'retries', 'connections'],
  fixedSize: "is an NBD client: its size is the remote export's",

  async open(name, c) {
    const { NbdBackstore } = await import('./nbd.js');
    return NbdBackstore.open({ name, url: c.url, blockSize: c.blockSize, readOnly: c.readOnly, connectTimeoutMs: c.connectTimeoutMs, retries: c.retries, connections: c.connections });
  },

  describe: (c) => ({ where: c.url }),

  cli: {
    usage: '--url',
    options: [
      cliOption('url', 'string', 'nbd://host[:port]/export or nbd+unix:///export?socket=PATH'),
      CLI_OPTIONS.blockSize,
      CLI_OPTIONS.readOnly,
      CLI_OPTIONS.removable,
      CLI_OPTIONS.serial,
      cliOption('connections', 'number', 'upstream connections if the export has CAN_MULTI_CONN (default 1)'),
    ],
    examples: [['$0 backstore create nbd remote0 --url nbd://10.0.0.5/export', 'an NBD server as backstore']],
    params(a, ctx) {
      if (typeof a.url !== 'string' || !NBD_URL.test(a.url)) {
        throw ctx.usage('an nbd backstore needs --url nbd://host[:port]/export or nbd+unix:///export?socket=PATH');
      }
      if (a.connections === undefined) return { url: a.url };
      const n = a.connections;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 64) throw ctx.usage(`--connections must be an integer 1..64 (got ${String(n)})`);
      return { url: a.url, connections: n };
    },
  },

  targetcli: { notInLio: 'LIO has no NBD backstore' },
});
