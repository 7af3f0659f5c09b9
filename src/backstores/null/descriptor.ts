// The null backstore type: reads return zeroes, writes are discarded
// (README.md). Config, CLI and targetcli mapping; the I/O is null.ts.

import { z } from 'zod';
import { CLI_OPTIONS } from '../cli-options.js';
import { defineBackstore } from '../descriptor.js';
import { blockSizeSchema, serialSchema, sizeSchema } from '../schema.js';
import type { LioStorageObject } from '../targetcli.js';

export const NullBackstoreSchema = z.strictObject({
  type: z.literal('null'),
  size: sizeSchema,
  blockSize: blockSizeSchema,
  serial: serialSchema,
});

export const nullBackstore = defineBackstore({
  type: 'null',
  summary: 'reads zeroes, discards writes (measures everything above the backstore)',
  schema: NullBackstoreSchema,
  reopenOn: ['blockSize'],

  async open(name, c) {
    const { NullBackstore } = await import('./null.js');
    return new NullBackstore({ name, size: c.size, blockSize: c.blockSize });
  },

  describe: () => ({}),

  cli: {
    usage: '--size',
    options: [CLI_OPTIONS.size, CLI_OPTIONS.blockSize, CLI_OPTIONS.serial],
    params(a, ctx) {
      if (a.size === undefined) throw ctx.usage('a null backstore needs --size (e.g. --size 512M)');
      return { size: ctx.size(String(a.size)) };
    },
  },

  targetcli: {
    // LIO's ramdisk with nullio (reads zeroes, discards writes).
    toLio(name, c, ctx) {
      const so: LioStorageObject = { name, plugin: 'ramdisk', attributes: { block_size: c.blockSize }, size: c.size, nullio: true };
      if (ctx.wwn !== undefined) so.wwn = ctx.wwn;
      return { so, readOnly: false };
    },

    plugins: { ramdisk: ['size', 'nullio'] },
    claims: (so) => so.nullio === true,

    fromLio({ so, plugin, path, blockSize, serial, attrs }, ctx) {
      if (so.size === undefined || so.size === null || so.size === 0) {
        ctx.problem(`${path}.size: a ramdisk needs its size in bytes`);
        return undefined;
      }
      ctx.soAttributes(attrs, `${path}.attributes`, plugin);
      ctx.aluaGroups(so, path);
      const out: Record<string, unknown> = { type: 'null', size: ctx.roundSize(so.size, blockSize, path), blockSize };
      if (serial !== undefined) out.serial = serial;
      return out;
    },
  },
});
