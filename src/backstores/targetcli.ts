// A backstore type's part of the targetcli/rtslib saveconfig.json mapping
// (src/daemon/targetcli, docs/targetcli.md): the storage object it becomes in
// kernel LIO and the storage objects it is made from, or why LIO cannot hold
// it. The daemon side does everything that is not about one type (names,
// serials, targets, messages about LUNs left out) and hands the type its
// storage object through these contexts.

/** A storage object as rtslib-fb's dump() writes it (rtslib/tcm.py). */
export interface LioStorageObject {
  name: string;
  /** rtslib plugin: "fileio", "block", "ramdisk" (nullio for a null device)... */
  plugin: string;
  dev?: string;
  size?: number;
  wwn?: string;
  write_back?: boolean;
  readonly?: boolean;
  nullio?: boolean;
  attributes: Record<string, number>;
}

/** A storage object read from saveconfig.json (already checked for types; unknown keys kept). */
export interface LioStorageObjectIn {
  name: string;
  plugin: string;
  dev?: string | null | undefined;
  size?: number | null | undefined;
  wwn?: string | null | undefined;
  write_back?: boolean | undefined;
  readonly?: boolean | undefined;
  nullio?: boolean | undefined;
  attributes?: Record<string, unknown> | undefined;
  alua_tpgs?: Array<{ name: string }> | undefined;
  [key: string]: unknown;
}

export interface TargetcliExportContext {
  /** JSON path of the backstore in the lunkit configuration, for messages ("backstores.disk0"). */
  at: string;
  /** rtslib's wwn for the backstore's serial (undefined: none set). */
  wwn: string | undefined;
  /** Adds "<at>...: why" for what LIO cannot hold; the user sees the list. */
  unsupported(message: string): void;
}

export interface TargetcliExport {
  so: LioStorageObject;
  /** Read-only in lunkit but not in LIO: every mapped LUN using it gets write_protect. */
  readOnly: boolean;
}

/** What the import has read of a storage object before the type sees it. */
export interface TargetcliImportInput {
  so: LioStorageObjectIn;
  /** The rtslib plugin name with configfs aliases resolved ("iblock" -> "block"). */
  plugin: string;
  /** JSON path in saveconfig.json ("storage_objects[2]"). */
  path: string;
  /** attributes.block_size, checked (512 when absent or unusable; reported). */
  blockSize: 512 | 4096;
  /** The unit serial made from wwn, if usable. */
  serial: string | undefined;
  /** The storage object's attributes without block_size; the type deletes what it maps, then calls soAttributes(). */
  attrs: Record<string, unknown>;
}

/** The importer's bookkeeping: what is carried, what is not and why. */
export interface TargetcliImportContext {
  /** Input rtslib would refuse: the import fails naming it. */
  problem(message: string): void;
  /** "<path>.<key>=<value>: why" for something lunkit cannot do as asked. */
  unsupported(path: string, key: string, value: unknown, why: string): void;
  /** "<path>.<key>=<value>: why" for a value that only restates LIO's default. */
  note(path: string, key: string, value: unknown, why: string): void;
  /** The size rounded down to whole blocks (reported when it was not). */
  roundSize(size: number, blockSize: number, path: string): number;
  /** Reports the attributes left (LIO defaults as notes, anything else as unsupported). */
  soAttributes(attrs: Record<string, unknown>, path: string, plugin: string): void;
  /** Reports ALUA groups (lunkit has one). */
  aluaGroups(so: LioStorageObjectIn, path: string): void;
  /** A number from JSON that may be a number, a boolean or a numeric string. */
  asNumber(v: unknown): number | undefined;
  sameValue(a: unknown, b: unknown): boolean;
}

export interface TargetcliMapping<C> {
  /**
   * Set when LIO has no such backstore: why, as the export says it after
   * "<path> (<type> <where>): " (and then "; LUNs using it are left out").
   */
  readonly notInLio?: string;
  /** The LIO storage object for this backstore (absent with notInLio). */
  toLio?(name: string, config: C, ctx: TargetcliExportContext): TargetcliExport;
  /**
   * rtslib plugins this type imports, with the keys each may carry besides
   * name, plugin, wwn, attributes and alua_tpgs.
   */
  readonly plugins?: Readonly<Record<string, readonly string[]>>;
  /** Whether a storage object of one of those plugins is this type's (ramdisk vs nullio). Default: yes. */
  claims?(so: LioStorageObjectIn): boolean;
  /** The lunkit config (input form) for a claimed storage object, or undefined after ctx.problem(). */
  fromLio?(input: TargetcliImportInput, ctx: TargetcliImportContext): Record<string, unknown> | undefined;
}
