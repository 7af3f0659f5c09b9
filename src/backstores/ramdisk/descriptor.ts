// The ramdisk backstore type: memory in chunks allocated on first write
// (README.md). Config, CLI and targetcli mapping; the I/O is ramdisk.ts.

import { z } from 'zod';
import { CLI_OPTIONS } from '../cli-options.js';
import { defineBackstore } from '../descriptor.js';
import { blockSizeSchema, serialSchema, sizeSchema } from '../schema.js';
import type { LioStorageObject } from '../targetcli.js';

export const RamdiskBackstoreSchema = z.strictObject({
  type: z.literal('ramdisk'),
  size: sizeSchema,
  blockSize: blockSizeSchema,
  readOnly: z.boolean().default(false),
  removable: z.boolean().default(false),
  serial: serialSchema,
});

export const ramdiskBackstore = defineBackstore({
  type: 'ramdisk',
  summary: 'memory, allocated on first write (thin: UNMAP frees it)',
  schema: RamdiskBackstoreSchema,
  // Reopening a ramdisk would lose its data: only its block size forces it.
  reopenOn: ['blockSize'],

  async open(name, c) {
    const { RamdiskBackstore } = await import('./ramdisk.js');
    return new RamdiskBackstore({ name, size: c.size, blockSize: c.blockSize });
  },

  describe: () => ({}),

  cli: {
    usage: '--size',
    options: [CLI_OPTIONS.size, CLI_OPTIONS.blockSize, CLI_OPTIONS.readOnly, CLI_OPTIONS.removable, CLI_OPTIONS.serial],
    examples: [['$0 backstore create ramdisk rd0 --size 512M', 'a RAM disk']],
    params(a, ctx) {
      if (a.size === undefined) throw ctx.usage('a ramdisk backstore needs --size (e.g. --size 512M)');
      return { size: ctx.size(String(a.size)) };
    },
  },

  targetcli: {
    toLio(name, c, ctx) {
      const so: LioStorageObject = { name, plugin: 'ramdisk', attributes: { block_size: c.blockSize }, size: c.size };
      if (ctx.wwn !== undefined) so.wwn = ctx.wwn;
      if (c.readOnly) ctx.unsupported(`${ctx.at}.readOnly=true: LIO ramdisks have no read-only switch; every mapped LUN using it is exported with write_protect, demo-mode access is not protected`);
      if (c.removable) ctx.unsupported(`${ctx.at}.removable=true: LIO reports no removable media; left out`);
      return { so, readOnly: c.readOnly };
    },

    plugins: { ramdisk: ['size', 'nullio'] },
    // nullio=1 is the null type's.
    claims: (so) => !so.nullio,

    fromLio({ so, plugin, path, blockSize, serial, attrs }, ctx) {
      if (so.size === undefined || so.size === null || so.size === 0) {
        ctx.problem(`${path}.size: a ramdisk needs its size in bytes`);
        return undefined;
      }
      if (so.nullio === false) ctx.note(path, 'nullio', false, 'the default');
      ctx.soAttributes(attrs, `${path}.attributes`, plugin);
      ctx.aluaGroups(so, path);
      const out: Record<string, unknown> = { type: 'ramdisk', size: ctx.roundSize(so.size, blockSize, path), blockSize };
      if (serial !== undefined) out.serial = serial;
      return out;
    },
  },
});
