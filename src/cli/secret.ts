// Secrets on the command line. `--password VALUE` puts the secret in argv,
// where every local user can read it (ps, /proc/PID/cmdline) and where shell
// history keeps it. Every verb that takes a secret therefore also takes
// `--password-file FILE`, and `-` (for the value or the file) reads it from
// standard input, so scripts can pipe it from a vault or a root-only file.
// The old flag keeps working (scripts use it); its help says why not to.
//
// A file or stdin holds the secret as is, one trailing newline removed (what
// `echo secret > file` and a here-string add). It may be at most
// MAX_SECRET_BYTES long: a secret file is not a place to read gigabytes from.

import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Argv } from 'yargs';

import { UsageError } from './output.js';

export const MAX_SECRET_BYTES = 4096;

/** Help text for a secret given in argv. */
export const ARGV_SECRET_RISK = 'visible to other local users in ps and kept in shell history: prefer the -file form or "-" (stdin)';

export interface SecretSource {
  /** The --X value: the secret, or "-" for stdin. */
  value?: string | undefined;
  /** The --X-file value: a path, or "-" for stdin. */
  file?: string | undefined;
  /** Option name without dashes, for messages ("password", "mutual-password"). */
  option: string;
}

/**
 * The secret from one option pair, or undefined when neither is given. At
 * most one of the secrets a command reads may come from stdin.
 */
export async function readSecrets(sources: SecretSource[], stdin: Readable = process.stdin): Promise<Array<string | undefined>> {
  const fromStdin = sources.filter((s) => s.value === '-' || s.file === '-');
  if (fromStdin.length > 1) {
    throw new UsageError('ERR_USAGE', `only one secret can come from stdin (${fromStdin.map((s) => `--${s.option}`).join(', ')})`);
  }
  const out: Array<string | undefined> = [];
  for (const s of sources) out.push(await readSecret(s, stdin));
  return out;
}

export async function readSecret(s: SecretSource, stdin: Readable = process.stdin): Promise<string | undefined> {
  if (s.value !== undefined && s.file !== undefined) {
    throw new UsageError('ERR_USAGE', `give --${s.option} or --${s.option}-file, not both`);
  }
  if (s.value === '-' || s.file === '-') return chomp(await readStream(stdin, `--${s.option} from stdin`));
  if (s.file !== undefined) return chomp(await readFileBounded(s.file, s.option));
  return s.value;
}

/** Adds --X-file for each secret option X (the option X itself is the command's). */
export function withSecretFileOptions<T>(y: Argv<T>, options: Array<{ option: string; what: string }>): Argv<T> {
  let out = y;
  for (const o of options) {
    // requiresArg: yargs would otherwise take a lone "-" for a positional.
    out = out.option(`${o.option}-file`, { type: 'string', requiresArg: true, describe: `read ${o.what} from FILE ("-": stdin); one trailing newline is dropped` });
  }
  return out;
}

/** --password-file / --target-password-file of the verbs that take an iscsi:// source URL. */
export interface UrlSecretArgs {
  'password-file'?: string;
  'target-password-file'?: string;
}

export function withUrlSecretOptions<T>(y: Argv<T>): Argv<T & UrlSecretArgs> {
  return y
    .option('password-file', { type: 'string', requiresArg: true, describe: 'iscsi://: our CHAP secret from FILE ("-": stdin), for a URL with a user and no password' })
    .option('target-password-file', { type: 'string', requiresArg: true, describe: 'iscsi://: mutual CHAP, the target secret from FILE ("-": stdin)' }) as unknown as Argv<T & UrlSecretArgs>;
}

/**
 * Put the secrets of --password-file / --target-password-file where the
 * iscsi:// URL parser looks for credentials the URL lacks: the libiscsi
 * variables of this process's environment (LIBISCSI_CHAP_PASSWORD,
 * LIBISCSI_CHAP_TARGET_PASSWORD). A FUSE holder inherits them; the
 * environment, unlike argv, is readable by the owner only.
 */
export async function applyUrlSecrets(args: UrlSecretArgs, env: NodeJS.ProcessEnv = process.env, stdin: Readable = process.stdin): Promise<void> {
  const [own, target] = await readSecrets(
    [
      { file: args['password-file'], option: 'password' },
      { file: args['target-password-file'], option: 'target-password' },
    ],
    stdin,
  );
  if (own !== undefined) env.LIBISCSI_CHAP_PASSWORD = own;
  if (target !== undefined) env.LIBISCSI_CHAP_TARGET_PASSWORD = target;
}

function chomp(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

async function readFileBounded(path: string, option: string): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError('ERR_USAGE', `--${option}-file ${path}: cannot open (${code})`);
  }
  try {
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_SECRET_BYTES) throw new UsageError('ERR_USAGE', `--${option}-file ${path}: longer than ${MAX_SECRET_BYTES} bytes`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

function readStream(stream: Readable, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer | string): void => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      n += b.length;
      if (n > MAX_SECRET_BYTES) {
        cleanup();
        stream.pause();
        reject(new UsageError('ERR_USAGE', `${what}: longer than ${MAX_SECRET_BYTES} bytes`));
        return;
      }
      chunks.push(b);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new UsageError('ERR_USAGE', `${what}: ${err.message}`));
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    stream.resume();
  });
}
