// Config-schema pieces several backstore types share (zod 4), so a size or a
// block size is written and checked the same way in every type.

import { z } from 'zod';
import { parseSize } from '../util/size.js';

/** A size in bytes, or with a unit ("512M", "10G"). */
export const sizeSchema = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseSize(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/** Logical block size, 512 by default. */
export const blockSizeSchema = z.union([z.literal(512), z.literal(4096)]).default(512);

/** Unit serial number (VPD 0x80); derived from the name when absent. */
export const serialSchema = z.string().optional();
