// The control socket (docs/control-protocol.md): a Unix stream socket, mode
// 0600, speaking newline-delimited JSON-RPC 2.0. This file is the transport:
// framing with a 1 MiB line cap, request checking, error objects with stable
// codes, progress notifications. What a method does is the handler's business
// (daemon.ts).
//
// A broken request never breaks the connection (malformed JSON gets
// ERR_CONTROL_PARSE and the next line is read); only an over-long line ends it,
// because the stream cannot be resynchronised cheaply. A client that goes away
// mid-request loses its answer and nothing else: the handler runs to its end.

import { chmod, lstat, mkdir, stat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { LunkitError } from '../protocols/errors.js';
import { ControlError, RPC_CODES, type ControlErrorCode } from './errors.js';
import type { Progress } from './runtime-objects.js';
import { silentLogger, type Logger } from '../util/log.js';

/** Longest request line, newline excluded. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Control clients at once (the dashboard, scripts, `lunkit top` each hold one). */
export const MAX_CLIENTS = 64;
/** Requests one client may have unanswered; further lines wait unread. */
export const MAX_IN_FLIGHT = 16;
/** Unread answer bytes above which the client's further requests wait. */
export const OUTPUT_HIGH_WATER = 4 * 1024 * 1024;

export type RequestId = string | number | null;

/** The client connection a request came on (for subscriptions). */
export interface ControlConnection {
  /**
   * Sends a notification; false (and nothing sent) while the previous output
   * has not been written out, so a slow client never makes output pile up.
   */
  notify(method: string, params: Record<string, unknown>): boolean;
  /** Runs fn once when the connection closes (at once if it already has). */
  onClose(fn: () => void): void;
}

export interface RequestContext {
  id: RequestId;
  /** Sends a progress notification for this request (nothing for a notification without id). */
  progress(p: Progress): void;
  connection: ControlConnection;
}

export type ControlHandler = (method: string, params: Record<string, unknown>, ctx: RequestContext) => Promise<unknown>;

export interface ControlServerOptions {
  path: string;
  handler: ControlHandler;
  logger?: Logger;
}

interface RpcError {
  code: number;
  message: string;
  data: { code: ControlErrorCode; path?: string; problems?: string[] };
}

export function toRpcError(err: unknown): RpcError {
  if (err instanceof ControlError) {
    const data: RpcError['data'] = { code: err.code };
    if (err.path !== undefined) data.path = err.path;
    if (err.problems !== undefined) data.problems = err.problems;
    return { code: RPC_CODES[err.code], message: err.message, data };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: RPC_CODES.ERR_INTERNAL, message: `internal error: ${message}`, data: { code: 'ERR_INTERNAL' } };
}

/**
 * Makes the socket's directory (0700 when we create it) and clears a stale
 * socket file; refuses when a live server answers on it.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  const dir = dirname(path);
  const dirExists = await stat(dir).then(
    () => true,
    () => false,
  );
  if (!dirExists) await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new LunkitError('ERR_CONTROL_SOCKET_PATH', `${path} exists and is not a socket; remove it or pick another --socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new LunkitError('ERR_CONTROL_SOCKET_IN_USE', `another lunkit daemon is listening on ${path} (stop it or pick another --socket)`);
  await unlink(path);
}

export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly logger: Logger;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handler: ControlHandler,
    logger: Logger | undefined,
  ) {
    this.logger = logger ?? silentLogger;
    this.server = createServer((s) => this.accept(s));
  }

  static async listen(opts: ControlServerOptions): Promise<ControlServer> {
    await prepareSocketPath(opts.path);
    const cs = new ControlServer(opts.path, opts.handler, opts.logger);
    await new Promise<void>((resolve, reject) => {
      cs.server.once('error', reject);
      // The socket file is created by bind() inside listen(): a umask of 0177
      // makes it 0600 from its first moment (process.umask is refused in a
      // worker thread; the chmod below covers that case).
      let oldMask: number | undefined;
      try {
        oldMask = process.umask(0o177);
      } catch {
        oldMask = undefined;
      }
      try {
        cs.server.listen(opts.path, () => {
          cs.server.off('error', reject);
          resolve();
        });
      } finally {
        if (oldMask !== undefined) process.umask(oldMask);
      }
    });
    await chmod(opts.path, 0o600);
    cs.server.on('error', (e) => cs.logger.error('control socket error', { err: e }));
    return cs;
  }

  /** Stops listening, drops every client, removes the socket file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await done;
    await unlink(this.path).catch(() => {});
  }

  private accept(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.sockets.size >= MAX_CLIENTS) {
      // Refused with a reason, not silently: a script looping on the socket sees why.
      socket.end(`${JSON.stringify({ jsonrpc: '2.0', id: null, error: toRpcError(new ControlError('ERR_CONTROL_BUSY', `the daemon serves at most ${MAX_CLIENTS} control clients at once`)) })}\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.sockets.add(socket);
    // Bytes read but not yet parsed, held while the client has too much
    // unanswered (see pump()); at most one socket chunk beyond the line cap.
    const backlog: Buffer[] = [];
    let pending: Buffer[] = [];
    let pendingLen = 0;
    let dead = false;
    let inFlight = 0;
    const overBudget = (): boolean => inFlight >= MAX_IN_FLIGHT || socket.writableLength > OUTPUT_HIGH_WATER;
    const send = (msg: unknown): void => {
      if (dead || socket.destroyed || !socket.writable) return;
      socket.write(`${JSON.stringify(msg)}\n`);
    };
    const closers: Array<() => void> = [];
    const connection: ControlConnection = {
      notify: (method, params) => {
        if (dead || socket.destroyed || socket.writableLength > 0) return false;
        send({ jsonrpc: '2.0', method, params });
        return true;
      },
      onClose: (fn) => {
        if (dead && socket.destroyed) fn();
        else closers.push(fn);
      },
    };
    const tooLarge = (): void => {
      send({ jsonrpc: '2.0', id: null, error: toRpcError(new ControlError('ERR_CONTROL_TOO_LARGE', `request line longer than ${MAX_LINE_BYTES} bytes`)) });
      dead = true;
      pending = [];
      backlog.length = 0;
      socket.end();
      // A client that keeps sending is not waited for.
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const started = (): void => {
      inFlight++;
    };
    const finished = (): void => {
      inFlight--;
      pump();
    };
    // Parses lines while the client's unanswered requests and unread answers
    // stay under budget; over it, stops reading until answers drain: a client
    // that pipelines requests and never reads cannot make the daemon hold more.
    const pump = (): void => {
      while (!dead && backlog.length > 0) {
        if (overBudget()) {
          socket.pause();
          return;
        }
        const chunk = backlog[0];
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) {
          backlog.shift();
          if (pendingLen + chunk.length > MAX_LINE_BYTES) return tooLarge();
          // Copy: the chunk's memory is not ours to keep.
          pending.push(Buffer.from(chunk));
          pendingLen += chunk.length;
          continue;
        }
        const piece = chunk.subarray(0, nl);
        backlog[0] = chunk.subarray(nl + 1);
        if (backlog[0].length === 0) backlog.shift();
        if (pendingLen + piece.length > MAX_LINE_BYTES) return tooLarge();
        const line = pending.length ? Buffer.concat([...pending, piece]) : piece;
        pending = [];
        pendingLen = 0;
        this.onLine(line, send, connection, started, finished);
      }
      if (!dead && !overBudget() && socket.isPaused()) socket.resume();
    };
    socket.on('data', (chunk: Buffer) => {
      if (dead) return;
      backlog.push(chunk);
      pump();
    });
    socket.on('drain', pump);
    socket.on('error', () => {}); // a client that vanished; its answers are dropped
    socket.on('close', () => {
      dead = true;
      backlog.length = 0;
      this.sockets.delete(socket);
      for (const fn of closers.splice(0)) fn();
    });
  }

  private onLine(raw: Buffer, send: (msg: unknown) => void, connection: ControlConnection, started: () => void, finished: () => void): void {
    const text = raw.toString('utf8').trim();
    if (text === '') return;
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      send({ jsonrpc: '2.0', id: null, error: toRpcError(new ControlError('ERR_CONTROL_PARSE', `the request is not JSON: ${(e as Error).message}`)) });
      return;
    }
    const bad = (id: RequestId, why: string): void =>
      send({ jsonrpc: '2.0', id, error: toRpcError(new ControlError('ERR_CONTROL_REQUEST', why)) });
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      bad(null, Array.isArray(msg) ? 'batch requests are not supported: send one request per line' : 'a request is a JSON object');
      return;
    }
    const req = msg as Record<string, unknown>;
    const hasId = 'id' in req;
    const id = req.id;
    if (hasId && id !== null && typeof id !== 'string' && typeof id !== 'number') {
      bad(null, 'id must be a string, a number or null');
      return;
    }
    const rid = (hasId ? id : null) as RequestId;
    if (req.jsonrpc !== '2.0') return bad(rid, 'jsonrpc must be "2.0"');
    if (typeof req.method !== 'string' || req.method === '') return bad(rid, 'method must be a non-empty string');
    if (req.params !== undefined && (typeof req.params !== 'object' || req.params === null || Array.isArray(req.params))) {
      send({ jsonrpc: '2.0', id: rid, error: toRpcError(new ControlError('ERR_INVALID_PARAMS', 'params must be an object of named parameters')) });
      return;
    }
    const method = req.method;
    const params = (req.params ?? {}) as Record<string, unknown>;
    // JSON-RPC 2.0 §4.1: a request without id is a notification and gets no answer.
    const reply = hasId ? send : (): void => {};
    const ctx: RequestContext = {
      id: rid,
      connection,
      progress: (p) => {
        if (hasId) send({ jsonrpc: '2.0', method: 'progress', params: { id: rid, what: p.what, done: p.done, total: p.total } });
      },
    };
    started();
    this.handler(method, params, ctx)
      .then(
        (result) => reply({ jsonrpc: '2.0', id: rid, result: result ?? {} }),
        (err: unknown) => {
          if (!(err instanceof ControlError)) this.logger.error('control request failed', { method, err });
          reply({ jsonrpc: '2.0', id: rid, error: toRpcError(err) });
        },
      )
      .finally(finished);
  }
}
