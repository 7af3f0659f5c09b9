// targetcli/rtslib saveconfig.json -> lunkit configuration (docs/targetcli.md).
//
// Pure: no file system, no daemon. Three outcomes per key of the input:
//   - carried over into the lunkit configuration;
//   - listed in `unsupported` with its path, value and why (lunkit cannot do
//     what it asks, or does something different), never silently dropped;
//   - listed in `notes` when it is only LIO's default for a setting lunkit has
//     no knob for (its behaviour is lunkit's behaviour anyway), or a
//     configfs-internal name (LUN aliases).
// Input that rtslib itself would refuse (wrong types, a LUN naming a missing
// storage object, duplicate indexes, bad iSCSI names) throws TargetcliError
// naming every path at fault.
//
// Where LIO allows something lunkit would treat more loosely, the import
// fails closed: an ACL whose CHAP credentials lunkit cannot hold is left out
// (that initiator cannot log in), never kept without authentication.

import type { z } from 'zod';

import { BACKSTORE_DESCRIPTORS } from '../../backstores/registry.js';
import type { LioStorageObjectIn, TargetcliImportContext } from '../../backstores/targetcli.js';
import { iscsiNameProblem } from '../../protocols/iscsi/names.js';
import { ConfigError, parseConfig } from '../config.js';
import type { BackstoreSchema, ConfigSchema, TpgSchema } from '../config-schema.js';
import {
  ACL_ATTRIBUTE_DEFAULTS,
  ACL_ATTRIBUTE_MAP,
  BACKSTORE_NAME_RE,
  BOOLEAN_TPG_ATTRIBUTES,
  DEFAULT_ALUA_GROUP,
  FORCED_PARAMETERS,
  MAX_SERIAL_LENGTH,
  PARAMETER_DEFAULTS,
  canonicalPlugin,
  SO_ATTRIBUTE_DEFAULTS,
  SO_ATTRIBUTE_INFORMATIONAL,
  TPG_ATTRIBUTE_DEFAULTS,
  TPG_ATTRIBUTE_MAP,
  UUID_RE,
  isNegotiatedKey,
  type LioAclAttribute,
  type LioTpgAttribute,
} from './lio-tables.js';
import { parseSaveconfig, TargetcliError, type FabricModuleDoc, type NodeAclDoc, type StorageObject, type TargetDoc, type TpgDoc } from './saveconfig-schema.js';

export type LunkitConfigInput = z.input<typeof ConfigSchema>;
type BackstoreInput = z.input<typeof BackstoreSchema>;
type TpgInput = z.input<typeof TpgSchema>;
type TpgAttributesInput = NonNullable<TpgInput['attributes']>;
type AclInput = NonNullable<TpgInput['acls']>[string];
type Chap = { userid: string; password: string };

export interface TargetcliImport {
  /** A lunkit configuration (config-file form); parseConfig accepts it. */
  config: LunkitConfigInput;
  /** Everything in the input lunkit cannot represent: "path=value: why". */
  unsupported: string[];
  /** Keys dropped because they only restate LIO defaults or configfs-internal names. */
  notes: string[];
}

const LUNKIT_MAX_LUN = 16383;

/** How a key is shown in a message: secrets are never printed. */
function show(key: string, value: unknown): string {
  if (/password/i.test(key)) return `${key}=(secret)`;
  return `${key}=${JSON.stringify(value)}`;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

function sameValue(a: unknown, b: unknown): boolean {
  const na = asNumber(a);
  const nb = asNumber(b);
  if (na !== undefined && nb !== undefined) return na === nb;
  return String(a) === String(b);
}

function chapOk(c: Chap): boolean {
  return c.userid.length >= 1 && c.userid.length <= 255 && c.password.length >= 12 && c.password.length <= 255;
}

class Importer {
  readonly problems: string[] = [];
  readonly unsupported: string[] = [];
  readonly notes: string[] = [];
  /** "<canonical plugin>/<name>" -> lunkit backstore name, or null when the plugin is not carried. */
  private readonly soNames = new Map<string, string | null>();
  private readonly usedNames = new Set<string>();

  private unsup(path: string, key: string, value: unknown, why: string): void {
    this.unsupported.push(`${path ? `${path}.` : ''}${show(key, value)}: ${why}`);
  }

  private note(path: string, key: string, value: unknown, why: string): void {
    this.notes.push(`${path}.${show(key, value)}: ${why}`);
  }

  private extraKeys(path: string, obj: Record<string, unknown>, known: ReadonlySet<string>): void {
    for (const [k, v] of Object.entries(obj)) {
      if (!known.has(k) && v !== undefined && v !== null) this.unsup(path, k, v, 'no lunkit equivalent');
    }
  }

  run(doc: ReturnType<typeof parseSaveconfig>): LunkitConfigInput {
    this.extraKeys('', doc, new Set(['storage_objects', 'targets', 'fabric_modules']));
    const backstores: Record<string, BackstoreInput> = {};
    (doc.storage_objects ?? []).forEach((so, i) => {
      const out = this.storageObject(so, `storage_objects[${i}]`);
      if (out) backstores[out.name] = out.backstore;
    });
    const config: LunkitConfigInput = { version: 1, backstores, iscsi: { targets: {} } };
    const iscsi = config.iscsi!;
    (doc.fabric_modules ?? []).forEach((fm, i) => {
      const auth = this.fabricModule(fm, `fabric_modules[${i}]`);
      if (auth) iscsi.discoveryAuth = auth;
    });
    const seen = new Set<string>();
    (doc.targets ?? []).forEach((t, i) => {
      const path = `targets[${i}]`;
      if (t.fabric === 'iscsi') {
        if (seen.has(t.wwn)) this.problems.push(`${path}.wwn: target ${t.wwn} appears twice`);
        seen.add(t.wwn);
      }
      const out = this.target(t, path);
      if (out) iscsi.targets![t.wwn] = out;
    });
    return config;
  }

  // ---- storage objects (rtslib tcm.py) ----

  private backstoreName(plugin: string, name: string, path: string): string {
    let out = BACKSTORE_NAME_RE.test(name) ? name : name.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64) || 'so';
    if (this.usedNames.has(out)) out = `${plugin}_${out}`.slice(0, 64);
    for (let n = 2; this.usedNames.has(out); n++) out = `${plugin}_${name}_${n}`.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64);
    if (out !== name) {
      this.unsupported.push(`${path}.${show('name', name)}: renamed to "${out}" (lunkit backstore names are unique across plugins and use A-Z a-z 0-9 _ . : -)`);
    }
    this.usedNames.add(out);
    return out;
  }

  private storageObject(so: StorageObject, path: string): { name: string; backstore: BackstoreInput } | undefined {
    const lioPlugin = canonicalPlugin(so.plugin);
    const key = `${lioPlugin}/${so.name}`;
    if (this.soNames.has(key)) {
      this.problems.push(`${path}: storage object ${key} appears twice`);
      return undefined;
    }
    // The backstore type that imports this plugin (ramdisk and null share LIO's ramdisk plugin).
    const type = BACKSTORE_DESCRIPTORS.find((d) => d.targetcli.plugins?.[lioPlugin] !== undefined && (d.targetcli.claims?.(so) ?? true));
    if (!type?.targetcli.fromLio) {
      this.soNames.set(key, null);
      this.unsupported.push(`${path} (${so.plugin}/${so.name}): plugin "${so.plugin}" has no lunkit backstore; LUNs using it are left out`);
      return undefined;
    }
    const common = ['name', 'plugin', 'wwn', 'attributes', 'alua_tpgs'];
    const perPlugin = BACKSTORE_DESCRIPTORS.flatMap((d) => d.targetcli.plugins?.[lioPlugin] ?? []);
    this.extraKeys(path, so, new Set([...common, ...perPlugin]));
    const name = this.backstoreName(lioPlugin, so.name, path);
    this.soNames.set(key, name);

    const attrs = { ...(so.attributes ?? {}) };
    let blockSize: 512 | 4096 = 512;
    if (attrs.block_size !== undefined) {
      const bs = asNumber(attrs.block_size);
      if (bs === 512 || bs === 4096) blockSize = bs;
      else this.unsup(`${path}.attributes`, 'block_size', attrs.block_size, 'lunkit serves 512- or 4096-byte blocks; initiators will see 512');
      delete attrs.block_size;
    }
    const serial = this.serial(so.wwn, `${path}`);
    const backstore = type.targetcli.fromLio({ so, plugin: lioPlugin, path, blockSize, serial, attrs }, this.importContext);
    return backstore === undefined ? undefined : { name, backstore: backstore as BackstoreInput };
  }

  /** What a backstore type's fromLio() may use (src/backstores/targetcli.ts). */
  private readonly importContext: TargetcliImportContext = {
    problem: (message) => this.problems.push(message),
    unsupported: (path, key, value, why) => this.unsup(path, key, value, why),
    note: (path, key, value, why) => this.note(path, key, value, why),
    roundSize: (size, blockSize, path) => this.roundSize(size, blockSize, path),
    soAttributes: (attrs, path, plugin) => this.soAttributes(attrs, path, plugin),
    aluaGroups: (so, path) => this.aluaGroups(so, path),
    asNumber,
    sameValue,
  };

  private roundSize(size: number, blockSize: number, path: string): number {
    const rounded = size - (size % blockSize);
    if (rounded !== size) {
      this.unsup(path, 'size', size, `not a multiple of the block size ${blockSize}; lunkit uses ${rounded} (LIO also serves whole blocks only)`);
    }
    return rounded;
  }

  /** LIO's wwn is the unit serial number (VPD 0x80); rtslib generates a UUID. */
  private serial(wwn: string | null | undefined, path: string): string | undefined {
    if (wwn === undefined || wwn === null || wwn === '') return undefined;
    if (wwn.length <= MAX_SERIAL_LENGTH && /^[\x21-\x7e]+$/.test(wwn)) return wwn;
    if (UUID_RE.test(wwn)) {
      const s = wwn.replace(/-/g, '').toLowerCase();
      this.unsupported.push(`${path}.${show('wwn', wwn)}: lunkit unit serials are at most ${MAX_SERIAL_LENGTH} characters; serial set to "${s}" (dashes removed), so initiators see a different unit serial number`);
      return s;
    }
    this.unsupported.push(`${path}.${show('wwn', wwn)}: not usable as a lunkit unit serial (at most ${MAX_SERIAL_LENGTH} printable ASCII characters); lunkit derives one from the name`);
    return undefined;
  }

  private soAttributes(attrs: Record<string, unknown>, path: string, plugin: string): void {
    for (const [k, v] of Object.entries(attrs)) {
      if (SO_ATTRIBUTE_INFORMATIONAL.has(k)) continue;
      let def: unknown = SO_ATTRIBUTE_DEFAULTS[k];
      if (plugin === 'ramdisk' && (k === 'emulate_write_cache' || k === 'emulate_tpu' || k === 'emulate_tpws')) def = 0;
      if (def === undefined) this.unsup(path, k, v, 'no lunkit equivalent');
      else if (sameValue(v, def)) this.note(path, k, v, 'LIO default; lunkit has no setting for it');
      else this.unsup(path, k, v, `no lunkit equivalent (LIO default ${String(def)})`);
    }
  }

  private aluaGroups(so: LioStorageObjectIn, path: string): void {
    (so.alua_tpgs ?? []).forEach((g, i) => {
      if (g.name === DEFAULT_ALUA_GROUP) this.notes.push(`${path}.alua_tpgs[${i}] (${g.name}): LIO's default ALUA group; lunkit reports one active/optimized group`);
      else this.unsupported.push(`${path}.alua_tpgs[${i}] (${g.name}): ALUA target port groups are not configurable in lunkit`);
    });
  }

  // ---- fabric modules (rtslib fabric.py): iSCSI discovery authentication ----

  private fabricModule(fm: FabricModuleDoc, path: string): NonNullable<NonNullable<LunkitConfigInput['iscsi']>['discoveryAuth']> | undefined {
    const known = new Set(['name', 'discovery_enable_auth', 'discovery_userid', 'discovery_password', 'discovery_mutual_userid', 'discovery_mutual_password']);
    if (fm.name !== 'iscsi') {
      this.unsupported.push(`${path} (${fm.name}): fabric "${fm.name}" is not served by lunkit; its settings are left out`);
      return undefined;
    }
    this.extraKeys(path, fm, known);
    const chap = this.chapPair(fm.discovery_userid, fm.discovery_password, path, 'discovery_userid', 'discovery_password');
    const mutual = this.chapPair(fm.discovery_mutual_userid, fm.discovery_mutual_password, path, 'discovery_mutual_userid', 'discovery_mutual_password');
    const enabled = fm.discovery_enable_auth ?? false;
    if (enabled && (chap === undefined || !chapOk(chap) || (mutual !== undefined && !chapOk(mutual)))) {
      // Dropping the requirement would open discovery to anyone: refuse instead.
      this.problems.push(`${path}: discovery authentication is on, but lunkit needs a CHAP user name and a secret of 12 to 255 characters (RFC 7143 §12.1.3)${mutual ? ' for both directions' : ''}`);
      return undefined;
    }
    const out: { enabled: boolean; chap?: Chap; mutualChap?: Chap } = { enabled };
    if (chap && chapOk(chap)) out.chap = chap;
    else if (chap) this.unsupported.push(`${path}.discovery_userid: credentials unused (discovery authentication off) and not valid for lunkit (secret of 12 to 255 characters); left out`);
    if (mutual && chapOk(mutual)) out.mutualChap = mutual;
    else if (mutual) this.unsupported.push(`${path}.discovery_mutual_userid: credentials not valid for lunkit (secret of 12 to 255 characters); left out`);
    return out;
  }

  private chapPair(userid: string | null | undefined, password: string | null | undefined, path: string, uKey: string, pKey: string): Chap | undefined {
    const u = userid ?? '';
    const p = password ?? '';
    if (u === '' && p === '') return undefined;
    if (u === '' || p === '') {
      this.unsupported.push(`${path}.${u === '' ? pKey : uKey}: set without ${u === '' ? uKey : pKey}; LIO ignores half a credential, so does lunkit`);
      return undefined;
    }
    return { userid: u, password: p };
  }

  // ---- targets, TPGs (rtslib target.py) ----

  private target(t: TargetDoc, path: string): { alias?: string; tpgs: Record<string, TpgInput> } | undefined {
    if (t.fabric !== 'iscsi') {
      this.unsupported.push(`${path} (${t.fabric} ${t.wwn}): fabric "${t.fabric}" is not served by lunkit; target left out`);
      return undefined;
    }
    const bad = iscsiNameProblem(t.wwn);
    if (bad) {
      this.problems.push(`${path}.wwn: "${t.wwn}": ${bad}`);
      return undefined;
    }
    this.extraKeys(path, t, new Set(['wwn', 'fabric', 'tpgs']));
    const out: { alias?: string; tpgs: Record<string, TpgInput> } = { tpgs: {} };
    let aliasFrom = '';
    (t.tpgs ?? []).forEach((tpg, j) => {
      const tp = `${path}.tpgs[${j}]`;
      if (String(tpg.tag) in out.tpgs) {
        this.problems.push(`${tp}.tag: TPG ${tpg.tag} appears twice in ${t.wwn}`);
        return;
      }
      const res = this.tpg(tpg, tp);
      if (!res) return;
      out.tpgs[String(tpg.tag)] = res.tpg;
      if (res.alias !== undefined) {
        if (out.alias === undefined) {
          out.alias = res.alias;
          aliasFrom = tp;
        } else if (out.alias !== res.alias) {
          this.unsup(`${tp}.parameters`, 'TargetAlias', res.alias, `lunkit has one alias per target (kept "${out.alias}" from ${aliasFrom})`);
        }
      }
    });
    return out;
  }

  private tpg(tpg: TpgDoc, path: string): { tpg: TpgInput; alias?: string } | undefined {
    this.extraKeys(
      path,
      tpg,
      new Set(['tag', 'enable', 'luns', 'portals', 'node_acls', 'attributes', 'parameters', 'chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password']),
    );
    for (const k of ['chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password'] as const) {
      const v = tpg[k];
      if (v) this.unsup(path, k, v, 'TPG-wide CHAP credentials have no lunkit equivalent (lunkit authenticates per ACL)');
    }
    const out: TpgInput = { portals: [] };
    if (tpg.enable !== undefined) out.enabled = tpg.enable;

    (tpg.portals ?? []).forEach((p, k) => {
      const pp = `${path}.portals[${k}]`;
      this.extraKeys(pp, p, new Set(['ip_address', 'port', 'iser', 'offload']));
      if (p.iser) this.unsup(pp, 'iser', true, 'lunkit serves iSCSI over TCP only (no iSER); the portal is kept as plain TCP');
      if (p.offload) this.unsup(pp, 'offload', true, 'no hardware offload in lunkit; the portal is kept as plain TCP');
      const host = p.ip_address.replace(/^\[(.*)\]$/, '$1');
      out.portals.push(host.includes(':') ? `[${host}]:${p.port}` : `${host}:${p.port}`);
    });

    const attributes = this.tpgAttributes(tpg.attributes ?? {}, `${path}.attributes`);
    const luns: Record<string, string> = {};
    const dropped = new Set<number>();
    (tpg.luns ?? []).forEach((lun, k) => {
      const lp = `${path}.luns[${k}]`;
      this.extraKeys(lp, lun, new Set(['index', 'storage_object', 'alias', 'alua_tg_pt_gp_name']));
      if (String(lun.index) in luns || dropped.has(lun.index)) {
        this.problems.push(`${lp}.index: LUN ${lun.index} appears twice in TPG ${tpg.tag}`);
        return;
      }
      const [, , soPlugin, soName] = lun.storage_object.split('/');
      const key = `${canonicalPlugin(soPlugin)}/${soName}`;
      const bs = this.soNames.get(key);
      if (bs === undefined) {
        this.problems.push(`${lp}.storage_object: "${lun.storage_object}" names no storage object in storage_objects`);
        dropped.add(lun.index); // one problem, not one more per mapping of it
        return;
      }
      if (lun.alias) this.note(lp, 'alias', lun.alias, 'configfs link name, regenerated by LIO');
      const group = lun.alua_tg_pt_gp_name;
      if (group && group !== DEFAULT_ALUA_GROUP) this.unsup(lp, 'alua_tg_pt_gp_name', group, 'ALUA target port groups are not configurable in lunkit');
      else if (group) this.note(lp, 'alua_tg_pt_gp_name', group, "LIO's default ALUA group; lunkit reports one active/optimized group");
      if (bs === null) {
        dropped.add(lun.index);
        this.unsupported.push(`${lp} (LUN ${lun.index}): its storage object ${lun.storage_object} is not carried over; LUN left out`);
        return;
      }
      if (lun.index > LUNKIT_MAX_LUN) {
        dropped.add(lun.index);
        this.unsup(lp, 'index', lun.index, `lunkit LUN numbers are 0..${LUNKIT_MAX_LUN}; LUN left out`);
        return;
      }
      luns[String(lun.index)] = bs;
    });
    out.luns = luns;

    const acls: Record<string, AclInput> = {};
    const nopIn: Record<LioAclAttribute, Array<{ value: number; path: string }>> = { nopin_timeout: [], nopin_response_timeout: [] };
    (tpg.node_acls ?? []).forEach((acl, k) => {
      const ap = `${path}.node_acls[${k}]`;
      if (acl.node_wwn in acls) {
        this.problems.push(`${ap}.node_wwn: ACL for ${acl.node_wwn} appears twice in TPG ${tpg.tag}`);
        return;
      }
      const res = this.nodeAcl(acl, ap, luns, dropped, attributes.authentication === true, nopIn);
      if (res) acls[acl.node_wwn] = res;
    });
    out.acls = acls;
    this.nopInConsensus(nopIn, attributes, path);
    out.attributes = attributes;

    const params = this.parameters(tpg.parameters ?? {}, `${path}.parameters`);
    out.parameters = params.parameters;
    if (out.portals.length === 0) {
      this.unsupported.push(`${path} (TPG ${tpg.tag}): has no portals, and a lunkit TPG needs one; TPG left out`);
      return undefined;
    }
    return params.alias === undefined ? { tpg: out } : { tpg: out, alias: params.alias };
  }

  private tpgAttributes(attrs: Record<string, unknown>, path: string): TpgAttributesInput {
    const out: TpgAttributesInput = {};
    const limits: Record<string, [number, number]> = { default_cmdsn_depth: [1, 512], login_timeout: [1, 600] };
    for (const [k, v] of Object.entries(attrs)) {
      if (k in TPG_ATTRIBUTE_MAP) {
        const field = TPG_ATTRIBUTE_MAP[k as LioTpgAttribute];
        const n = asNumber(v);
        if (BOOLEAN_TPG_ATTRIBUTES.has(k)) {
          if (n !== 0 && n !== 1) this.unsup(path, k, v, 'expected 0 or 1; lunkit default kept');
          else (out as Record<string, boolean>)[field] = n === 1;
        } else {
          const [min, max] = limits[k];
          if (n === undefined || !Number.isInteger(n) || n < min || n > max) this.unsup(path, k, v, `lunkit takes ${min}..${max}; lunkit default kept`);
          else (out as Record<string, number>)[field] = n;
        }
      }
    }
    for (const [k, v] of Object.entries(attrs)) {
      if (k in TPG_ATTRIBUTE_MAP) continue;
      if (k === 'cache_dynamic_acls') {
        // targetcli turns it on together with generate_node_acls; lunkit keeps generated ACLs for the session.
        if (sameValue(v, out.generateNodeAcls ? 1 : 0) || sameValue(v, 0)) this.note(path, k, v, 'follows generate_node_acls in lunkit');
        else this.unsup(path, k, v, 'lunkit caches dynamic ACLs exactly when generate_node_acls is on');
        continue;
      }
      const def = TPG_ATTRIBUTE_DEFAULTS[k];
      if (def === undefined) this.unsup(path, k, v, 'no lunkit equivalent');
      else if (sameValue(v, def)) this.note(path, k, v, 'LIO default; lunkit has no setting for it');
      else this.unsup(path, k, v, `no lunkit equivalent (LIO default ${def})`);
    }
    if (out.generateNodeAcls && out.authentication) {
      // LIO then checks the TPG-wide CHAP credentials; lunkit has none. Fail closed.
      out.generateNodeAcls = false;
      this.unsup(path, 'generate_node_acls', 1, 'demo mode with authentication=1 uses TPG-wide CHAP, which lunkit lacks; demo mode turned off, authentication kept (only ACLs log in)');
    }
    return out;
  }

  private nodeAcl(
    acl: NodeAclDoc,
    path: string,
    luns: Record<string, string>,
    dropped: ReadonlySet<number>,
    authRequired: boolean,
    nopIn: Record<LioAclAttribute, Array<{ value: number; path: string }>>,
  ): AclInput | undefined {
    const bad = iscsiNameProblem(acl.node_wwn);
    if (bad) {
      this.problems.push(`${path}.node_wwn: "${acl.node_wwn}": ${bad}`);
      return undefined;
    }
    this.extraKeys(path, acl, new Set(['node_wwn', 'mapped_luns', 'attributes', 'chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password', 'tag']));
    if (acl.tag !== undefined && acl.tag !== null) this.unsup(path, 'tag', acl.tag, 'ACL groups (shared tags) have no lunkit equivalent');
    const out: AclInput = {};
    const mapped: NonNullable<AclInput['mappedLuns']> = {};
    (acl.mapped_luns ?? []).forEach((m, k) => {
      const mp = `${path}.mapped_luns[${k}]`;
      this.extraKeys(mp, m, new Set(['index', 'tpg_lun', 'write_protect', 'alias']));
      if (String(m.index) in mapped) {
        this.problems.push(`${mp}.index: mapped LUN ${m.index} appears twice for ${acl.node_wwn}`);
        return;
      }
      if (dropped.has(m.tpg_lun)) {
        this.unsupported.push(`${mp} (mapped LUN ${m.index}): TPG LUN ${m.tpg_lun} is left out, so is this mapping`);
        return;
      }
      if (!(String(m.tpg_lun) in luns)) {
        this.problems.push(`${mp}.tpg_lun: the TPG has no LUN ${m.tpg_lun}`);
        return;
      }
      if (m.index > LUNKIT_MAX_LUN) {
        this.unsup(mp, 'index', m.index, `lunkit LUN numbers are 0..${LUNKIT_MAX_LUN}; mapping left out`);
        return;
      }
      if (m.alias) this.note(mp, 'alias', m.alias, 'configfs link name, regenerated by LIO');
      mapped[String(m.index)] = m.write_protect ? { tpgLun: m.tpg_lun, readOnly: true } : m.tpg_lun;
    });
    out.mappedLuns = mapped;

    for (const [k, v] of Object.entries(acl.attributes ?? {})) {
      const ap = `${path}.attributes`;
      if (k in ACL_ATTRIBUTE_MAP) {
        const n = asNumber(v);
        if (n === undefined) this.unsup(ap, k, v, 'expected a number of seconds');
        else nopIn[k as LioAclAttribute].push({ value: n, path: `${ap}.${k}` });
        continue;
      }
      const def = ACL_ATTRIBUTE_DEFAULTS[k];
      if (def === undefined) this.unsup(ap, k, v, 'no lunkit equivalent');
      else if (sameValue(v, def)) this.note(ap, k, v, 'LIO default; lunkit has no setting for it');
      else this.unsup(ap, k, v, `no lunkit equivalent (LIO default ${def})`);
    }

    const chap = this.chapPair(acl.chap_userid, acl.chap_password, path, 'chap_userid', 'chap_password');
    const mutual = this.chapPair(acl.chap_mutual_userid, acl.chap_mutual_password, path, 'chap_mutual_userid', 'chap_mutual_password');
    if ((chap && !chapOk(chap)) || (mutual && !chapOk(mutual))) {
      this.unsupported.push(`${path} (${acl.node_wwn}): lunkit needs CHAP user names of 1 to 255 and secrets of 12 to 255 characters (RFC 7143 §12.1.3); ACL left out, so this initiator cannot log in until you set new credentials`);
      return undefined;
    }
    if (mutual && !chap) {
      this.unsupported.push(`${path}.chap_mutual_userid: mutual CHAP without initiator CHAP credentials; left out`);
    }
    if (authRequired && !chap) {
      this.unsupported.push(`${path} (${acl.node_wwn}): authentication=1 but no CHAP credentials, so LIO refuses this initiator; ACL left out`);
      return undefined;
    }
    if (chap) out.chap = chap;
    if (chap && mutual) out.mutualChap = mutual;
    return out;
  }

  /** LIO's per-ACL NOP-In timers become lunkit's per-TPG ones when every ACL agrees. */
  private nopInConsensus(nopIn: Record<LioAclAttribute, Array<{ value: number; path: string }>>, attrs: TpgAttributesInput, path: string): void {
    const ranges: Record<LioAclAttribute, [number, number]> = { nopin_timeout: [0, 3600], nopin_response_timeout: [1, 3600] };
    for (const k of Object.keys(nopIn) as LioAclAttribute[]) {
      const vals = nopIn[k];
      if (vals.length === 0) continue;
      const first = vals[0].value;
      const [min, max] = ranges[k];
      if (vals.some((v) => v.value !== first)) {
        this.unsupported.push(`${path}.node_acls[*].attributes.${k}: differs between ACLs (${vals.map((v) => v.value).join(', ')}); lunkit sets it per TPG and keeps its default`);
      } else if (!Number.isInteger(first) || first < min || first > max) {
        this.unsupported.push(`${vals[0].path}=${first}: lunkit takes ${min}..${max}; lunkit default kept`);
      } else {
        (attrs as Record<string, number>)[ACL_ATTRIBUTE_MAP[k]] = first;
      }
    }
  }

  private parameters(params: Record<string, string>, path: string): { parameters: Record<string, string>; alias?: string } {
    const out: Record<string, string> = {};
    let alias: string | undefined;
    for (const [k, v] of Object.entries(params)) {
      if (k === 'TargetAlias') {
        alias = v;
        continue;
      }
      if (isNegotiatedKey(k)) {
        out[k] = v;
        const forced = FORCED_PARAMETERS[k];
        if (forced !== undefined && v !== forced) this.unsup(path, k, v, `kept, but lunkit currently negotiates ${k}=${forced} whatever the configuration says`);
        continue;
      }
      const def = PARAMETER_DEFAULTS[k];
      if (def !== undefined && v === def) this.note(path, k, v, 'LIO default; lunkit has no such key');
      else this.unsup(path, k, v, 'not a login key lunkit negotiates');
    }
    return alias === undefined ? { parameters: out } : { parameters: out, alias };
  }
}

/**
 * Converts a targetcli/rtslib saveconfig.json (parsed, or its text) into a
 * lunkit configuration. Throws TargetcliError (code ERR_TARGETCLI_INVALID)
 * naming the path of every invalid part of the input.
 */
export function importTargetcli(doc: unknown, source = ''): TargetcliImport {
  const parsed = parseSaveconfig(doc, source);
  const imp = new Importer();
  const config = imp.run(parsed);
  if (imp.problems.length > 0) throw new TargetcliError(imp.problems, source);
  try {
    parseConfig(config, source);
  } catch (e) {
    // A gap in this converter: say so, with lunkit's own paths.
    if (e instanceof ConfigError) throw new TargetcliError(e.problems.map((p) => `after conversion, ${p}`), source);
    throw e;
  }
  return { config, unsupported: imp.unsupported, notes: imp.notes };
}
