// The `exports` part of the stats snapshot (docs/stats.md): NBD exports with
// their live connections and FUSE files, so the dashboard's object tree can
// show them next to the iSCSI targets. Names come from the running
// configuration (export -> backstore, which is the LU's name in the core
// part); connections from the NBD server, mounts from the FUSE fabric.

import type { NbdConnectionInfo } from '../fabrics/nbd/connection.js';
import type { LunkitConfig } from './config-schema.js';

export interface NbdExportStats {
  name: string;
  /** The backstore, i.e. the LU name in `core.luns`. */
  backstore: string;
  readOnly: boolean;
  /** Connections that picked this export. */
  connections: Array<{ id: number; remote: string; since: number; inFlight: number; tls: boolean }>;
}

export interface FuseFileStats {
  /** Absolute path of the file. */
  path: string;
  backstore: string;
  readOnly: boolean;
}

export interface FuseMountStats {
  mountpoint: string;
  /** False while the configured directory is not mounted (e.g. it failed to mount). */
  mounted: boolean;
  files: FuseFileStats[];
}

export interface ExportsStats {
  nbd: NbdExportStats[];
  /** Connections still haggling (no export picked yet). */
  nbdHandshaking: number;
  fuse: FuseMountStats[];
}

/** What exportsStats reads: LunkitRuntime satisfies it. */
export interface ExportsSource {
  readonly config: LunkitConfig;
  readonly nbd: { connections(): NbdConnectionInfo[] } | undefined;
  readonly fuse: { files(): Array<{ mountpoint: string; files: string[] }> };
}

export function exportsStats(src: ExportsSource): ExportsStats {
  const cfg = src.config;
  const conns = src.nbd?.connections() ?? [];
  const nbd = Object.entries(cfg.nbd?.exports ?? {}).map(([name, e]) => ({
    name,
    backstore: e.backstore,
    readOnly: e.readOnly,
    connections: conns.filter((c) => c.export === name).map((c) => ({ id: c.id, remote: c.remote, since: c.since, inFlight: c.inFlight, tls: c.tls })),
  }));
  const mounted = new Set(src.fuse.files().map((f) => f.mountpoint));
  const fuse = Object.entries(cfg.fuse ?? {}).map(([mountpoint, m]) => ({
    mountpoint,
    mounted: mounted.has(mountpoint),
    files: Object.entries(m.exports).map(([name, e]) => ({ path: `${mountpoint}/${name}`, backstore: e.backstore, readOnly: e.readOnly })),
  }));
  return { nbd, nbdHandshaking: conns.filter((c) => c.export === undefined).length, fuse };
}
