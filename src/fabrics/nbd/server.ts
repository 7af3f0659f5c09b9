// The NBD server fabric: TCP listeners, the export table and the live
// connections. Exports name core devices; each connection opens its own nexus
// when it picks an export (lun-session.ts).

import { createServer, type Server, type Socket } from 'node:net';
import type { FabricOps, NexusHandle, ScsiDeviceHandle } from '../../core/types.js';
import { NBD_DEFAULT_PORT } from '../../protocols/nbd/index.js';
import { NbdConnection } from './connection.js';
import type { NbdCore } from './lun-session.js';

export interface NbdExportConfig {
  device: ScsiDeviceHandle;
  /** Refuse writes on this export even if the LU is writable. */
  readOnly?: boolean;
  /** Shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION. */
  description?: string;
}

export interface NbdLogger {
  debug?(msg: string, fields?: Record<string, unknown>): void;
  info?(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
  error?(msg: string, fields?: Record<string, unknown>): void;
}

export interface NbdListenAddress {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface NbdServerOptions {
  /** Default: 127.0.0.1:10809. */
  listen?: NbdListenAddress[];
  exports?: Record<string, NbdExportConfig>;
  logger?: NbdLogger;
}

export class NbdServer {
  private readonly exportTable = new Map<string, NbdExportConfig>();
  private readonly listenOn: NbdListenAddress[];
  private readonly servers: Server[] = [];
  private readonly connections = new Set<NbdConnection>();
  private readonly logger: NbdLogger;
  private readonly fabric: FabricOps;
  private nextConnectionId = 1;

  constructor(
    private readonly core: NbdCore,
    opts: NbdServerOptions = {},
  ) {
    this.logger = opts.logger ?? {};
    this.listenOn = opts.listen ?? [{ host: '127.0.0.1', port: NBD_DEFAULT_PORT }];
    for (const [name, e] of Object.entries(opts.exports ?? {})) this.setExport(name, e);
    this.fabric = {
      name: 'nbd',
      closeNexus: (nexus: NexusHandle, reason: string) => {
        for (const c of this.connections) {
          if (c.nexusId === nexus.id) {
            this.logger.info?.('nbd connection closed by the core', { reason });
            c.destroy();
          }
        }
      },
    };
  }

  /** Adds or replaces an export; connections already attached keep theirs. */
  setExport(name: string, e: NbdExportConfig): void {
    if (Buffer.byteLength(name) > 4096) throw new Error('NBD export names are at most 4096 bytes');
    this.exportTable.set(name, e);
  }

  deleteExport(name: string): boolean {
    return this.exportTable.delete(name);
  }

  exportNames(): string[] {
    return [...this.exportTable.keys()];
  }

  async listen(): Promise<void> {
    for (const a of this.listenOn) {
      const server = createServer((socket) => this.accept(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(a.port, a.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      server.on('error', (e) => this.logger.error?.('nbd listener error', { err: e.message }));
      this.servers.push(server);
    }
  }

  addresses(): NbdListenAddress[] {
    const out: NbdListenAddress[] = [];
    for (const s of this.servers) {
      const a = s.address();
      if (a && typeof a === 'object') out.push({ host: a.address, port: a.port });
    }
    return out;
  }

  /** Stops listening, lets requests in flight finish (up to graceMs), then closes every connection. */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    this.servers.length = 0;
    const grace = opts.graceMs ?? 5000;
    const conns = [...this.connections];
    await Promise.race([Promise.all(conns.map((c) => c.drain())), new Promise((r) => setTimeout(r, grace).unref())]);
    for (const c of conns) c.destroy();
    await Promise.all(closing);
  }

  private accept(socket: Socket): void {
    const conn = new NbdConnection(
      socket,
      { core: this.core, fabric: this.fabric, logger: this.logger, exports: () => this.exportTable },
      {
        remoteAddress: socket.remoteAddress ?? 'unknown',
        remotePort: socket.remotePort ?? 0,
        localAddress: socket.localAddress ?? 'unknown',
        localPort: socket.localPort ?? 0,
        connectionId: this.nextConnectionId++,
      },
    );
    this.connections.add(conn);
    conn.onClose(() => this.connections.delete(conn));
    conn.start();
  }
}
