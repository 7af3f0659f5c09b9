// The qcow2 backstore type: a QEMU disk image, with its backing chain
// (README.md in this folder). Config, CLI and targetcli mapping; the format
// engine is qcow2.ts, image creation create.ts.

import { stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { CLI_OPTIONS, cliOption } from '../cli-options.js';
import { defineBackstore } from '../descriptor.js';
import { blockSizeSchema, serialSchema, sizeSchema } from '../schema.js';

/** QEMU's limits for cluster_size: a power of two from 512 bytes to 2 MiB. */
const clusterSizeSchema = sizeSchema.refine((n) => n >= 512 && n <= 2 * 1024 * 1024 && (n & (n - 1)) === 0, {
  message: 'the cluster size is a power of two from 512 to 2M (default 64K)',
});

export const Qcow2BackstoreSchema = z.strictObject({
  type: z.literal('qcow2'),
  path: z.string().min(1),
  /** Create the image when it does not exist (needs size, or a backing file to take it from). */
  create: z.boolean().default(false),
  /** Virtual size of a new image (an existing image has its own). */
  size: sizeSchema.optional(),
  /** Backing file of a new image, as recorded in its header (relative to the image's directory, or absolute). */
  backing: z.string().min(1).optional(),
  /** Format of that backing file (default: read from its first bytes). */
  backingFormat: z.enum(['raw', 'qcow2']).optional(),
  /** Cluster size of a new image (default 64K). */
  clusterSize: clusterSizeSchema.optional(),
  blockSize: blockSizeSchema,
  writeCache: z.boolean().default(true),
  readOnly: z.boolean().default(false),
  removable: z.boolean().default(false),
  serial: serialSchema,
});

export type Qcow2BackstoreConfig = z.output<typeof Qcow2BackstoreSchema>;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export const qcow2Backstore = defineBackstore({
  type: 'qcow2',
  summary: 'a QEMU qcow2 image, following its backing chain (copy-on-write overlays)',
  schema: Qcow2BackstoreSchema,
  reopenOn: ['path', 'blockSize', 'readOnly', 'create', 'backing', 'backingFormat', 'clusterSize'],

  async open(name, c) {
    if (c.create && !(await exists(c.path))) {
      const { createQcow2 } = await import('./create.js');
      await createQcow2({ path: c.path, size: c.size, clusterSize: c.clusterSize, backing: c.backing, backingFormat: c.backingFormat });
    }
    // The live wrapper (live.ts): reset, snapshot and commit swap its image while the LU keeps serving.
    const { LiveQcow2 } = await import('./live.js');
    return LiveQcow2.open({ name, path: c.path, readOnly: c.readOnly, blockSize: c.blockSize, writeCache: c.writeCache });
  },

  /** An image this apply creates goes again if the apply fails. */
  async prepare(_name, c, ctx) {
    if (c.create && !(await exists(c.path))) ctx.onRollback(() => unlink(c.path).catch(() => undefined));
  },

  describe: (c) => ({
    where: c.path,
    unsized: 'size of image',
    flags: c.backing !== undefined ? [`backing=${isAbsolute(c.backing) ? c.backing : resolve(dirname(c.path), c.backing)}`] : [],
  }),

  cli: {
    usage: '--path [--size, --backing]',
    options: [
      cliOption('path', 'string', 'the image file (created if missing)'),
      CLI_OPTIONS.size,
      cliOption('backing', 'string', 'qcow2: backing file of a new image (copy-on-write overlay)'),
      cliOption('backing-format', 'string', 'qcow2: format of the backing file, raw or qcow2 (default: detected)'),
      cliOption('cluster-size', 'string', 'qcow2: cluster size of a new image (default 64K)'),
      CLI_OPTIONS.blockSize,
      CLI_OPTIONS.readOnly,
      CLI_OPTIONS.removable,
      CLI_OPTIONS.serial,
    ],
    examples: [
      ['$0 backstore create qcow2 vm0 --path /srv/vm0.qcow2 --size 20G', 'a new 20 GiB qcow2 image'],
      ['$0 backstore create qcow2 pc01 --path /srv/pc01.qcow2 --backing golden.img --backing-format raw', 'a copy-on-write overlay of golden.img'],
      ['$0 backstore create qcow2 img --path /srv/debian.qcow2', 'serve an existing qcow2 image'],
    ],
    params(a, ctx) {
      if (typeof a.path !== 'string' || a.path === '') throw ctx.usage('a qcow2 backstore needs --path FILE');
      const out: Record<string, unknown> = { path: ctx.absolute(a.path), create: true };
      if (a.size !== undefined) out.size = ctx.size(String(a.size));
      if (a.backing !== undefined) {
        if (typeof a.backing !== 'string' || a.backing === '') throw ctx.usage('--backing names a file');
        out.backing = a.backing;
      }
      if (a.backingFormat !== undefined) {
        if (a.backingFormat !== 'raw' && a.backingFormat !== 'qcow2') throw ctx.usage('--backing-format is raw or qcow2');
        out.backingFormat = a.backingFormat;
      }
      if (a.clusterSize !== undefined) out.clusterSize = ctx.size(String(a.clusterSize));
      return out;
    },
  },

  targetcli: { notInLio: 'LIO has no qcow2 backstore (its fileio and block backstores serve raw data only)' },
});
