// The backstore types lunkit knows: one line each (README.md "Adding a
// backstore type"). The config schema (a discriminated union of the types'
// schemas), the daemon's runtime, `lunkit backstore create`, `lunkit ls` and
// the targetcli import/export all read this list; none of them names a type.

import { z } from 'zod';
import type { BackstoreOps } from '../core/types.js';
import { LunkitError } from '../protocols/errors.js';
import type { BackstoreDescriptor, BackstoreSchema, BackstoreSummary, CommonBackstoreConfig } from './descriptor.js';
import { applyFilters, FiltersSchema, innermost, type FilterConfigInput } from './filters/index.js';
import { fileBackstore } from './file/descriptor.js';
import { iscsiBackstore } from './iscsi/descriptor.js';
import { nbdBackstore } from './nbd/descriptor.js';
import { nullBackstore } from './null/descriptor.js';
import { qcow2Backstore } from './qcow2/descriptor.js';
import { ramdiskBackstore } from './ramdisk/descriptor.js';

const DESCRIPTORS = [
  fileBackstore,
  ramdiskBackstore,
  nullBackstore,
  nbdBackstore,
  iscsiBackstore,
  qcow2Backstore,
] as const;

type SchemasOf<T extends readonly unknown[]> = { -readonly [K in keyof T]: T[K] extends BackstoreDescriptor<infer S> ? S : never };

/**
 * Each type's schema plus what every backstore may have whatever its type:
 * `filters` (filters/README.md), stacked between the core and the backstore.
 */
function schemasOf<T extends readonly [BackstoreDescriptor<BackstoreSchema>, ...BackstoreDescriptor<BackstoreSchema>[]]>(ds: T): SchemasOf<T> {
  return ds.map((d) => d.schema.extend({ filters: FiltersSchema.optional() })) as unknown as SchemasOf<T>;
}

/** Every registered type, in the order help texts list them. */
export const BACKSTORE_DESCRIPTORS: readonly BackstoreDescriptor[] = DESCRIPTORS;

/** The type names ("file", "ramdisk", ...). */
export const BACKSTORE_TYPES: readonly string[] = DESCRIPTORS.map((d) => d.type);

/** A backstore in the configuration: one of the registered types' schemas, told apart by `type`. */
export const BackstoreConfigSchema = z.discriminatedUnion('type', schemasOf(DESCRIPTORS));

export type BackstoreConfig = z.output<typeof BackstoreConfigSchema>;
export type BackstoreConfigInput = z.input<typeof BackstoreConfigSchema>;

const BY_TYPE = new Map<string, BackstoreDescriptor>(DESCRIPTORS.map((d) => [d.type, d as BackstoreDescriptor]));

/** The descriptor of a type name, or undefined for a name nobody registered. */
export function findBackstoreType(type: string): BackstoreDescriptor | undefined {
  return BY_TYPE.get(type);
}

/** The descriptor of a parsed config (its type is registered: the schema saw to it). */
export function descriptorOf(config: { type: string }): BackstoreDescriptor {
  const d = BY_TYPE.get(config.type);
  if (!d) throw new LunkitError('ERR_INTERNAL', `no backstore type "${config.type}" is registered`);
  return d;
}

/** The fields every type shares, for code that does not know the type. */
export function commonConfig(config: BackstoreConfig): CommonBackstoreConfig {
  return config as CommonBackstoreConfig;
}

/** What listings show of a backstore; nothing special for a type this build does not know (a newer daemon's). */
export function describeBackstore(config: { type: string }): BackstoreSummary & { remote: boolean } {
  const d = BY_TYPE.get(config.type);
  return d ? { ...d.describe(config as BackstoreConfig), remote: d.fixedSize !== undefined } : { remote: false };
}

/** Opens a configured backstore through its type, with its filters stacked on it (first = outermost). */
export async function openBackstore(name: string, config: BackstoreConfig): Promise<BackstoreOps> {
  const ops = await descriptorOf(config).open(name, config);
  const filters = commonConfig(config).filters;
  if (!filters || filters.length === 0) return ops;
  try {
    return applyFilters(ops, filters);
  } catch (e) {
    await ops.close();
    throw e;
  }
}

/**
 * The same backstore with another filter stack (a config change that only
 * touches `filters`): the filters of `ops` are dropped, `filters` stacked on
 * what was under them. The backstore itself stays open (no data is lost).
 */
export function restackFilters(ops: BackstoreOps, filters: readonly FilterConfigInput[] | undefined): BackstoreOps {
  return applyFilters(innermost(ops), filters ?? []);
}
