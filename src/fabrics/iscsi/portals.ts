// Network portals and their listeners (RFC 7143 §4.4.1 network portals,
// §4.4.2 portal groups).
//
// A portal is host:port inside one TPG. Several TPGs (of one or several
// targets) may share a host:port: they share one listener, and a connection
// on it may log in to any target with an enabled TPG on that portal. Port 0
// asks for a free port: such a portal gets its own listener, and once bound it
// is also found under the port it got, so a configuration that later names
// that port keeps the same listener.
//
// Changes are planned first and committed after: plan() works out which
// listeners a target's new portal list needs, bind() opens the new ones all
// or nothing, commit() swaps the portal table, release() closes listeners no
// portal uses any more. Closing a listener stops new connections only;
// sessions that came in through it stay.

import net from 'node:net';
import { LunkitError, isLunkitErrorCode } from '../../protocols/errors.js';
import type { IscsiLogger, PortalConfig, TpgConfig } from './config.js';

export interface Listener {
  /** "host:port", or "host:0#n" for a portal that asked for a free port. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  server: net.Server | undefined;
  bound: { host: string; port: number } | undefined;
}

export interface PortalRef {
  /** Lower-case IQN of the target. */
  targetKey: string;
  tag: number;
  portal: PortalConfig;
  listener: Listener;
}

export interface PortalPlan {
  targetKey: string;
  refs: PortalRef[];
  /** Listeners the plan needs that do not exist yet (not bound, not registered). */
  fresh: Listener[];
}

let ephemeralSeq = 0;

export class PortalTable {
  private readonly listeners = new Map<string, Listener>();
  private refs: PortalRef[] = [];
  listening = false;

  constructor(
    private readonly onConnection: (socket: net.Socket, listener: Listener) => void,
    private readonly log: IscsiLogger,
  ) {}

  all(): readonly PortalRef[] {
    return this.refs;
  }

  of(targetKey: string): PortalRef[] {
    return this.refs.filter((r) => r.targetKey === targetKey);
  }

  addresses(): { host: string; port: number }[] {
    return [...this.listeners.values()].filter((l) => l.bound).map((l) => ({ ...l.bound! }));
  }

  /**
   * The portal refs of a target's new TPG list. A portal already served for
   * the same TPG keeps its listener (a port-0 portal matches a port-0 portal,
   * or the port its listener got); other portals reuse a listener on the same
   * host:port or get a fresh one.
   */
  plan(targetKey: string, tpgs: readonly TpgConfig[]): PortalPlan {
    const old = this.of(targetKey);
    const claimed = new Set<PortalRef>();
    const fresh: Listener[] = [];
    const refs: PortalRef[] = [];
    for (const tpg of tpgs) {
      for (const portal of tpg.portals) {
        const same = old.find((r) => !claimed.has(r) && r.tag === tpg.tag && samePortal(r, portal));
        let listener: Listener;
        if (same) {
          claimed.add(same);
          listener = same.listener;
        } else {
          listener = this.findListener(portal, fresh) ?? newListener(portal);
          if (!this.listeners.has(listener.key) && !fresh.includes(listener)) fresh.push(listener);
        }
        refs.push({ targetKey, tag: tpg.tag, portal: { host: portal.host, port: portal.port }, listener });
      }
    }
    return { targetKey, refs, fresh };
  }

  /**
   * Open the plan's new listeners when the server is listening. All or
   * nothing: if one cannot bind, the ones just opened are closed and a
   * LunkitError with the bind error's code (EADDRINUSE, EACCES...) names the
   * portal.
   */
  async bind(plan: PortalPlan): Promise<void> {
    if (!this.listening || plan.fresh.length === 0) return;
    await this.startAll(plan.fresh);
  }

  /** Close the listeners bind() opened for a plan that will not be committed. */
  unbind(plan: PortalPlan): void {
    for (const l of plan.fresh) {
      // Not committed, so nothing was accepted for a session on it yet.
      l.server?.close();
      l.server = undefined;
      l.bound = undefined;
    }
  }

  /** Make the plan the target's portal list (its fresh listeners are registered). */
  commit(plan: PortalPlan): void {
    for (const l of plan.fresh) this.listeners.set(l.key, l);
    this.refs = this.refs.filter((r) => r.targetKey !== plan.targetKey).concat(plan.refs);
  }

  /** Forget every portal of a target. */
  drop(targetKey: string): void {
    this.refs = this.refs.filter((r) => r.targetKey !== targetKey);
  }

  /** Close listeners no portal uses any more; their connections stay. */
  release(): void {
    const used = new Set(this.refs.map((r) => r.listener));
    for (const l of [...this.listeners.values()]) {
      if (used.has(l)) continue;
      this.listeners.delete(l.key);
      // close() stops accepting at once; its callback would wait for every
      // connection accepted on it, which may live on.
      l.server?.close();
      l.server = undefined;
      this.log.info?.('iSCSI portal closed', { portal: l.bound ? `${l.bound.host}:${l.bound.port}` : l.key });
    }
  }

  /** Start every listener not started yet (all or nothing, like bind()). */
  async listen(): Promise<void> {
    this.listening = true;
    await this.startAll([...this.listeners.values()].filter((l) => !l.server));
  }

  /** Close every listener; resolves when their connections are gone too. */
  async close(): Promise<void> {
    const servers = [...this.listeners.values()].map((l) => l.server);
    this.listening = false;
    await Promise.all(servers.map((s) => closeServer(s)));
  }

  // -------------------------------------------------------------------------

  private findListener(portal: PortalConfig, pending: Listener[]): Listener | undefined {
    if (portal.port === 0) return undefined;
    const key = `${portal.host}:${portal.port}`;
    const hit = this.listeners.get(key) ?? pending.find((l) => l.key === key);
    if (hit) return hit;
    // A port-0 listener that got this very port.
    for (const l of this.listeners.values()) if (l.host === portal.host && l.bound?.port === portal.port) return l;
    return undefined;
  }

  private async startAll(ls: Listener[]): Promise<void> {
    const results = await Promise.allSettled(ls.map((l) => this.start(l)));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed < 0) return;
    ls.forEach((l, i) => {
      if (results[i].status === 'fulfilled') {
        l.server?.close();
        l.server = undefined;
        l.bound = undefined;
      }
    });
    const l = ls[failed];
    const err = (results[failed] as PromiseRejectedResult).reason as NodeJS.ErrnoException;
    const code = isLunkitErrorCode(err?.code) ? err.code : 'ERR_LISTEN';
    const msg = err instanceof Error ? err.message : String(err);
    throw new LunkitError(code, `cannot listen on iSCSI portal ${formatPortal(l.host, l.port)}: ${msg}`, { cause: err });
  }

  private start(l: Listener): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const server = net.createServer((socket) => this.onConnection(socket, l));
      let up = false;
      server.on('error', (err) => {
        if (!up) {
          l.server = undefined;
          reject(err);
        } else this.log.error?.('iSCSI listener error', { portal: l.key, err: err.message });
      });
      server.listen({ host: l.host, port: l.port }, () => {
        up = true;
        const a = server.address();
        l.bound = typeof a === 'object' && a ? { host: l.host, port: a.port } : { host: l.host, port: l.port };
        resolve();
      });
      l.server = server;
    });
  }
}

function samePortal(r: PortalRef, p: PortalConfig): boolean {
  if (r.portal.host !== p.host) return false;
  if (r.portal.port === p.port) return true;
  return p.port !== 0 && r.portal.port === 0 && r.listener.bound?.port === p.port;
}

function newListener(portal: PortalConfig): Listener {
  const key = portal.port === 0 ? `${portal.host}:0#${++ephemeralSeq}` : `${portal.host}:${portal.port}`;
  return { key, host: portal.host, port: portal.port, server: undefined, bound: undefined };
}

/** host:port with IPv6 literals in brackets (RFC 7143 §13.8). */
export function formatPortal(host: string, port: number): string {
  return `${formatHost(host)}:${port}`;
}

export function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function closeServer(server: net.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}
