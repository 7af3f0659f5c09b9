// The boot-lab side of LunkitRuntime.apply(): per lab an HTTP server for the
// iPXE scripts, a TFTP server for the iPXE binaries, and (if asked) a proxy
// DHCP responder, all on the lab's address. The iSCSI objects of a lab are
// ordinary derived objects (bootlab-config.ts); this file runs the services
// that are not iSCSI. Scripts are computed per request from the committed
// configuration, so a client added or reset is served at once.

import { startBootHttp, type BootHttpServer, type BootRoute, type ScriptAnswer } from '../bootlab/http-server.js';
import { startProxyDhcp, type ProxyDhcpServer } from '../bootlab/proxy-dhcp.js';
import type { BootlabConfig } from '../bootlab/schema.js';
import { defaultScript, labClientScript, unknownClientScript } from '../bootlab/script.js';
import { startTftpServer, type TftpServer } from '../bootlab/tftp-server.js';
import type { Logger } from '../util/log.js';
import type { LunkitConfig } from './config-schema.js';

type Undo = () => Promise<void> | void;

export interface BootlabHooks {
  /** Runs before a registered client's script is answered (the daemon's reset-on-boot). */
  beforeScript?(lab: string, mac: string): Promise<void>;
}

interface RunningLab {
  /** What the services were started with; a change restarts them. */
  key: string;
  http: BootHttpServer;
  tftp: TftpServer;
  dhcp: ProxyDhcpServer | undefined;
}

export interface LabServiceStats {
  http: { host: string; port: number; requests: number; errors: number };
  tftp: { host: string; port: number; transfers: number; active: number; bytesSent: number; errors: number };
  proxyDhcp?: { interface: string } & Record<string, unknown>;
}

function serviceKey(l: BootlabConfig): string {
  return JSON.stringify([l.listen, l.ports.http, l.ports.tftp, l.proxyDhcp ?? null, l.tftpRoot]);
}

/** The file a PXE client gets: iPXE itself by TFTP, or (iPXE already) its script by HTTP. */
export function bootFileFor(l: BootlabConfig, client: { arch: number | undefined; isIpxe: boolean }): { filename: string; nextServer: string } {
  if (client.isIpxe) return { filename: `http://${l.listen}:${l.ports.http}/boot/default.ipxe`, nextServer: l.listen };
  // RFC 4578 option 93: 0 is BIOS PXE; 6, 7 and 9 are UEFI (IA32, BC, x86-64).
  const efi = client.arch !== undefined && client.arch !== 0;
  return { filename: efi ? 'ipxe.efi' : 'undionly.kpxe', nextServer: l.listen };
}

export class BootlabServices {
  private readonly labs = new Map<string, RunningLab>();
  /** `${lab} ${mac}` -> the last script answered to that client. */
  private readonly boots = new Map<string, { time: string; address: string }>();
  hooks: BootlabHooks = {};

  constructor(
    private readonly logger: Logger,
    /** The committed configuration (scripts follow it). */
    private readonly config: () => LunkitConfig,
  ) {}

  lastBoot(lab: string, mac: string): { time: string; address: string } | undefined {
    return this.boots.get(`${lab} ${mac}`);
  }

  stats(lab: string): LabServiceStats | undefined {
    const r = this.labs.get(lab);
    if (!r) return undefined;
    const l = this.config().bootlabs?.[lab];
    return {
      http: { ...r.http.address(), ...r.http.stats() },
      tftp: { host: r.tftp.address().address, port: r.tftp.address().port, ...r.tftp.stats() },
      ...(r.dhcp && l?.proxyDhcp ? { proxyDhcp: { interface: l.proxyDhcp, ...r.dhcp.stats() } } : {}),
    };
  }

  async apply(prev: LunkitConfig, next: LunkitConfig, undo: Undo[], setStep: (s: string) => void): Promise<void> {
    const before = prev.bootlabs ?? {};
    const after = next.bootlabs ?? {};
    for (const [lab, l] of Object.entries(before)) {
      const n = after[lab] as BootlabConfig | undefined;
      if (n && serviceKey(n) === serviceKey(l) && this.labs.has(lab)) continue;
      setStep(`stopping boot lab ${lab} services`);
      await this.stopLab(lab);
      undo.push(() => this.startLab(lab, l));
    }
    for (const [lab, l] of Object.entries(after)) {
      if (this.labs.has(lab)) continue;
      setStep(`starting boot lab ${lab} services`);
      await this.startLab(lab, l);
      undo.push(() => this.stopLab(lab));
    }
  }

  async closeAll(): Promise<void> {
    for (const lab of [...this.labs.keys()]) await this.stopLab(lab).catch((e: unknown) => this.logger.warn('boot lab stop failed', { lab, err: e }));
  }

  private async startLab(lab: string, l: BootlabConfig): Promise<void> {
    const started: Array<{ close(): Promise<void> }> = [];
    try {
      const http = await startBootHttp({ host: l.listen, port: l.ports.http, logger: this.logger, answer: (route, remote) => this.answer(lab, route, remote) });
      started.push(http);
      const tftp = await startTftpServer({ root: l.tftpRoot, host: l.listen, port: l.ports.tftp, logger: this.logger });
      started.push(tftp);
      let dhcp: ProxyDhcpServer | undefined;
      if (l.proxyDhcp !== undefined) {
        dhcp = await startProxyDhcp({
          interface: l.proxyDhcp,
          serverAddress: l.listen,
          logger: this.logger,
          // The lab as committed when the request comes, not as started.
          bootFile: (c) => {
            const cur = this.config().bootlabs?.[lab];
            return cur ? bootFileFor(cur, c) : undefined;
          },
        });
        started.push(dhcp);
      }
      this.labs.set(lab, { key: serviceKey(l), http, tftp, dhcp });
      this.logger.info('boot lab services started', { lab, http: `${l.listen}:${http.address().port}`, tftp: `${l.listen}:${tftp.address().port}`, proxyDhcp: l.proxyDhcp ?? 'off' });
    } catch (e) {
      for (const s of started.reverse()) await s.close().catch(() => {});
      throw e;
    }
  }

  private async stopLab(lab: string): Promise<void> {
    const r = this.labs.get(lab);
    if (!r) return;
    this.labs.delete(lab);
    await r.dhcp?.close();
    await r.tftp.close();
    await r.http.close();
    this.logger.info('boot lab services stopped', { lab });
  }

  private async answer(lab: string, route: BootRoute, remote: string): Promise<ScriptAnswer> {
    let l = this.config().bootlabs?.[lab];
    if (!l) return { status: 404, body: `no boot lab ${lab}\n` };
    const base = `http://${l.listen}:${l.ports.http}`;
    if (route.kind === 'default') return { status: 200, body: defaultScript(base) };
    if (route.kind === 'bad-mac') return { status: 400, body: `"${route.given}" is not a MAC address\n` };
    if (route.kind !== 'client') return { status: 404, body: 'not found\n' };
    if (!(route.mac in l.clients)) {
      this.logger.info('boot lab: unregistered machine asked for its script', { lab, mac: route.mac, address: remote });
      return { status: 200, body: unknownClientScript(lab, route.mac, base) };
    }
    if (this.hooks.beforeScript) {
      await this.hooks.beforeScript(lab, route.mac);
      l = this.config().bootlabs?.[lab];
      if (!l || !(route.mac in l.clients)) return { status: 404, body: `client ${route.mac} is gone from boot lab ${lab}\n` };
    }
    const c = l.clients[route.mac];
    this.boots.set(`${lab} ${route.mac}`, { time: new Date().toISOString(), address: remote });
    this.logger.info('boot lab: script served', { lab, client: c.name, mac: route.mac, address: remote });
    return { status: 200, body: labClientScript(lab, l, route.mac) };
  }
}
