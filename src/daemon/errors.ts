// Errors of the management plane (docs/control-protocol.md "Rules"): one class
// with a stable string code, the JSON path of the configuration field at fault
// and, for a rejected whole configuration, every problem. The control server
// turns them into JSON-RPC error objects; the code table lives here so the
// server and the tests read the same numbers.

import { LunkitError } from '../protocols/errors.js';

export type ControlErrorCode =
  | 'ERR_CONTROL_PARSE'
  | 'ERR_CONTROL_REQUEST'
  | 'ERR_CONTROL_METHOD'
  | 'ERR_INVALID_PARAMS'
  | 'ERR_CONTROL_TOO_LARGE'
  | 'ERR_CONTROL_BUSY'
  | 'ERR_NOT_FOUND'
  | 'ERR_EXISTS'
  | 'ERR_IN_USE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_APPLY_FAILED'
  | 'ERR_INTERNAL';

/** error.data.code -> JSON-RPC error.code (docs/control-protocol.md table). */
export const RPC_CODES: Readonly<Record<ControlErrorCode, number>> = {
  ERR_CONTROL_PARSE: -32700,
  ERR_CONTROL_REQUEST: -32600,
  ERR_CONTROL_METHOD: -32601,
  ERR_INVALID_PARAMS: -32602,
  ERR_CONTROL_TOO_LARGE: -32000,
  ERR_CONTROL_BUSY: -32006,
  ERR_NOT_FOUND: -32002,
  ERR_EXISTS: -32003,
  ERR_IN_USE: -32001,
  ERR_INVALID_CONFIG: -32004,
  ERR_APPLY_FAILED: -32005,
  ERR_INTERNAL: -32603,
};

export class ControlError extends LunkitError {
  declare readonly code: ControlErrorCode;
  readonly path: string | undefined;
  readonly problems: string[] | undefined;

  constructor(code: ControlErrorCode, message: string, opts: { path?: string; problems?: string[]; cause?: unknown } = {}) {
    super(code, message, { cause: opts.cause });
    this.name = 'ControlError';
    this.path = opts.path;
    this.problems = opts.problems;
  }
}

/** The JSON path syntax of config.ts errors: a.b["key with dots"].c */
export function jsonPath(...parts: Array<string | number>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

/** A whole configuration rejected: every problem, each with its JSON path. */
export class ConfigError extends LunkitError {
  declare readonly code: 'ERR_INVALID_CONFIG';
  constructor(
    readonly problems: string[],
    source: string,
  ) {
    super('ERR_INVALID_CONFIG', `invalid configuration${source ? ` in ${source}` : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}
