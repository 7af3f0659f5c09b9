// What every control verb shares: the --json and --socket options, running a
// handler against the daemon, printing its result (human text or JSON) and its
// errors with exit codes: 0 ok, 1 daemon/operation error, 2 usage error.

import type { Argv } from 'yargs';

import { ControlClient } from '../daemon/control-client.js';
import { LunkitError, type LunkitErrorCode } from '../protocols/errors.js';

export interface CommonArgs {
  json: boolean;
  socket?: string;
}

/** A mistake in the command line found before anything is sent (exit code 2). */
export class UsageError extends LunkitError {
  constructor(code: LunkitErrorCode, message: string) {
    super(code, message);
    this.name = 'UsageError';
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Adds --json and --socket to a verb. */
export function withCommon<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print the result (and errors, on stderr) as JSON' })
    .option('socket', {
      type: 'string',
      describe: 'control socket of the daemon (default $LUNKIT_SOCKET or /run/lunkit/lunkit.sock)',
    }) as unknown as Argv<T & CommonArgs>;
}

/** Where output goes; injectable so tests can capture it. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

interface ErrorShape {
  code: string;
  message: string;
  path?: string;
  problems?: string[];
}

function errorShape(err: unknown): ErrorShape {
  if (err instanceof LunkitError || (err instanceof Error && typeof (err as { code?: unknown }).code === 'string')) {
    const e = err as Error & { code: string; path?: unknown; problems?: unknown };
    const out: ErrorShape = { code: e.code, message: e.message };
    if (typeof e.path === 'string') out.path = e.path;
    if (Array.isArray(e.problems)) out.problems = e.problems.map(String);
    return out;
  }
  return { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Prints an error as `lunkit: <message> (<code>)` (or JSON) and returns the exit code. */
export function reportError(err: unknown, json: boolean, io: Io = processIo): number {
  const e = errorShape(err);
  if (json) {
    io.stderr.write(`${JSON.stringify({ error: e })}\n`);
  } else {
    io.stderr.write(`lunkit: ${e.message} (${e.code})\n`);
    if (e.path && !e.message.includes(e.path)) io.stderr.write(`  at ${e.path}\n`);
    // A ConfigError's message already lists its problems.
    for (const p of e.problems ?? []) if (!e.message.includes(p)) io.stderr.write(`  - ${p}\n`);
  }
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
}

/** Prints a result: JSON with --json, else the human text (nothing when it is empty). */
export function printResult(result: unknown, json: boolean, human: () => string, io: Io = processIo): void {
  if (json) {
    io.stdout.write(`${JSON.stringify(result ?? null, null, 2)}\n`);
    return;
  }
  const text = human();
  if (text.length > 0) io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * Runs a verb: `prepare` checks the arguments (throwing UsageError) before any
 * connection, then `act` talks to the daemon. Sets process.exitCode.
 */
export async function runVerb<P>(
  args: CommonArgs,
  prepare: () => P | Promise<P>,
  act: (client: ControlClient, prepared: P) => Promise<void>,
  io: Io = processIo,
): Promise<void> {
  let client: ControlClient | undefined;
  try {
    const prepared = await prepare();
    client = await ControlClient.connect(args.socket);
    await act(client, prepared);
    process.exitCode = EXIT_OK;
  } catch (err) {
    process.exitCode = reportError(err, args.json, io);
  } finally {
    client?.close();
  }
}
