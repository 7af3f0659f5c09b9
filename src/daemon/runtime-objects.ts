// Turning configuration entries into running objects: a backstore opened as
// a core device (with a preallocation that reports progress), an iSCSI target
// config with the device handles of its LUNs, discovery authentication, an
// NBD server. runtime.ts decides when; this file knows how.

import { readFile } from 'node:fs/promises';
import type { BackstoreOps, ScsiDeviceHandle } from '../core/types.js';
import type { ScsiCore } from '../core/engine.js';
import { commonConfig, descriptorOf, openBackstore } from '../backstores/registry.js';
import type { AclConfig, DiscoveryAuth, IscsiTargetConfig, TpgConfig } from '../fabrics/iscsi/config.js';
import { NbdServer } from '../fabrics/nbd/server.js';
import { LunkitError } from '../protocols/errors.js';
import type { BackstoreConfig, LunkitConfig, NbdConfigData } from './config-schema.js';
import type { Logger } from '../util/log.js';
import type { NbdLimits } from '../fabrics/nbd/limits.js';

export interface OpenBackstore {
  ops: BackstoreOps;
  device: ScsiDeviceHandle;
  spec: BackstoreConfig;
}

export type { Progress, ProgressFn } from '../backstores/descriptor.js';

/** Opens the backstore through its type's descriptor (no core device yet). */
export async function openBackstoreOps(name: string, bs: BackstoreConfig): Promise<BackstoreOps> {
  return openBackstore(name, bs);
}

export function createDevice(core: ScsiCore, name: string, ops: BackstoreOps, bs: BackstoreConfig): ScsiDeviceHandle {
  const c = commonConfig(bs);
  return core.createDevice(ops, {
    name,
    serial: c.serial,
    writeCache: c.writeCache ?? true,
    // A medium that cannot be written (a remote write-protected LUN, a read-only export) is a write-protected LU.
    readOnly: (c.readOnly ?? false) || !ops.caps.canWrite,
    removable: c.removable ?? false,
    thin: (c.thin ?? true) && ops.caps.thin,
  });
}

/** The fields the backstore implementation is opened with (its type's reopenOn): a change needs a new open. */
function openIdentity(bs: BackstoreConfig): unknown {
  const fields = bs as unknown as Record<string, unknown>;
  return [bs.type, ...descriptorOf(bs).reopenOn.map((k) => fields[k])];
}

/**
 * The fields the core device is created with (INQUIRY/VPD/mode data), and
 * its filter stack: a new stack means a new device over the same open
 * backstore (restackFilters), so changing filters loses no data.
 */
function deviceIdentity(bs: BackstoreConfig): unknown {
  const c = commonConfig(bs);
  return [c.serial, c.readOnly ?? false, c.removable ?? false, c.writeCache, c.thin, c.filters ?? []];
}

/** The filter stack changed between two configs of one backstore. */
export function filtersChanged(prev: BackstoreConfig, next: BackstoreConfig): boolean {
  return JSON.stringify(commonConfig(prev).filters ?? []) !== JSON.stringify(commonConfig(next).filters ?? []);
}

export type BackstoreChange = 'none' | 'resize' | 'device' | 'reopen';

/** What applying `next` over `prev` takes for one backstore (resize may come with 'device'). */
export function backstoreChange(prev: BackstoreConfig, next: BackstoreConfig): { change: BackstoreChange; resize: boolean } {
  if (JSON.stringify(openIdentity(prev)) !== JSON.stringify(openIdentity(next))) return { change: 'reopen', resize: false };
  const size = { prev: commonConfig(prev).size, next: commonConfig(next).size };
  const resize = descriptorOf(next).fixedSize === undefined && size.prev !== size.next && size.next !== undefined;
  if (JSON.stringify(deviceIdentity(prev)) !== JSON.stringify(deviceIdentity(next))) return { change: 'device', resize };
  return { change: resize ? 'resize' : 'none', resize };
}

type TargetData = LunkitConfig['iscsi']['targets'][string];

export function toTargetConfig(iqn: string, t: TargetData, backstores: ReadonlyMap<string, { device: ScsiDeviceHandle }>): IscsiTargetConfig {
  const tpgs: TpgConfig[] = Object.entries(t.tpgs).map(([tag, tpg]) => ({
    tag: Number(tag),
    enabled: tpg.enabled,
    portals: tpg.portals.map((p) => ({ host: p.host, port: p.port })),
    luns: Object.entries(tpg.luns).map(([lun, ref]) => {
      const name = typeof ref === 'string' ? ref : ref.backstore;
      const bs = backstores.get(name);
      if (!bs) throw new LunkitError('ERR_INVALID_CONFIG', `LUN ${lun} of ${iqn} names the missing backstore "${name}"`);
      return { lun: Number(lun), device: bs.device };
    }),
    acls: Object.entries(tpg.acls).map(
      ([initiator, acl]): AclConfig => ({
        initiator,
        mappedLuns: Object.entries(acl.mappedLuns ?? {}).map(([mapped, m]) =>
          typeof m === 'number'
            ? { mappedLun: Number(mapped), tpgLun: m, readOnly: false }
            : { mappedLun: Number(mapped), tpgLun: m.tpgLun, readOnly: m.readOnly },
        ),
        chap: acl.chap,
        mutualChap: acl.mutualChap,
      }),
    ),
    attributes: { ...tpg.attributes, cacheDynamicAcls: false },
    parameters: { ...tpg.parameters },
  }));
  return { iqn, alias: t.alias, tpgs };
}

/** Backstore names a target's LUNs use. */
export function targetBackstores(t: TargetData): string[] {
  const out: string[] = [];
  for (const tpg of Object.values(t.tpgs)) for (const ref of Object.values(tpg.luns)) out.push(typeof ref === 'string' ? ref : ref.backstore);
  return out;
}

export function toDiscoveryAuth(cfg: LunkitConfig): DiscoveryAuth | undefined {
  const d = cfg.iscsi.discoveryAuth;
  return d
    ? { enabled: d.enabled, userid: d.chap?.userid, password: d.chap?.password, mutualUserid: d.mutualChap?.userid, mutualPassword: d.mutualChap?.password }
    : undefined;
}

/** A listening NBD server with the exports of `nbd` (closed again if it cannot listen). */
export async function startNbdServer(core: ScsiCore, nbd: NbdConfigData, backstores: ReadonlyMap<string, { device: ScsiDeviceHandle }>, logger: Logger, limits?: Partial<NbdLimits>): Promise<NbdServer> {
  const tls = nbd.tls;
  const server = new NbdServer(core, {
    logger,
    limits,
    tls: tls ? { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile), ca: tls.caFile ? await readFile(tls.caFile) : undefined, require: tls.require } : undefined,
    listen: nbd.listen.map((a) => ('path' in a ? { path: a.path } : { host: a.host, port: a.port })),
  });
  for (const [exp, e] of Object.entries(nbd.exports)) {
    const bs = backstores.get(e.backstore);
    if (!bs) throw new LunkitError('ERR_INVALID_CONFIG', `NBD export "${exp}" names the missing backstore "${e.backstore}"`);
    server.setExport(exp, { device: bs.device, readOnly: e.readOnly, description: e.description });
  }
  try {
    await server.listen();
  } catch (e) {
    await server.close({ graceMs: 0 }).catch(() => {});
    throw e;
  }
  for (const a of server.addresses()) logger.info('NBD server listening', { host: a.host, port: a.port });
  for (const path of server.unixPaths()) logger.info('NBD server listening', { socket: path });
  return server;
}
