// What a backstore type takes on `lunkit backstore create TYPE NAME [options]`
// (src/cli/params.ts does the generic part: the type, the name, options that
// do not apply to the type, --block-size, size against block size). The
// options several types share are defined once here so their help text and
// meaning stay the same everywhere.

/** One command-line option of `backstore create`. */
export interface BackstoreCliOption {
  /** As typed, without the dashes: "path", "read-only". */
  readonly flag: string;
  /** The key in the parsed arguments: the flag in camelCase ("readOnly"). */
  readonly key: string;
  readonly type: 'string' | 'boolean' | 'number';
  readonly describe: string;
  readonly choices?: readonly number[];
  /**
   * Copied into the backstore config under this key as given (booleans,
   * plain strings); options without it are read by the type's params().
   */
  readonly config?: string;
}

/** What params() may ask of the command line; errors are usage errors (exit 2). */
export interface BackstoreCliContext {
  /** The error refusing the command line with this message (throw it). */
  usage(message: string): Error;
  /** A size with unit ("10G") in bytes, > 0; refused with the option's name otherwise. */
  size(input: string): number;
  /** A path made absolute against the caller's directory (the daemon has its own cwd). */
  absolute(path: string): string;
}

export interface BackstoreCli {
  /** The options it needs, as in "file (--path, --size)" in the help text. */
  readonly usage: string;
  /** Every option this type takes; any other option of another type is refused with "--X does not apply". */
  readonly options: readonly BackstoreCliOption[];
  /** [command line, what it does] pairs for the help text; `$0` is the program. */
  readonly examples?: ReadonlyArray<readonly [string, string]>;
  /**
   * The type's own config fields from the parsed arguments (keyed by
   * option key); options with `config` are copied by the caller.
   */
  params(args: Readonly<Record<string, unknown>>, ctx: BackstoreCliContext): Record<string, unknown>;
}

function option(flag: string, type: BackstoreCliOption['type'], describe: string, extra: Partial<BackstoreCliOption> = {}): BackstoreCliOption {
  const key = flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  return { flag, key, type, describe, ...extra };
}

/** Options with one meaning in every type that takes them. */
export const CLI_OPTIONS = {
  size: option('size', 'string', 'size with unit (10G, 512M); for file: the size of a new file'),
  blockSize: option('block-size', 'number', 'logical block size (default 512)', { choices: [512, 4096] }),
  readOnly: option('read-only', 'boolean', 'refuse writes', { config: 'readOnly' }),
  removable: option('removable', 'boolean', 'report a removable medium', { config: 'removable' }),
  serial: option('serial', 'string', 'unit serial number (VPD page 0x80)', { config: 'serial' }),
} as const;

/** A type's own option (help text prefixed with the type where the caller lists all of them). */
export function cliOption(flag: string, type: BackstoreCliOption['type'], describe: string, extra: Partial<BackstoreCliOption> = {}): BackstoreCliOption {
  return option(flag, type, describe, extra);
}
