// IscsiTargetServer: targets, portals and listeners (RFC 7143 §4.4.1 network
// portals, §4.4.2 portal groups).
//
// A portal is host:port. Several targets may share a portal (one listener);
// a connection on it may log in to any target with an enabled TPG on that
// portal. Port 0 asks for a free port: such a portal gets its own listener
// and addresses()/SendTargets report the port actually bound.

import net from 'node:net';
import type { FabricOps, NexusHandle } from '../../core/types.js';
import type { DiscoveryAuth, IscsiCore, IscsiLogger, IscsiServerOptions, IscsiTargetConfig, PortalConfig, TpgConfig } from './config.js';
import type { ResolvedTarget, ServerContext } from './context.js';
import { IscsiConnection } from './connection.js';
import { SessionRegistry, type IscsiSession, type SessionInfo } from './session.js';
import { initiatorAllowed, sameName } from './acl.js';

interface Listener {
  key: string;
  host: string;
  port: number;
  server: net.Server | undefined;
  bound: { host: string; port: number } | undefined;
}

interface PortalRef {
  target: IscsiTargetConfig;
  tpg: TpgConfig;
  portal: PortalConfig;
  listener: Listener;
}

const SILENT: IscsiLogger = {};

let ephemeralSeq = 0;

export class IscsiTargetServer {
  private readonly targets = new Map<string, IscsiTargetConfig>();
  private readonly listeners = new Map<string, Listener>();
  private readonly portals: PortalRef[] = [];
  private readonly connections = new Set<IscsiConnection>();
  private readonly registry = new SessionRegistry();
  private listening = false;
  private closing = false;
  private readonly log: IscsiLogger;
  private readonly ctx: ServerContext;

  constructor(
    private readonly core: IscsiCore,
    opts: IscsiServerOptions = {},
  ) {
    this.log = opts.logger ?? SILENT;
    const fabric: FabricOps = {
      name: 'iscsi',
      closeNexus: (nexus: NexusHandle, reason: string) => this.closeNexus(nexus, reason),
    };
    const discoveryAuth: DiscoveryAuth | undefined = opts.discoveryAuth;
    this.ctx = {
      core,
      log: this.log,
      sessions: this.registry,
      discoveryAuth,
      fabric,
      resolveTarget: (name, key) => this.resolveTarget(name, key),
      sendTargets: (initiator, which, key) => this.sendTargets(initiator, which, key),
      loginTimeoutFor: (key) => this.loginTimeoutFor(key),
      nopTimingFor: (s) => ({
        interval: s.tpg?.attributes.nopInInterval ?? 0,
        timeout: s.tpg?.attributes.nopInTimeout ?? 30,
      }),
    };
  }

  async addTarget(cfg: IscsiTargetConfig): Promise<void> {
    const key = cfg.iqn.toLowerCase();
    if (this.targets.has(key)) throw new Error(`iSCSI target ${cfg.iqn} already exists`);
    const tags = new Set<number>();
    for (const tpg of cfg.tpgs) {
      if (!Number.isInteger(tpg.tag) || tpg.tag < 1 || tpg.tag > 0xffff) throw new Error(`TPG tag ${tpg.tag} of ${cfg.iqn} is not 1..65535`);
      if (tags.has(tpg.tag)) throw new Error(`TPG tag ${tpg.tag} of ${cfg.iqn} appears twice`);
      tags.add(tpg.tag);
    }
    this.targets.set(key, cfg);
    const fresh: Listener[] = [];
    for (const tpg of cfg.tpgs) {
      for (const portal of tpg.portals) {
        const l = this.listenerFor(portal);
        if (!l.server && !fresh.includes(l)) fresh.push(l);
        this.portals.push({ target: cfg, tpg, portal, listener: l });
      }
    }
    if (this.listening) await Promise.all(fresh.map((l) => this.startListener(l)));
  }

  async removeTarget(iqn: string): Promise<void> {
    const key = iqn.toLowerCase();
    const cfg = this.targets.get(key);
    if (!cfg) return;
    this.targets.delete(key);
    for (let i = this.portals.length - 1; i >= 0; i--) if (this.portals[i].target === cfg) this.portals.splice(i, 1);
    for (const s of this.registry.all()) if (sameName(s.targetName, iqn)) s.close('target removed');
    // Close listeners no portal uses any more.
    const used = new Set(this.portals.map((p) => p.listener));
    await Promise.all(
      [...this.listeners.values()].filter((l) => !used.has(l)).map(async (l) => {
        this.listeners.delete(l.key);
        await closeServer(l.server);
      }),
    );
  }

  async listen(): Promise<void> {
    this.listening = true;
    await Promise.all([...this.listeners.values()].filter((l) => !l.server).map((l) => this.startListener(l)));
  }

  addresses(): { host: string; port: number }[] {
    return [...this.listeners.values()].filter((l) => l.bound).map((l) => ({ ...l.bound! }));
  }

  sessions(): SessionInfo[] {
    return this.registry.all().map((s) => s.info());
  }

  /** Log sessions out (drop their connections), close listeners. */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const servers = [...this.listeners.values()].map((l) => l.server);
    const closed = Promise.all(servers.map((s) => closeServer(s)));
    const grace = opts.graceMs ?? 0;
    if (grace > 0) {
      // Ask every initiator to log out (Async Message) and give commands in
      // flight and the logouts a chance to finish before dropping the rest.
      for (const c of this.connections) c.fullFeature?.requestLogout(grace / 1000);
      const deadline = Date.now() + grace;
      while (Date.now() < deadline && this.registry.all().length > 0) {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    for (const s of this.registry.all()) s.close('server closing');
    for (const c of [...this.connections]) c.destroy('server closing');
    await closed;
    this.listening = false;
  }

  // -------------------------------------------------------------------------

  private listenerFor(portal: PortalConfig): Listener {
    const key = portal.port === 0 ? `${portal.host}:0#${++ephemeralSeq}` : `${portal.host}:${portal.port}`;
    let l = this.listeners.get(key);
    if (!l) {
      l = { key, host: portal.host, port: portal.port, server: undefined, bound: undefined };
      this.listeners.set(key, l);
    }
    return l;
  }

  private startListener(l: Listener): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const server = net.createServer((socket) => this.accept(socket, l));
      server.on('error', (err) => {
        if (!l.bound) reject(err);
        else this.log.error?.('iSCSI listener error', { portal: l.key, err: err.message });
      });
      server.listen({ host: l.host, port: l.port }, () => {
        const a = server.address();
        l.bound = typeof a === 'object' && a ? { host: l.host, port: a.port } : { host: l.host, port: l.port };
        resolve();
      });
      l.server = server;
    });
  }

  private accept(socket: net.Socket, l: Listener): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    try {
      const conn = new IscsiConnection(socket, this.ctx, l.key);
      this.connections.add(conn);
      conn.onClose(() => this.connections.delete(conn));
    } catch (err) {
      this.log.error?.('iSCSI accept failed', { err: err instanceof Error ? err.message : String(err) });
      socket.destroy();
    }
  }

  private resolveTarget(name: string, portalKey: string): ResolvedTarget | 'not-found' {
    const target = this.targets.get(name.toLowerCase());
    if (!target) return 'not-found';
    const ref = this.portals.find((p) => p.target === target && p.tpg.enabled && p.listener.key === portalKey);
    return ref ? { target, tpg: ref.tpg } : 'not-found';
  }

  private loginTimeoutFor(portalKey: string): number {
    let t = 0;
    for (const p of this.portals) if (p.listener.key === portalKey) t = Math.max(t, p.tpg.attributes.loginTimeout);
    return t > 0 ? t : 15;
  }

  /** SendTargets answer (RFC 7143 Appendix C): TargetName then its TargetAddress pairs. */
  private sendTargets(initiator: string, which: string, _portalKey: string): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const target of this.targets.values()) {
      if (which !== 'All' && !sameName(which, target.iqn)) continue;
      const tpgs = target.tpgs.filter((t) => t.enabled && initiatorAllowed(t, initiator));
      if (tpgs.length === 0) continue;
      out.push(['TargetName', target.iqn]);
      for (const tpg of tpgs) {
        for (const ref of this.portals) {
          if (ref.target !== target || ref.tpg !== tpg) continue;
          const port = ref.listener.bound?.port ?? ref.portal.port;
          out.push(['TargetAddress', `${formatHost(ref.portal.host)}:${port},${tpg.tag}`]);
        }
      }
    }
    return out;
  }

  private closeNexus(nexus: NexusHandle, reason: string): void {
    for (const s of this.registry.all()) if (s.nexus === nexus) s.close(reason);
  }

  /** For tests and the daemon: live sessions. */
  sessionObjects(): IscsiSession[] {
    return this.registry.all();
  }
}

/** IPv6 literals go in brackets in TargetAddress (RFC 7143 §13.8). */
function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function closeServer(server: net.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}
