// Where an attachment will appear and with what settings: a plain,
// JSON-serialisable value handed to the holder process (holder-main.ts).
// Kept apart from holder.ts so the CLI can plan without loading the FUSE fabric.

import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { BlockSize } from '../backstores/index.js';
import { defaultFileName, type AttachSource } from './source.js';
import { attachDir } from './state.js';

/** Environment variable that carries the plan (JSON) to a detached holder. */
export const HOLDER_PLAN_ENV = 'LUNKIT_HOLDER_PLAN';

/** Everything a holder needs; JSON-serialisable (passed to the detached process). */
export interface HolderPlan {
  id: string;
  source: AttachSource;
  mountpoint: string;
  /** File name inside the mount point. */
  name: string;
  ownsMountpoint: boolean;
  blockSize: BlockSize;
  readOnly: boolean;
  /** Mount the FUSE directory with direct_io. */
  directIo?: boolean;
}

/**
 * Where a source will appear. With an explicit file path (nbdfuse's
 * MOUNTPOINT/FILENAME), its directory becomes the FUSE mount point; without
 * one, a new directory under <run>/attach/<id>/.
 */
export function planAttach(
  source: AttachSource,
  opts: { file?: string | undefined; blockSize?: BlockSize | undefined; readOnly?: boolean | undefined; directIo?: boolean | undefined },
): HolderPlan {
  const common = { source, blockSize: opts.blockSize ?? 512, readOnly: opts.readOnly ?? false, directIo: opts.directIo ?? false };
  if (opts.file) {
    const abs = resolve(opts.file);
    const mountpoint = dirname(abs);
    const id = 'f' + createHash('sha256').update(mountpoint).digest('hex').slice(0, 12);
    return { ...common, id, mountpoint, name: basename(abs), ownsMountpoint: false };
  }
  const name = defaultFileName(source);
  const id = `${name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 32)}-${randomBytes(3).toString('hex')}`;
  return { ...common, id, mountpoint: join(attachDir(), id), name, ownsMountpoint: true };
}

