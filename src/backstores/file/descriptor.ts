// The file backstore type: a regular file (sparse by default) or a block
// device (README.md). Config, CLI and targetcli mapping; the I/O is file.ts.

import { unlink } from 'node:fs/promises';
import { z } from 'zod';
import { CLI_OPTIONS, cliOption } from '../cli-options.js';
import { defineBackstore } from '../descriptor.js';
import { blockSizeSchema, serialSchema, sizeSchema } from '../schema.js';
import type { LioStorageObject } from '../targetcli.js';
import { fileExists, preallocate } from './prealloc.js';

export const FileBackstoreSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1),
  size: sizeSchema.optional(),
  blockSize: blockSizeSchema,
  /** Create the file if it does not exist (needs size). */
  create: z.boolean().default(true),
  /** Thin: leave the file sparse, support UNMAP (default true). */
  thin: z.boolean().default(true),
  writeCache: z.boolean().default(true),
  readOnly: z.boolean().default(false),
  /** Report a removable medium (INQUIRY RMB=1): START STOP UNIT can eject it. */
  removable: z.boolean().default(false),
  serial: serialSchema,
});

export type FileBackstoreConfig = z.output<typeof FileBackstoreSchema>;

const bit = (b: boolean): number => (b ? 1 : 0);

export const fileBackstore = defineBackstore({
  type: 'file',
  summary: 'a regular file (sparse or preallocated) or a block device',
  schema: FileBackstoreSchema,
  reopenOn: ['path', 'blockSize', 'readOnly', 'writeCache', 'thin'],

  async open(name, c) {
    const { FileBackstore } = await import('./file.js');
    return FileBackstore.open({ name, path: c.path, size: c.size, create: c.create, sparse: c.thin, writeCache: c.writeCache, readOnly: c.readOnly, blockSize: c.blockSize });
  },

  /** A thick new file is preallocated here, with progress; a file this apply created goes again if the apply fails. */
  async prepare(name, c, ctx) {
    const before = await fileExists(c.path);
    if (!before.exists && c.create) ctx.onRollback(() => unlink(c.path).catch(() => undefined));
    if (!c.thin && c.create && !c.readOnly && c.size !== undefined && before.size < c.size) {
      await preallocate(c.path, before.size, c.size, `preallocating ${name}`, ctx.onProgress);
    }
  },

  async beforeGrow(name, c, from, to, onProgress) {
    if (!c.thin && !c.readOnly) await preallocate(c.path, from, to, `preallocating ${name}`, onProgress);
  },

  describe: (c) => ({ where: c.path, unsized: 'size of file', flags: [c.thin === false ? 'thick' : 'thin'] }),

  cli: {
    usage: '--path, --size',
    options: [
      cliOption('path', 'string', 'the image file (created if missing)'),
      CLI_OPTIONS.size,
      cliOption('thin', 'boolean', 'sparse file with UNMAP (default), --no-thin preallocates', { config: 'thin' }),
      CLI_OPTIONS.blockSize,
      CLI_OPTIONS.readOnly,
      CLI_OPTIONS.removable,
      CLI_OPTIONS.serial,
    ],
    examples: [
      ['$0 backstore create file disk0 --path /srv/disk0.img --size 10G', 'a sparse 10 GiB image file'],
      ['$0 backstore create file disk1 --path /srv/disk1.img --size 1G --no-thin', 'a preallocated file (progress bar)'],
    ],
    params(a, ctx) {
      if (typeof a.path !== 'string' || a.path === '') throw ctx.usage('a file backstore needs --path FILE');
      const out: Record<string, unknown> = { path: ctx.absolute(a.path) };
      if (a.size !== undefined) out.size = ctx.size(String(a.size));
      return out;
    },
  },

  targetcli: {
    // A device path is what the import makes of a "block" storage object.
    toLio(name, c, ctx) {
      const so: LioStorageObject = { name, plugin: 'fileio', attributes: { block_size: c.blockSize } };
      if (ctx.wwn !== undefined) so.wwn = ctx.wwn;
      let readOnly = false;
      const thin = bit(c.thin);
      if (c.path.startsWith('/dev/')) {
        Object.assign(so, { plugin: 'block', dev: c.path, readonly: c.readOnly, write_back: c.writeCache });
        so.attributes.emulate_tpu = thin;
        so.attributes.emulate_tpws = thin;
      } else {
        Object.assign(so, { plugin: 'fileio', dev: c.path, write_back: c.writeCache });
        if (c.size !== undefined) so.size = c.size;
        else ctx.unsupported(`${ctx.at}.size: not set; rtslib then takes the size of the existing file, so ${c.path} must exist on the LIO host`);
        so.attributes.emulate_write_cache = bit(c.writeCache);
        so.attributes.emulate_tpu = thin;
        so.attributes.emulate_tpws = thin;
        readOnly = c.readOnly;
        if (c.readOnly) ctx.unsupported(`${ctx.at}.readOnly=true: LIO fileio has no read-only switch; every mapped LUN using it is exported with write_protect, demo-mode access is not protected`);
      }
      if (c.removable) ctx.unsupported(`${ctx.at}.removable=true: LIO reports no removable media; left out`);
      return { so, readOnly };
    },

    plugins: {
      fileio: ['dev', 'size', 'write_back', 'aio'],
      block: ['dev', 'readonly', 'write_back', 'exclusive'],
    },

    fromLio({ so, plugin, path, blockSize, serial, attrs }, ctx) {
      if (!so.dev) {
        ctx.problem(`${path}.dev: a ${plugin} storage object needs the path of its ${plugin === 'block' ? 'block device' : 'file'}`);
        return undefined;
      }
      const file: Record<string, unknown> = { type: 'file', path: so.dev, blockSize };
      if (plugin === 'block') {
        // The device exists already; never let lunkit create a plain file in /dev.
        file.create = false;
        if (so.readonly !== undefined) file.readOnly = so.readonly;
        if (so.exclusive !== undefined) ctx.note(path, 'exclusive', so.exclusive, 'lunkit opens the device without O_EXCL');
      } else {
        if (so.size !== undefined && so.size !== null) file.size = ctx.roundSize(so.size, blockSize, path);
        if (so.aio !== undefined && so.aio !== null) ctx.note(path, 'aio', so.aio, 'lunkit always submits file I/O asynchronously (libuv thread pool)');
      }
      let writeCache = so.write_back;
      const ewc = attrs.emulate_write_cache;
      if (ewc !== undefined) {
        delete attrs.emulate_write_cache;
        const on = ctx.asNumber(ewc) === 1;
        if (writeCache === undefined) writeCache = on;
        else if (on !== writeCache) ctx.unsupported(`${path}.attributes`, 'emulate_write_cache', ewc, `differs from write_back=${writeCache}; lunkit has one writeCache setting (taken from write_back)`);
      }
      if (writeCache !== undefined) file.writeCache = writeCache;
      // emulate_tpu (UNMAP) and emulate_tpws (WRITE SAME with UNMAP) are one setting in lunkit: thin.
      const tpu = attrs.emulate_tpu;
      const tpws = attrs.emulate_tpws;
      delete attrs.emulate_tpu;
      delete attrs.emulate_tpws;
      if (tpu !== undefined || tpws !== undefined) {
        const thin = ctx.asNumber(tpu ?? tpws) === 1;
        file.thin = thin;
        if (tpu !== undefined && tpws !== undefined && !ctx.sameValue(tpu, tpws)) {
          ctx.unsupported(`${path}.attributes`, 'emulate_tpws', tpws, `differs from emulate_tpu=${String(tpu)}; lunkit has one thin setting (taken from emulate_tpu)`);
        }
      }
      if (serial !== undefined) file.serial = serial;
      ctx.soAttributes(attrs, `${path}.attributes`, plugin);
      ctx.aluaGroups(so, path);
      return file;
    },
  },
});
