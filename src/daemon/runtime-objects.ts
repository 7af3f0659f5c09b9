// Turning configuration entries into running objects: a backstore opened as
// a core device (with a preallocation that reports progress), an iSCSI target
// config with the device handles of its LUNs, discovery authentication, an
// NBD server. runtime.ts decides when; this file knows how.

import { constants as fsConstants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import type { BackstoreOps, ScsiDeviceHandle } from '../core/types.js';
import type { ScsiCore } from '../core/engine.js';
import { createBackstore, nativeFileOps } from '../backstores/index.js';
import type { AclConfig, DiscoveryAuth, IscsiTargetConfig, TpgConfig } from '../fabrics/iscsi/config.js';
import { NbdServer } from '../fabrics/nbd/server.js';
import type { BackstoreConfig, LunkitConfig, NbdConfigData } from './config-schema.js';
import type { Logger } from '../util/log.js';

export interface OpenBackstore {
  ops: BackstoreOps;
  device: ScsiDeviceHandle;
  spec: BackstoreConfig;
}

export interface Progress {
  what: string;
  done: number;
  total: number;
}

export type ProgressFn = (p: Progress) => void;

/** Preallocation step: big enough to be quick, small enough for a smooth bar. */
const PREALLOC_CHUNK = 64 * 1024 * 1024;
/** Without the native addon, zeroes are written in pieces of this size. */
const ZERO_CHUNK = 1024 * 1024;

/**
 * Allocates [from, to) of a file in chunks, reporting each one (a thick file
 * backstore; FileBackstore.open would do it in one call with no progress).
 * With the native addon this is fallocate(2); without it, written zeroes.
 */
export async function preallocate(path: string, from: number, to: number, what: string, onProgress?: ProgressFn): Promise<void> {
  const native = nativeFileOps();
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT, 0o600);
  try {
    const total = to - from;
    onProgress?.({ what, done: 0, total });
    const zeroes = native ? undefined : Buffer.alloc(ZERO_CHUNK);
    for (let off = from; off < to; ) {
      const len = Math.min(native ? PREALLOC_CHUNK : ZERO_CHUNK, to - off);
      if (native) {
        try {
          await native.fallocate(fh.fd, 0, off, len);
        } catch (err) {
          // A file system without fallocate stays sparse, as FileBackstore.open does.
          const code = (err as { code?: string }).code;
          if (code === 'EOPNOTSUPP' || code === 'ENOTSUP' || code === 'ENOSYS') {
            await fh.truncate(to);
            break;
          }
          throw err;
        }
      } else {
        await fh.write(zeroes!, 0, len, off);
      }
      off += len;
      onProgress?.({ what, done: off - from, total });
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fileExists(path: string): Promise<{ exists: boolean; size: number }> {
  try {
    const st = await stat(path);
    return { exists: true, size: st.size };
  } catch {
    return { exists: false, size: 0 };
  }
}

/** Opens the backstore (no core device yet). */
export async function openBackstoreOps(name: string, bs: BackstoreConfig): Promise<BackstoreOps> {
  return createBackstore(
    bs.type === 'file'
      ? { type: 'file', name, path: bs.path, size: bs.size, create: bs.create, sparse: bs.thin, writeCache: bs.writeCache, readOnly: bs.readOnly, blockSize: bs.blockSize }
      : bs.type === 'nbd'
        ? { type: 'nbd', name, url: bs.url, blockSize: bs.blockSize, readOnly: bs.readOnly, connectTimeoutMs: bs.connectTimeoutMs, retries: bs.retries }
        : { type: bs.type, name, size: bs.size, blockSize: bs.blockSize },
  );
}

export function createDevice(core: ScsiCore, name: string, ops: BackstoreOps, bs: BackstoreConfig): ScsiDeviceHandle {
  return core.createDevice(ops, {
    name,
    serial: bs.serial,
    writeCache: bs.type === 'file' ? bs.writeCache : true,
    readOnly: bs.type === 'null' ? false : bs.readOnly,
    removable: bs.type === 'null' ? false : bs.removable,
    thin: bs.type === 'file' ? bs.thin && ops.caps.thin : ops.caps.thin,
  });
}

/** The fields the backstore implementation is opened with: a change needs a new open. */
function openIdentity(bs: BackstoreConfig): unknown {
  switch (bs.type) {
    case 'file':
      return [bs.type, bs.path, bs.blockSize, bs.readOnly, bs.writeCache, bs.thin];
    case 'nbd':
      return [bs.type, bs.url, bs.blockSize, bs.readOnly, bs.connectTimeoutMs, bs.retries];
    default:
      // Reopening a ramdisk would lose its data: only its block size forces it.
      return [bs.type, bs.blockSize];
  }
}

/** The fields the core device is created with (INQUIRY/VPD/mode data). */
function deviceIdentity(bs: BackstoreConfig): unknown {
  return [bs.serial, 'readOnly' in bs ? bs.readOnly : false, 'removable' in bs ? bs.removable : false, bs.type === 'file' ? [bs.writeCache, bs.thin] : []];
}

export type BackstoreChange = 'none' | 'resize' | 'device' | 'reopen';

/** What applying `next` over `prev` takes for one backstore (resize may come with 'device'). */
export function backstoreChange(prev: BackstoreConfig, next: BackstoreConfig): { change: BackstoreChange; resize: boolean } {
  if (JSON.stringify(openIdentity(prev)) !== JSON.stringify(openIdentity(next))) return { change: 'reopen', resize: false };
  const resize = prev.type !== 'nbd' && next.type !== 'nbd' && prev.size !== next.size && next.size !== undefined;
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
      if (!bs) throw new Error(`LUN ${lun} of ${iqn} names the missing backstore "${name}"`);
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
export async function startNbdServer(core: ScsiCore, nbd: NbdConfigData, backstores: ReadonlyMap<string, { device: ScsiDeviceHandle }>, logger: Logger): Promise<NbdServer> {
  const tls = nbd.tls;
  const server = new NbdServer(core, {
    logger,
    tls: tls ? { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile), ca: tls.caFile ? await readFile(tls.caFile) : undefined, require: tls.require } : undefined,
    listen: nbd.listen.map((a) => ('path' in a ? { path: a.path } : { host: a.host, port: a.port })),
  });
  for (const [exp, e] of Object.entries(nbd.exports)) {
    const bs = backstores.get(e.backstore);
    if (!bs) throw new Error(`NBD export "${exp}" names the missing backstore "${e.backstore}"`);
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
