// The backstore descriptor: everything the rest of lunkit knows about one
// backstore type, exported by that type's folder and listed once in
// registry.ts (README.md "Adding a backstore type"). The config schema, the
// daemon's runtime, `lunkit backstore create`, `lunkit ls`, and the targetcli
// import/export read descriptors; none of them names a type.
//
// What a backstore can do (BackstoreCaps) is not here: it is declared once,
// by the opened BackstoreOps (`caps`), and the core derives VPD pages and NBD
// flags from it.

import type { z } from 'zod';
import type { BackstoreOps } from '../core/types.js';
import type { BackstoreCli } from './cli-options.js';
import type { TargetcliMapping } from './targetcli.js';
import type { FilterConfigInput } from './filters/index.js';

export interface Progress {
  what: string;
  done: number;
  total: number;
}

export type ProgressFn = (p: Progress) => void;

/**
 * Config fields that mean the same in every type that has them; the daemon,
 * the CLI and the targetcli mapping read them without knowing the type.
 */
export interface CommonBackstoreConfig {
  type: string;
  /** Logical block size; absent only where the remote decides (iscsi). */
  blockSize?: 512 | 4096 | undefined;
  /** Bytes; absent where the medium decides (an existing file, a remote LUN). */
  size?: number | undefined;
  /** The LU is write protected (the core refuses writes). */
  readOnly?: boolean | undefined;
  /** INQUIRY RMB=1: START STOP UNIT can eject it. */
  removable?: boolean | undefined;
  /** Unit serial number (VPD 0x80). */
  serial?: string | undefined;
  /** Write-back cache reported (and honoured) by the device (default true). */
  writeCache?: boolean | undefined;
  /** Thin provisioning wanted (default true; the caps decide whether it is possible). */
  thin?: boolean | undefined;
  /** Filters between the core and the backstore, outermost first (filters/README.md); any type may have them. */
  filters?: FilterConfigInput[] | undefined;
}

/** A type's config schema: a strict zod object whose `type` is a literal. */
export type BackstoreSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.core.$ZodShape, z.core.$strict>;

/** Hooks the daemon gives prepare(): progress, and clean-up should the apply fail. */
export interface PrepareContext {
  onProgress?: ProgressFn | undefined;
  /** Runs if the apply fails, after the objects it opened are closed again (e.g. remove a file it created). */
  onRollback(undo: () => Promise<void>): void;
}

/** What `backstore list` and `lunkit ls` show of a configured backstore. */
export interface BackstoreSummary {
  /** Where the data is: a path, a URL without its secrets; absent for memory. */
  where?: string | undefined;
  /** How an absent size is shown ("size of file"); absent when the size is always set or never configurable. */
  unsized?: string | undefined;
  /** Type-specific flags, e.g. "thin"/"thick". */
  flags?: readonly string[] | undefined;
}

/**
 * One backstore type. Declared with method syntax so a registry can hold
 * descriptors of different config types side by side.
 */
export interface BackstoreDescriptor<S extends BackstoreSchema = BackstoreSchema> {
  /** The config's "type", and TYPE in `lunkit backstore create TYPE NAME`. */
  readonly type: string;
  /** One line for help texts and docs. */
  readonly summary: string;
  /** The config fragment (zod 4 strictObject with `type: z.literal(type)`); the union in config-schema.ts is built from these. */
  readonly schema: S;
  /**
   * Config keys (besides type) whose change needs the backstore opened again;
   * a change elsewhere is applied to the running object (device settings, a
   * resize). A ramdisk lists only blockSize: reopening would lose its data.
   */
  readonly reopenOn: ReadonlyArray<keyof z.output<S> & string>;
  /**
   * Set when the size is not configurable: how messages say why, after
   * `backstore "NAME" `, e.g. "is an NBD client: its size is the remote export's".
   */
  readonly fixedSize?: string;
  /** Opens it. `name` is the backstore's name in the configuration. */
  open(name: string, config: z.output<S>): Promise<BackstoreOps>;
  /** Before open(), in the daemon: make what open() needs (a thick file's blocks). */
  prepare?(name: string, config: z.output<S>, ctx: PrepareContext): Promise<void>;
  /** Before a running backstore grows from `from` to `to` bytes (a thick file preallocates). */
  beforeGrow?(name: string, config: z.output<S>, from: number, to: number, onProgress?: ProgressFn): Promise<void>;
  /** For listings. */
  describe(config: z.output<S>): BackstoreSummary;
  /** `lunkit backstore create TYPE NAME [options]`. */
  readonly cli: BackstoreCli;
  /** targetcli/rtslib saveconfig.json, or why LIO cannot hold this type. */
  readonly targetcli: TargetcliMapping<z.output<S>>;
}

/** Identity function that checks a descriptor against its own schema's config type. */
export function defineBackstore<S extends BackstoreSchema>(d: BackstoreDescriptor<S>): BackstoreDescriptor<S> {
  return d;
}
