// The lab's HTTP server: iPXE scripts by MAC (GET /boot/<mac>.ipxe and the
// chaining /boot/default.ipxe). Scripts are small and computed per request by
// the caller's `script` function (the daemon knows the clients and whether one
// must be reset first). Anything a remote peer can grow is bounded: header
// size, request time, connections; only GET and HEAD are served.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseMac } from './names.js';
import type { Logger } from '../util/log.js';

export type BootRoute = { kind: 'default' } | { kind: 'client'; mac: string } | { kind: 'bad-mac'; given: string } | { kind: 'none' };

/** What a request path asks for (query strings ignored). */
export function routeOf(url: string): BootRoute {
  const path = url.split('?')[0];
  if (path === '/boot/default.ipxe' || path === '/boot.ipxe') return { kind: 'default' };
  const m = /^\/boot\/([^/]{1,64})\.ipxe$/.exec(path);
  if (!m) return { kind: 'none' };
  let given: string;
  try {
    given = decodeURIComponent(m[1]);
  } catch {
    return { kind: 'bad-mac', given: m[1] };
  }
  const mac = parseMac(given);
  return mac ? { kind: 'client', mac } : { kind: 'bad-mac', given };
}

export interface ScriptAnswer {
  status: 200 | 400 | 404 | 500;
  body: string;
}

export interface BootHttpOptions {
  host: string;
  port: number;
  /** The answer to a GET of a script route; `remote` is the client's address. */
  answer: (route: BootRoute, remote: string) => Promise<ScriptAnswer>;
  logger: Logger;
}

export interface BootHttpServer {
  address(): { host: string; port: number };
  stats(): { requests: number; errors: number };
  close(): Promise<void>;
}

const MAX_CONNECTIONS = 512;

export async function startBootHttp(opts: BootHttpOptions): Promise<BootHttpServer> {
  let requests = 0;
  let errors = 0;
  const server: Server = createServer({ maxHeaderSize: 8192, requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    requests++;
    void serve(req, res).catch((e: unknown) => {
      errors++;
      opts.logger.warn('boot lab HTTP request failed', { url: req.url, err: e });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD\n');
      return;
    }
    const route = routeOf(req.url ?? '/');
    if (route.kind === 'none') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: lunkit boot labs serve /boot/<mac>.ipxe and /boot/default.ipxe\n');
      return;
    }
    const a = await opts.answer(route, req.socket.remoteAddress ?? '');
    const body = Buffer.from(a.body);
    res.writeHead(a.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: () => {
      const a = server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    stats: () => ({ requests, errors }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
