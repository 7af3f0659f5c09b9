// The NBD server fabric: TCP and Unix socket listeners, the export table and
// the live connections. Exports name core devices; each connection opens its own nexus
// when it picks an export (export-nexus.ts).

import { nbdLimits, type NbdLimits } from './limits.js';
import { lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { FabricOps, NexusHandle } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import { NBD_DEFAULT_PORT } from '../../protocols/nbd/index.js';
import { NbdConnection, type NbdConnectionInfo, type NbdLimitEvent } from './connection.js';
import type { NbdCore, NbdExportConfig, NbdLogger } from './ports.js';

export type { NbdCore, NbdExportConfig, NbdLogger } from './ports.js';
import { makeTlsSetup, type NbdTlsSetup } from './tls.js';
import { ConnectionAdmission } from '../../util/admission.js';

export interface NbdListenAddress {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface NbdUnixAddress {
  /** Path of a Unix stream socket (nbd+unix:// URIs). */
  path: string;
}

export type NbdListen = NbdListenAddress | NbdUnixAddress;

export interface NbdTlsOptions {
  /** PEM certificate chain and key (node:tls SecureContextOptions). */
  cert: Buffer | string;
  key: Buffer | string;
  /** CA to verify client certificates; absent: none requested. */
  ca?: Buffer | string | undefined;
  /** Refuse every option but STARTTLS/ABORT until TLS is up (nbdkit --tls=require). */
  require: boolean;
}

export interface DeleteExportOptions {
  /**
   * End the connections attached to the export (default true, as LIO and
   * nbdkit users expect): requests in flight are answered, new ones get
   * NBD_ESHUTDOWN, then the socket is closed (cut after graceMs).
   */
  endConnections?: boolean;
  /** Default 5000. */
  graceMs?: number;
}

export interface NbdServerOptions {
  /** STARTTLS support (NBD_OPT_STARTTLS); absent: TLS refused with NBD_REP_ERR_POLICY. */
  tls?: NbdTlsOptions | undefined;
  /** Default: 127.0.0.1:10809. */
  listen?: NbdListen[];
  exports?: Record<string, NbdExportConfig>;
  logger?: NbdLogger;
  /** Budgets (limits.ts); absent fields keep the defaults. */
  limits?: Partial<NbdLimits> | undefined;
}

/** Totals of one server (NbdServer.stats(), the daemon's stats snapshot and `lunkit stats`). */
export interface NbdServerStats {
  /** Live connections, and how many of them are still haggling. */
  connections: number;
  handshaking: number;
  /** Over live connections: requests in flight, payload bytes held, output queued, connections not reading now. */
  inFlight: number;
  inFlightBytes: number;
  queuedBytes: number;
  paused: number;
  /** Since start: connections closed by the handshake and idle timeouts and the option budget. */
  handshakeTimeouts: number;
  idleTimeouts: number;
  tooManyOptions: number;
  /** Since start: times a connection stopped reading (backpressure: queued output; budget: requests or payload bytes held). */
  readPausesBackpressure: number;
  readPausesBudget: number;
  /** Since start: connections destroyed at accept, over limits.maxConnections / maxConnectionsPerAddress. */
  refusedTotal: number;
  refusedPerAddress: number;
}

/** Closes on a limit are logged as one summary line at most this often (not one line per client). */
const LIMIT_LOG_INTERVAL_MS = 60_000;

export class NbdServer {
  private readonly exportTable = new Map<string, NbdExportConfig>();
  private readonly listenOn: NbdListen[];
  private readonly servers: Server[] = [];
  /** Socket files we created, removed again on close. */
  private readonly socketPaths: string[] = [];
  private readonly live = new Set<NbdConnection>();
  private readonly logger: NbdLogger;
  private readonly fabric: FabricOps;
  private readonly tls: NbdTlsSetup | undefined;
  private nextConnectionId = 1;
  /** Connection caps checked at accept (util/admission.ts); refusals logged once per 10 s. */
  private readonly admission: ConnectionAdmission;
  private readonly limitCounts: Record<NbdLimitEvent, number> = { handshakeTimeout: 0, idleTimeout: 0, tooManyOptions: 0, readPauseBackpressure: 0, readPauseBudget: 0 };
  /** Closes on limits since the last summary line, and when that was. */
  private unloggedCloses: Partial<Record<NbdLimitEvent, number>> = {};
  private lastLimitLog = 0;
  /** Budgets on what clients can make the server hold (limits.ts); setLimits() replaces them. */
  limits: NbdLimits;

  constructor(
    private readonly core: NbdCore,
    opts: NbdServerOptions = {},
  ) {
    this.logger = opts.logger ?? {};
    this.limits = nbdLimits(opts.limits);
    this.admission = new ConnectionAdmission({ limits: () => this.limits, fabric: 'NBD', log: this.logger, intervalMs: 10_000 });
    this.listenOn = opts.listen ?? [{ host: '127.0.0.1', port: NBD_DEFAULT_PORT }];
    // Load certificate and key now: a bad PEM fails the start, not the first client.
    this.tls = opts.tls ? makeTlsSetup(opts.tls) : undefined;
    for (const [name, e] of Object.entries(opts.exports ?? {})) this.setExport(name, e);
    this.fabric = {
      name: 'nbd',
      closeNexus: (nexus: NexusHandle, reason: string) => {
        for (const c of this.live) {
          if (c.nexusId === nexus.id) {
            this.logger.info?.('nbd connection closed by the core', { reason });
            c.destroy();
          }
        }
      },
    };
  }

  /** New budgets; connections read them live, so they apply from the next check on. */
  setLimits(partial: Partial<NbdLimits> | undefined): void {
    this.limits = nbdLimits(partial);
    for (const c of this.live) c.limitsChanged();
  }

  stats(): NbdServerStats {
    const out: NbdServerStats = {
      connections: 0,
      handshaking: 0,
      inFlight: 0,
      inFlightBytes: 0,
      queuedBytes: 0,
      paused: 0,
      handshakeTimeouts: this.limitCounts.handshakeTimeout,
      idleTimeouts: this.limitCounts.idleTimeout,
      tooManyOptions: this.limitCounts.tooManyOptions,
      readPausesBackpressure: this.limitCounts.readPauseBackpressure,
      readPausesBudget: this.limitCounts.readPauseBudget,
      refusedTotal: this.admission.refused().total,
      refusedPerAddress: this.admission.refused()['per-address'],
    };
    for (const c of this.live) {
      const i = c.info();
      out.connections++;
      if (i.export === undefined) out.handshaking++;
      out.inFlight += i.inFlight;
      out.inFlightBytes += i.inFlightBytes;
      out.queuedBytes += i.queuedBytes;
      if (i.paused) out.paused++;
    }
    return out;
  }

  /** Counts a limit event; closes are summarised in the log at most once a minute. */
  private readonly limitHit = (what: NbdLimitEvent): void => {
    this.limitCounts[what]++;
    if (what === 'readPauseBackpressure' || what === 'readPauseBudget') return;
    this.unloggedCloses[what] = (this.unloggedCloses[what] ?? 0) + 1;
    const now = Date.now();
    if (now - this.lastLimitLog < LIMIT_LOG_INTERVAL_MS) return;
    this.lastLimitLog = now;
    this.logger.warn?.('nbd connections closed on limits', { ...this.unloggedCloses, sinceSeconds: LIMIT_LOG_INTERVAL_MS / 1000 });
    this.unloggedCloses = {};
  };

  /** Adds or replaces an export; connections already attached keep theirs. */
  setExport(name: string, e: NbdExportConfig): void {
    if (Buffer.byteLength(name) > 4096) throw new LunkitError('ERR_NBD_TOO_LARGE', 'NBD export names are at most 4096 bytes');
    this.exportTable.set(name, e);
  }

  /**
   * Removes an export; new clients no longer see it. By default the
   * connections attached to it are ended too (see DeleteExportOptions);
   * `ended` resolves once they are closed.
   */
  deleteExport(name: string, opts: DeleteExportOptions = {}): boolean {
    const existed = this.exportTable.delete(name);
    if (opts.endConnections ?? true) {
      for (const c of this.live) {
        if (c.export === name) {
          this.logger.info?.('nbd export removed: ending its connection', { export: name, id: c.info().id });
          void c.shutdown(opts.graceMs);
        }
      }
    }
    return existed;
  }

  /** Live connections (plain JSON), oldest first; `export` is undefined while a client haggles. */
  connections(): NbdConnectionInfo[] {
    return [...this.live].map((c) => c.info());
  }

  /** Ends one connection like deleteExport does; false if there is no such id. */
  endConnection(id: number, graceMs?: number): boolean {
    for (const c of this.live) {
      if (c.info().id === id) {
        void c.shutdown(graceMs);
        return true;
      }
    }
    return false;
  }

  exportNames(): string[] {
    return [...this.exportTable.keys()];
  }

  async listen(): Promise<void> {
    for (const a of this.listenOn) {
      const unixPath = 'path' in a ? a.path : undefined;
      if (unixPath !== undefined) await removeStaleSocket(unixPath);
      const server = createServer((socket) => this.accept(socket, unixPath));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        const ready = (): void => {
          server.off('error', reject);
          resolve();
        };
        if (unixPath !== undefined) server.listen(unixPath, ready);
        else if ('port' in a) server.listen(a.port, a.host, ready);
      });
      server.on('error', (e) => this.logger.error?.('nbd listener error', { err: e.message }));
      this.servers.push(server);
      if (unixPath !== undefined) this.socketPaths.push(unixPath);
    }
  }

  /** Paths of the Unix socket listeners. */
  unixPaths(): string[] {
    return [...this.socketPaths];
  }

  addresses(): NbdListenAddress[] {
    const out: NbdListenAddress[] = [];
    for (const s of this.servers) {
      const a = s.address();
      // Unix listeners report a string (the path): unixPaths() lists those.
      if (a && typeof a === 'object') out.push({ host: a.address, port: a.port });
    }
    return out;
  }

  /** Stops listening, lets requests in flight finish (up to graceMs), then closes every connection. */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    this.servers.length = 0;
    const grace = opts.graceMs ?? 5000;
    const conns = [...this.live];
    await Promise.race([Promise.all(conns.map((c) => c.drain())), new Promise((r) => setTimeout(r, grace).unref())]);
    for (const c of conns) c.destroy();
    this.admission.flushLog();
    await Promise.all(closing);
    // node:net unlinks a Unix socket on close; make sure, in case it did not.
    for (const p of this.socketPaths.splice(0)) await unlink(p).catch(() => {});
  }

  private accept(socket: Socket, unixPath: string | undefined): void {
    // Counted before anything is allocated for it (Unix socket clients count
    // as one address); over a cap it is closed now, before any byte is sent.
    const release = this.admission.admit(unixPath !== undefined ? 'unix' : socket.remoteAddress);
    if (!release) {
      socket.destroy();
      return;
    }
    const conn = new NbdConnection(
      socket,
      { core: this.core, fabric: this.fabric, logger: this.logger, exports: () => this.exportTable, tls: this.tls, limits: () => this.limits, limitHit: this.limitHit },
      {
        remoteAddress: unixPath !== undefined ? 'unix' : (socket.remoteAddress ?? 'unknown'),
        remotePort: socket.remotePort ?? 0,
        localAddress: unixPath !== undefined ? `unix:${unixPath}` : (socket.localAddress ?? 'unknown'),
        localPort: socket.localPort ?? 0,
        connectionId: this.nextConnectionId++,
      },
    );
    this.live.add(conn);
    conn.onClose(() => {
      this.live.delete(conn);
      release();
    });
    conn.start();
  }
}

/**
 * A socket file left by a process that died blocks listen() with EADDRINUSE.
 * Remove it only if it is a socket and nothing answers on it; a live server
 * keeps its socket (listen() then fails and says so).
 */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new LunkitError('ERR_NBD_SOCKET_PATH', `${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new LunkitError('ERR_NBD_SOCKET_IN_USE', `another server is listening on ${path}`);
  await unlink(path);
}
