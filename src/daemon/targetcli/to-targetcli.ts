// lunkit configuration -> targetcli/rtslib saveconfig.json (docs/targetcli.md),
// the file `targetctl restore` / `targetcli restoreconfig` loads into kernel
// LIO. Pure: no file system, no daemon. The keys are the ones rtslib-fb's
// dump() writes and its setup() reads back (rtslib/root.py, tcm.py,
// target.py, fabric.py); keys are sorted as rtslib sorts them.
//
// What LIO cannot hold (NBD and iSCSI-initiator backstores, NBD exports,
// removable media, a read-only file or ramdisk) is listed in `unsupported`.
// Each backstore type maps its own storage object (the targetcli part of its
// descriptor, src/backstores). A read-only backstore is carried as
// write_protect on every mapped LUN that uses it, so the export never makes
// data writable that was not.

import { commonConfig, descriptorOf } from '../../backstores/registry.js';
import type { LioStorageObject } from '../../backstores/targetcli.js';
import { parseConfig, type LunkitConfig } from '../config.js';
import { jsonPath } from '../errors.js';
import { ACL_ATTRIBUTE_MAP, MAX_SERIAL_LENGTH } from './lio-tables.js';

export type { LioStorageObject };

export interface LioMappedLun {
  index: number;
  tpg_lun: number;
  write_protect: boolean;
}

export interface LioNodeAcl {
  node_wwn: string;
  mapped_luns: LioMappedLun[];
  attributes: Record<string, number>;
  chap_userid?: string;
  chap_password?: string;
  chap_mutual_userid?: string;
  chap_mutual_password?: string;
}

export interface LioTpg {
  tag: number;
  enable: boolean;
  portals: Array<{ ip_address: string; port: number; iser: boolean; offload: boolean }>;
  luns: Array<{ index: number; storage_object: string }>;
  node_acls: LioNodeAcl[];
  attributes: Record<string, number>;
  parameters: Record<string, string>;
}

export interface LioTarget {
  wwn: string;
  fabric: 'iscsi';
  tpgs: LioTpg[];
}

export interface LioFabricModule {
  name: 'iscsi';
  discovery_enable_auth: boolean;
  discovery_userid?: string;
  discovery_password?: string;
  discovery_mutual_userid?: string;
  discovery_mutual_password?: string;
}

/** A saveconfig.json document as rtslib-fb writes it. */
export interface SaveconfigDoc {
  fabric_modules: LioFabricModule[];
  storage_objects: LioStorageObject[];
  targets: LioTarget[];
}

export interface TargetcliExport {
  doc: SaveconfigDoc;
  /** What the lunkit configuration holds that LIO cannot: "path: why". */
  unsupported: string[];
}

/** Reverses the import's UUID shortening: a 32-hex serial goes back to rtslib's UUID form. */
function wwnOf(serial: string | undefined): string | undefined {
  if (serial === undefined) return undefined;
  if (serial.length === MAX_SERIAL_LENGTH && /^[0-9a-f]{32}$/.test(serial)) {
    return `${serial.slice(0, 8)}-${serial.slice(8, 12)}-${serial.slice(12, 16)}-${serial.slice(16, 20)}-${serial.slice(20)}`;
  }
  return serial;
}

/** Recursively sorts object keys (rtslib writes json.dump(sort_keys=True)). */
function sortKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sortKeys) as T;
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out as T;
  }
  return v;
}

const bit = (b: boolean): number => (b ? 1 : 0);

interface SoRef {
  /** "/backstores/<plugin>/<name>", or null when the backstore cannot move to LIO. */
  path: string | null;
  /** Read-only in lunkit but not in LIO (fileio, ramdisk): mapped LUNs get write_protect. */
  readOnly: boolean;
}

function storageObjects(cfg: LunkitConfig, unsupported: string[]): { list: LioStorageObject[]; refs: Map<string, SoRef> } {
  const list: LioStorageObject[] = [];
  const refs = new Map<string, SoRef>();
  for (const [name, bs] of Object.entries(cfg.backstores)) {
    const at = jsonPath('backstores', name);
    const type = descriptorOf(bs);
    const lio = type.targetcli;
    if (lio.notInLio !== undefined || !lio.toLio) {
      const where = type.describe(bs).where;
      unsupported.push(`${at} (${bs.type}${where === undefined ? '' : ` ${where}`}): ${lio.notInLio ?? `LIO has no ${bs.type} backstore`}; LUNs using it are left out`);
      refs.set(name, { path: null, readOnly: commonConfig(bs).readOnly ?? false });
      continue;
    }
    const { so, readOnly } = lio.toLio(name, bs, { at, wwn: wwnOf(commonConfig(bs).serial), unsupported: (m) => unsupported.push(m) });
    const filters = commonConfig(bs).filters ?? [];
    if (filters.length > 0) {
      unsupported.push(`${at}.filters (${filters.map((f) => f.type).join(', ')}): LIO has no filters between a LUN and its storage object; the storage object is exported without them`);
    }
    list.push(so);
    refs.set(name, { path: `/backstores/${so.plugin}/${name}`, readOnly });
  }
  return { list, refs };
}

function targets(cfg: LunkitConfig, refs: Map<string, SoRef>, unsupported: string[]): LioTarget[] {
  const out: LioTarget[] = [];
  for (const [iqn, target] of Object.entries(cfg.iscsi.targets)) {
    const t: LioTarget = { wwn: iqn, fabric: 'iscsi', tpgs: [] };
    for (const [tag, tpg] of Object.entries(target.tpgs)) {
      const at = jsonPath('iscsi', 'targets', iqn, 'tpgs', tag);
      const lio: LioTpg = { tag: Number(tag), enable: tpg.enabled, portals: [], luns: [], node_acls: [], attributes: {}, parameters: { ...tpg.parameters } };
      tpg.portals.forEach((p, i) => {
        if (p.port === 0) {
          unsupported.push(`${at}.portals[${i}] (${p.host}:0): "any free port" has no LIO equivalent; portal left out`);
          return;
        }
        // rtslib wants IPv6 addresses in brackets (NetworkPortal docstring).
        lio.portals.push({ ip_address: p.host.includes(':') ? `[${p.host}]` : p.host, port: p.port, iser: false, offload: false });
      });
      const lunRo = new Map<number, boolean>();
      for (const [lun, ref] of Object.entries(tpg.luns)) {
        const bs = typeof ref === 'string' ? ref : ref.backstore;
        const so = refs.get(bs);
        if (!so || so.path === null) {
          unsupported.push(`${at}.luns["${lun}"] (${bs}): its backstore cannot move to LIO; LUN left out`);
          continue;
        }
        lio.luns.push({ index: Number(lun), storage_object: so.path });
        lunRo.set(Number(lun), so.readOnly);
      }
      for (const [initiator, acl] of Object.entries(tpg.acls)) {
        const node: LioNodeAcl = {
          node_wwn: initiator,
          mapped_luns: [],
          attributes: { nopin_timeout: tpg.attributes.nopInInterval, nopin_response_timeout: tpg.attributes.nopInTimeout },
        };
        for (const [mapped, m] of Object.entries(acl.mappedLuns ?? {})) {
          const tpgLun = typeof m === 'number' ? m : m.tpgLun;
          const readOnly = typeof m === 'number' ? false : m.readOnly;
          const ro = lunRo.get(tpgLun);
          if (ro === undefined) {
            unsupported.push(`${jsonPath('iscsi', 'targets', iqn, 'tpgs', tag, 'acls', initiator, 'mappedLuns', mapped)}: TPG LUN ${tpgLun} is left out, so is this mapping`);
            continue;
          }
          node.mapped_luns.push({ index: Number(mapped), tpg_lun: tpgLun, write_protect: readOnly || ro });
        }
        if (acl.chap) Object.assign(node, { chap_userid: acl.chap.userid, chap_password: acl.chap.password });
        if (acl.mutualChap) Object.assign(node, { chap_mutual_userid: acl.mutualChap.userid, chap_mutual_password: acl.mutualChap.password });
        lio.node_acls.push(node);
      }
      const a = tpg.attributes;
      lio.attributes = {
        authentication: bit(a.authentication),
        generate_node_acls: bit(a.generateNodeAcls),
        // targetcli turns both on together for demo mode.
        cache_dynamic_acls: bit(a.generateNodeAcls),
        demo_mode_write_protect: bit(a.demoModeWriteProtect),
        default_cmdsn_depth: a.defaultCmdsnDepth,
        login_timeout: a.loginTimeout,
      };
      if (Object.keys(tpg.acls).length === 0) {
        // LIO keeps the NOP-In timers on ACLs; a TPG without ACLs cannot carry them.
        const lioDefaults: Record<string, number> = { nopin_timeout: 15, nopin_response_timeout: 30 };
        for (const [lioName, field] of Object.entries(ACL_ATTRIBUTE_MAP)) {
          const v = a[field];
          if (v !== lioDefaults[lioName]) unsupported.push(`${at}.attributes.${field}=${v}: LIO sets ${lioName} per ACL and this TPG has none; left out`);
        }
      }
      if (target.alias !== undefined) lio.parameters.TargetAlias = target.alias;
      t.tpgs.push(lio);
    }
    out.push(t);
  }
  return out;
}

/**
 * Converts a lunkit configuration (config-file form; validated with
 * parseConfig first, which throws ConfigError) into a saveconfig.json
 * document for kernel LIO.
 */
export function exportTargetcli(config: unknown): TargetcliExport {
  const cfg = parseConfig(config);
  const unsupported: string[] = [];
  const so = storageObjects(cfg, unsupported);
  const doc: SaveconfigDoc = { fabric_modules: [], storage_objects: so.list, targets: targets(cfg, so.refs, unsupported) };
  const da = cfg.iscsi.discoveryAuth;
  if (da) {
    const fm: LioFabricModule = { name: 'iscsi', discovery_enable_auth: da.enabled };
    if (da.chap) Object.assign(fm, { discovery_userid: da.chap.userid, discovery_password: da.chap.password });
    if (da.mutualChap) Object.assign(fm, { discovery_mutual_userid: da.mutualChap.userid, discovery_mutual_password: da.mutualChap.password });
    doc.fabric_modules.push(fm);
  }
  if (cfg.nbd) {
    for (const [name, e] of Object.entries(cfg.nbd.exports)) {
      unsupported.push(`${jsonPath('nbd', 'exports', name)} (backstore ${e.backstore}): LIO has no NBD server; export left out`);
    }
    unsupported.push(`nbd.listen (${cfg.nbd.listen.map((l) => ('path' in l ? `unix:${l.path}` : `${l.host}:${l.port}`)).join(', ')}): LIO has no NBD server; left out`);
    if (cfg.nbd.tls) unsupported.push('nbd.tls: LIO has no NBD server; left out');
  }
  return { doc: sortKeys(doc), unsupported };
}
