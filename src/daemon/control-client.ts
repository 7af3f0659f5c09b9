// A client of the daemon's control socket (docs/control-protocol.md):
// newline-delimited JSON-RPC 2.0 over a Unix stream socket. Requests carry
// increasing ids; responses may come in any order and are matched by id;
// `progress` notifications (no id, params.id = the request's id) go to that
// call's onProgress; every other notification (e.g. `stats` of a
// stats.subscribe stream) goes to the onNotification listeners. The CLI and
// any other program use this one class.

import { createConnection, type Socket } from 'node:net';

import { LunkitError, isLunkitErrorCode, type LunkitErrorCode } from '../protocols/errors.js';
import { defaultSocketPath } from './paths.js';

/** A progress notification of a long request (bytes, or objects for config.replace). */
export interface ControlProgress {
  what: string;
  done: number;
  total: number;
}

export interface ControlCallOptions {
  onProgress?: (p: ControlProgress) => void;
}

/**
 * An error from the daemon (error.data.code is `code`), or from talking to it
 * (ERR_CONTROL_CONNECT, ERR_CONTROL_CLOSED, ERR_CONTROL_PROTOCOL).
 */
export class ControlError extends LunkitError {
  /** The JSON-RPC error code (-32xxx); 0 when the error did not come from the daemon. */
  readonly rpcCode: number;
  /** JSON path of the configuration field at fault, when the daemon names one. */
  readonly path?: string;
  /** Every problem, when a whole configuration was rejected. */
  readonly problems?: string[];

  constructor(code: LunkitErrorCode, message: string, opts: { rpcCode?: number; path?: string; problems?: string[]; cause?: unknown } = {}) {
    super(code, message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ControlError';
    this.rpcCode = opts.rpcCode ?? 0;
    if (opts.path !== undefined) this.path = opts.path;
    if (opts.problems !== undefined) this.problems = opts.problems;
  }
}

/** A notification other than `progress`: its method and params (an object; {} when absent). */
export type NotificationListener = (method: string, params: Record<string, unknown>) => void;

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (p: ControlProgress) => void;
}

// The daemon refuses request lines above 1 MiB; responses (config.get of a
// big configuration) may be larger, so we cap what we buffer far higher.
const MAX_RESPONSE_LINE = 64 * 1024 * 1024;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Turns a JSON-RPC error object into a ControlError with the stable code of error.data.code. */
export function controlErrorFromRpc(err: unknown): ControlError {
  if (!isRecord(err)) return new ControlError('ERR_CONTROL_PROTOCOL', 'the daemon sent a malformed error object');
  const data = isRecord(err.data) ? err.data : {};
  const rpcCode = typeof err.code === 'number' ? err.code : 0;
  // A code this client does not know (a newer daemon) is ERR_CONTROL_RPC; the message keeps it.
  const code = isLunkitErrorCode(data.code) ? data.code : 'ERR_CONTROL_RPC';
  let message = typeof err.message === 'string' ? err.message : `error ${rpcCode}`;
  if (code === 'ERR_CONTROL_RPC' && typeof data.code === 'string') message += ` (${data.code})`;
  const problems = Array.isArray(data.problems) ? data.problems.map(String) : undefined;
  const path = typeof data.path === 'string' ? data.path : undefined;
  return new ControlError(code, message, { rpcCode, path, problems });
}

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffer = '';
  private closedError: ControlError | undefined;
  private readonly notificationListeners = new Set<NotificationListener>();
  private readonly closeListeners = new Set<(err: ControlError) => void>();

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (e: Error) => this.fail(new ControlError('ERR_CONTROL_CLOSED', `control connection to ${socketPath} failed: ${e.message}`, { cause: e })));
    socket.on('close', () => this.fail(new ControlError('ERR_CONTROL_CLOSED', `the daemon at ${socketPath} closed the connection`)));
  }

  /**
   * Connects to the daemon. A missing socket or no listener gives
   * ERR_CONTROL_CONNECT with a message that says how to start one.
   * `timeoutMs` bounds the connect only: calls may run long (preallocation).
   */
  static connect(socketPath: string = defaultSocketPath(), opts: { timeoutMs?: number } = {}): Promise<ControlClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path: socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ControlError('ERR_CONTROL_CONNECT', `no answer from the lunkit daemon at ${socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const msg =
          e.code === 'EACCES' || e.code === 'EPERM'
            ? `cannot open the control socket ${socketPath}: permission denied (run as the daemon's user or root)`
            : `no lunkit daemon at ${socketPath}: start one with \`lunkit daemon\``;
        reject(new ControlError('ERR_CONTROL_CONNECT', msg, { cause: e }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket, socketPath));
      });
    });
  }

  /** Sends one request and resolves with its result, or rejects with a ControlError. */
  call<T = unknown>(method: string, params: Record<string, unknown> = {}, opts: ControlCallOptions = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, onProgress: opts.onProgress });
      this.socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  /**
   * Calls `fn` for every notification that is not a request's progress (a
   * subscription's stream). Returns a function that removes the listener.
   * A listener that throws does not break the connection or the other
   * listeners; its exception is rethrown on the next turn of the event loop.
   */
  onNotification(fn: NotificationListener): () => void {
    this.notificationListeners.add(fn);
    return () => {
      this.notificationListeners.delete(fn);
    };
  }

  /**
   * Calls `fn` once when the connection ends (daemon gone, protocol error, or
   * close()); at once (next tick) if it already has. Returns a remover.
   */
  onClose(fn: (err: ControlError) => void): () => void {
    if (this.closedError) {
      const err = this.closedError;
      queueMicrotask(() => fn(err));
      return () => {};
    }
    this.closeListeners.add(fn);
    return () => {
      this.closeListeners.delete(fn);
    };
  }

  /** True once the connection has ended. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  close(): void {
    this.fail(new ControlError('ERR_CONTROL_CLOSED', 'the control client was closed'));
    this.socket.end();
    this.socket.destroy();
  }

  private fail(err: ControlError): void {
    const first = !this.closedError;
    if (first) this.closedError = err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
    if (!first) return;
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    this.notificationListeners.clear();
    for (const fn of listeners) fn(this.closedError ?? err);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.trim().length > 0) this.onLine(line);
    }
    if (this.buffer.length > MAX_RESPONSE_LINE) {
      this.fail(new ControlError('ERR_CONTROL_PROTOCOL', `the daemon sent a line longer than ${MAX_RESPONSE_LINE} bytes`));
      this.socket.destroy();
    }
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.fail(new ControlError('ERR_CONTROL_PROTOCOL', 'the daemon sent a line that is not JSON'));
      this.socket.destroy();
      return;
    }
    if (!isRecord(msg)) return;
    if (msg.id === undefined && msg.method === 'progress') {
      const p = isRecord(msg.params) ? msg.params : {};
      const target = typeof p.id === 'number' ? this.pending.get(p.id) : undefined;
      if (target?.onProgress && typeof p.done === 'number' && typeof p.total === 'number') {
        target.onProgress({ what: typeof p.what === 'string' ? p.what : target.method, done: p.done, total: p.total });
      }
      return;
    }
    if (msg.id === undefined && typeof msg.method === 'string') {
      // JSON-RPC 2.0 §4.1: no id, so a notification; params default to {}.
      const params = isRecord(msg.params) ? msg.params : {};
      for (const fn of [...this.notificationListeners]) {
        try {
          fn(msg.method, params);
        } catch (e) {
          // The other listeners and the rest of the stream go on; the bug
          // still surfaces (as an uncaught exception), like an EventEmitter's.
          setImmediate(() => {
            throw e;
          });
        }
      }
      return;
    }
    if (typeof msg.id !== 'number') {
      // An error with id null (e.g. ERR_CONTROL_TOO_LARGE) concerns the whole
      // connection: the daemon closes it next, so every pending call fails with it.
      if (msg.id === null && msg.error !== undefined) this.fail(controlErrorFromRpc(msg.error));
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) p.reject(controlErrorFromRpc(msg.error));
    else p.resolve(msg.result);
  }
}
