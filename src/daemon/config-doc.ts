// The configuration as a document: the form `lunkit serve --config` reads, in
// one canonical spelling with every default filled in (sizes in bytes, portals
// as "host:port", a LUN as its backstore name, a mapped LUN as
// { tpgLun, readOnly }). The daemon keeps its desired state in this form: the
// control methods edit it, parseConfig validates it, `config.get` and
// `config.save` return it, and two documents of the same configuration are
// equal key by key (so `ls --json` is identical after save and restore).

import { ConfigError, parseConfig } from './config.js';
import { CONFIG_VERSION, type BackstoreConfig, type LunkitConfig } from './config-schema.js';
import type { BootlabConfig } from '../bootlab/schema.js';
import type { LimitsConfig } from './limits-schema.js';

export interface ChapDoc {
  userid: string;
  password: string;
}

export interface MappedLunDoc {
  tpgLun: number;
  readOnly: boolean;
}

export interface AclDoc {
  mappedLuns: Record<string, MappedLunDoc>;
  chap?: ChapDoc;
  mutualChap?: ChapDoc;
}

export interface TpgAttributesDoc {
  authentication: boolean;
  generateNodeAcls: boolean;
  demoModeWriteProtect: boolean;
  defaultCmdsnDepth: number;
  loginTimeout: number;
  nopInInterval: number;
  nopInTimeout: number;
}

export interface TpgDoc {
  enabled: boolean;
  portals: string[];
  /** TPG LUN number -> backstore name. */
  luns: Record<string, string>;
  acls: Record<string, AclDoc>;
  attributes: TpgAttributesDoc;
  parameters: Record<string, string>;
}

export interface TargetDoc {
  alias?: string;
  tpgs: Record<string, TpgDoc>;
}

export interface DiscoveryAuthDoc {
  enabled: boolean;
  chap?: ChapDoc;
  mutualChap?: ChapDoc;
}

export interface NbdExportDoc {
  backstore: string;
  readOnly: boolean;
  description?: string;
}

export interface NbdDoc {
  tls?: { certFile: string; keyFile: string; caFile?: string; require: boolean };
  /** "host:port" or "unix:/path". */
  listen: string[];
  exports: Record<string, NbdExportDoc>;
}

export interface FuseExportDoc {
  backstore: string;
  readOnly: boolean;
}

export interface FuseMountDoc {
  exports: Record<string, FuseExportDoc>;
  directIo: boolean;
  allowOther: boolean;
}

/** A backstore in the document: the parsed form is already JSON (size in bytes). */
export type BackstoreDoc = BackstoreConfig;

export interface ConfigDoc {
  version: typeof CONFIG_VERSION;
  backstores: Record<string, BackstoreDoc>;
  iscsi: { discoveryAuth?: DiscoveryAuthDoc; targets: Record<string, TargetDoc> };
  nbd?: NbdDoc;
  /** Mount directory -> FUSE exports. */
  fuse?: Record<string, FuseMountDoc>;
  /** Lab name -> boot lab (its iSCSI objects are derived, not stored). */
  bootlabs?: Record<string, BootlabConfig>;
  /** Budgets (docs/security.md). */
  limits?: LimitsConfig;
}

export const DEFAULT_TPG_ATTRIBUTES_DOC: Readonly<TpgAttributesDoc> = {
  authentication: false,
  generateNodeAcls: false,
  demoModeWriteProtect: false,
  defaultCmdsnDepth: 64,
  loginTimeout: 15,
  nopInInterval: 15,
  nopInTimeout: 30,
};

/** IPv6 hosts go in brackets so the port stays readable. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Numeric-looking keys in ascending order, so documents compare and print stably. */
function sortedEntries<T>(rec: Record<string, T>): Array<[string, T]> {
  return Object.entries(rec).sort(([a], [b]) => {
    const na = /^\d+$/.test(a) ? Number(a) : NaN;
    const nb = /^\d+$/.test(b) ? Number(b) : NaN;
    if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function chapDoc(c: ChapDoc | undefined): ChapDoc | undefined {
  return c ? { userid: c.userid, password: c.password } : undefined;
}

/** Removes keys whose value is undefined (JSON has no undefined; equality stays simple). */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

function backstoreDoc(bs: BackstoreConfig): BackstoreDoc {
  return compact({ ...bs });
}

/** The canonical document of a parsed configuration. */
export function encodeConfig(cfg: LunkitConfig): ConfigDoc {
  const backstores: Record<string, BackstoreDoc> = {};
  for (const [name, bs] of sortedEntries(cfg.backstores)) backstores[name] = backstoreDoc(bs);
  const targets: Record<string, TargetDoc> = {};
  for (const [iqn, t] of sortedEntries(cfg.iscsi.targets)) {
    const tpgs: Record<string, TpgDoc> = {};
    for (const [tag, tpg] of sortedEntries(t.tpgs)) {
      const luns: Record<string, string> = {};
      for (const [lun, ref] of sortedEntries(tpg.luns)) luns[String(Number(lun))] = typeof ref === 'string' ? ref : ref.backstore;
      const acls: Record<string, AclDoc> = {};
      for (const [initiator, acl] of sortedEntries(tpg.acls)) {
        const mappedLuns: Record<string, MappedLunDoc> = {};
        for (const [m, v] of sortedEntries(acl.mappedLuns ?? {})) {
          mappedLuns[String(Number(m))] = typeof v === 'number' ? { tpgLun: v, readOnly: false } : { tpgLun: v.tpgLun, readOnly: v.readOnly };
        }
        acls[initiator] = compact({ mappedLuns, chap: chapDoc(acl.chap), mutualChap: chapDoc(acl.mutualChap) });
      }
      const parameters: Record<string, string> = {};
      for (const [k, v] of sortedEntries(tpg.parameters)) parameters[k] = v;
      tpgs[String(Number(tag))] = {
        enabled: tpg.enabled,
        portals: tpg.portals.map((p) => formatHostPort(p.host, p.port)),
        luns,
        acls,
        attributes: { ...tpg.attributes },
        parameters,
      };
    }
    targets[iqn] = compact({ alias: t.alias, tpgs });
  }
  const d = cfg.iscsi.discoveryAuth;
  const doc: ConfigDoc = {
    version: CONFIG_VERSION,
    backstores,
    iscsi: compact({
      discoveryAuth: d ? compact({ enabled: d.enabled, chap: chapDoc(d.chap), mutualChap: chapDoc(d.mutualChap) }) : undefined,
      targets,
    }),
  };
  if (cfg.nbd) {
    const exports: Record<string, NbdExportDoc> = {};
    for (const [name, e] of sortedEntries(cfg.nbd.exports)) {
      exports[name] = compact({ backstore: e.backstore, readOnly: e.readOnly, description: e.description });
    }
    doc.nbd = compact({
      tls: cfg.nbd.tls ? compact({ ...cfg.nbd.tls }) : undefined,
      listen: cfg.nbd.listen.map((a) => ('path' in a ? `unix:${a.path}` : formatHostPort(a.host, a.port))),
      exports,
    });
  }
  if (cfg.fuse) {
    const mounts: Record<string, FuseMountDoc> = {};
    for (const [mnt, m] of sortedEntries(cfg.fuse)) {
      const exports: Record<string, FuseExportDoc> = {};
      for (const [name, e] of sortedEntries(m.exports)) exports[name] = { backstore: e.backstore, readOnly: e.readOnly };
      mounts[mnt] = { exports, directIo: m.directIo, allowOther: m.allowOther };
    }
    doc.fuse = mounts;
  }
  if (cfg.bootlabs) {
    const labs: Record<string, BootlabConfig> = {};
    for (const [name, l] of sortedEntries(cfg.bootlabs)) {
      const clients: BootlabConfig['clients'] = {};
      for (const [mac, c] of sortedEntries(l.clients)) clients[mac] = compact({ ...c, chap: chapDoc(c.chap) });
      labs[name] = compact({ ...l, ports: { ...l.ports }, clients });
    }
    doc.bootlabs = labs;
  }
  // Kept in the document: without them config.get and save dropped the
  // budgets, and the first control-verb change applied a configuration
  // without them (back to the defaults).
  if (cfg.limits) doc.limits = structuredClone(cfg.limits);
  return doc;
}

export function emptyConfigDoc(): ConfigDoc {
  return { version: CONFIG_VERSION, backstores: {}, iscsi: { targets: {} } };
}

/** A validated configuration in both forms. */
export interface DesiredState {
  doc: ConfigDoc;
  config: LunkitConfig;
}

/**
 * Validates a whole document (the checks of `lunkit serve --config`) and
 * returns it canonical; throws ConfigError naming every problem.
 */
export function validateDoc(input: unknown, source = ''): DesiredState {
  const config = parseConfig(input, source);
  return { doc: encodeConfig(config), config };
}

export { ConfigError };
