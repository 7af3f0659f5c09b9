// The control methods that change the configuration, as pure functions
// (document, params) -> new document (docs/control-protocol.md "Methods").
// They check what is theirs to check (the named object exists, the new one
// does not, the parameters are well formed) and throw a ControlError with the
// stable code; the daemon then validates the whole result with the checks of
// `lunkit serve --config` and applies it. The document passed in is a private
// copy: an op may edit it in place.

import { z } from 'zod';
import { commonConfig, descriptorOf } from '../backstores/registry.js';
import { iscsiNameProblem } from '../protocols/iscsi/names.js';
import { KEYS } from '../protocols/iscsi/keys.js';
import { parseSize } from '../util/size.js';
import { BackstoreSchema, ChapSecretSchema, ISCSI_DEFAULT_PORT, NameSchema, parseHostPort } from './config-schema.js';
import { DEFAULT_TPG_ATTRIBUTES_DOC, emptyConfigDoc, formatHostPort, type AclDoc, type BackstoreDoc, type ChapDoc, type ConfigDoc, type TargetDoc, type TpgAttributesDoc, type TpgDoc } from './config-doc.js';
import { ControlError, jsonPath } from './errors.js';

export interface OpResult {
  doc: ConfigDoc;
  /** Extra result fields beside `revision` (e.g. the LUN number lun.add chose). */
  result?: Record<string, unknown>;
}

export type ConfigOp = (doc: ConfigDoc, params: unknown) => OpResult;

// ---------------------------------------------------------------------------
// Parameter checking

function parseParams<S extends z.ZodType>(schema: S, params: unknown): z.output<S> {
  const res = schema.safeParse(params ?? {});
  if (res.success) return res.data;
  const issue = res.error.issues[0];
  const where = issue.path.length ? `params.${issue.path.map(String).join('.')}` : 'params';
  throw new ControlError('ERR_INVALID_PARAMS', `${where}: ${issue.message}`);
}

const iscsiName = z.string().superRefine((v, ctx) => {
  const bad = iscsiNameProblem(v);
  if (bad) ctx.addIssue({ code: 'custom', message: `"${v}": ${bad}` });
});
const tpgTag = z.number().int().min(1, 'TPG tags are 1..65535').max(65535, 'TPG tags are 1..65535');
const lunNumber = z.number().int().min(0, 'LUN numbers are 0..16383').max(16383, 'LUN numbers are 0..16383');
const sizeParam = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseSize(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
const portalParam = z.string().transform((v, ctx) => {
  const hp = parseHostPort(v, ISCSI_DEFAULT_PORT);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not host:port (e.g. 127.0.0.1:3260, [::1]:3260)` });
    return z.NEVER;
  }
  return formatHostPort(hp.host, hp.port);
});
const tpgRef = { iqn: z.string().min(1), tpg: tpgTag };

// ---------------------------------------------------------------------------
// Lookups (iSCSI names compare case-insensitively, RFC 3722)

function targetKey(doc: ConfigDoc, iqn: string): string | undefined {
  const want = iqn.toLowerCase();
  return Object.keys(doc.iscsi.targets).find((k) => k.toLowerCase() === want);
}

function getTarget(doc: ConfigDoc, iqn: string): { key: string; target: TargetDoc } {
  const key = targetKey(doc, iqn);
  if (key === undefined) throw new ControlError('ERR_NOT_FOUND', `no iSCSI target ${iqn}`, { path: jsonPath('iscsi', 'targets', iqn) });
  return { key, target: doc.iscsi.targets[key] };
}

function getTpg(doc: ConfigDoc, iqn: string, tag: number): { key: string; tpg: TpgDoc } {
  const { key, target } = getTarget(doc, iqn);
  const tpg = target.tpgs[String(tag)] as TpgDoc | undefined;
  if (!tpg) throw new ControlError('ERR_NOT_FOUND', `target ${key} has no TPG ${tag}`, { path: jsonPath('iscsi', 'targets', key, 'tpgs', String(tag)) });
  return { key, tpg };
}

function aclKey(tpg: TpgDoc, initiator: string): string | undefined {
  const want = initiator.toLowerCase();
  return Object.keys(tpg.acls).find((k) => k.toLowerCase() === want);
}

function getAcl(doc: ConfigDoc, iqn: string, tag: number, initiator: string): { acl: AclDoc; path: string } {
  const { key, tpg } = getTpg(doc, iqn, tag);
  const a = aclKey(tpg, initiator);
  const path = jsonPath('iscsi', 'targets', key, 'tpgs', String(tag), 'acls', a ?? initiator);
  if (a === undefined) throw new ControlError('ERR_NOT_FOUND', `TPG ${tag} of ${key} has no ACL for ${initiator}`, { path });
  return { acl: tpg.acls[a], path };
}

function requireBackstore(doc: ConfigDoc, name: string): BackstoreDoc {
  const bs = doc.backstores[name] as BackstoreDoc | undefined;
  if (!bs) throw new ControlError('ERR_NOT_FOUND', `no backstore named "${name}"`, { path: jsonPath('backstores', name) });
  return bs;
}

/** Who uses a backstore: "LUN 0 of iqn... tpg 1", "NBD export x". */
export function backstoreUsers(doc: ConfigDoc, name: string): string[] {
  const users: string[] = [];
  for (const [iqn, t] of Object.entries(doc.iscsi.targets)) {
    for (const [tag, tpg] of Object.entries(t.tpgs)) {
      for (const [lun, bs] of Object.entries(tpg.luns)) if (bs === name) users.push(`LUN ${lun} of ${iqn} tpg ${tag}`);
    }
  }
  for (const [exp, e] of Object.entries(doc.nbd?.exports ?? {})) if (e.backstore === name) users.push(`NBD export "${exp}"`);
  for (const [mnt, m] of Object.entries(doc.fuse ?? {})) {
    for (const [exp, e] of Object.entries(m.exports)) if (e.backstore === name) users.push(`FUSE export ${mnt}/${exp}`);
  }
  return users;
}

function checkSize(name: string, bs: { size?: number | undefined; blockSize: number }): void {
  if (bs.size === undefined) return;
  const path = jsonPath('backstores', name, 'size');
  if (bs.size <= 0) throw new ControlError('ERR_INVALID_PARAMS', `size must be greater than 0`, { path });
  if (bs.size % bs.blockSize !== 0) {
    throw new ControlError('ERR_INVALID_PARAMS', `size ${bs.size} is not a multiple of the block size ${bs.blockSize}`, { path });
  }
}

function newTpg(portals: string[]): TpgDoc {
  return { enabled: true, portals, luns: {}, acls: {}, attributes: { ...DEFAULT_TPG_ATTRIBUTES_DOC }, parameters: {} };
}

function uniquePortals(portals: string[]): string[] {
  return [...new Set(portals)];
}

// ---------------------------------------------------------------------------
// Backstores

const backstoreCreate: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ name: NameSchema, backstore: z.unknown() }), params);
  if (p.name in doc.backstores) throw new ControlError('ERR_EXISTS', `a backstore named "${p.name}" already exists`, { path: jsonPath('backstores', p.name) });
  const res = BackstoreSchema.safeParse(p.backstore);
  if (!res.success) {
    const issue = res.error.issues[0];
    const path = jsonPath('backstores', p.name, ...issue.path.map((x) => (typeof x === 'number' ? x : String(x))));
    throw new ControlError('ERR_INVALID_PARAMS', `${path}: ${issue.message}`, { path });
  }
  const bs = res.data;
  const c = commonConfig(bs);
  if (descriptorOf(bs).fixedSize === undefined) checkSize(p.name, { size: c.size, blockSize: c.blockSize ?? 512 });
  doc.backstores[p.name] = bs;
  return { doc };
};

const backstoreDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ name: z.string() }), params);
  requireBackstore(doc, p.name);
  const users = backstoreUsers(doc, p.name);
  if (users.length) {
    throw new ControlError('ERR_IN_USE', `backstore "${p.name}" is used by ${users.join(', ')}`, { path: jsonPath('backstores', p.name) });
  }
  delete doc.backstores[p.name];
  return { doc };
};

const backstoreResize: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ name: z.string(), size: sizeParam }), params);
  const bs = requireBackstore(doc, p.name);
  const fixed = descriptorOf(bs).fixedSize;
  if (fixed !== undefined) {
    throw new ControlError('ERR_INVALID_PARAMS', `backstore "${p.name}" ${fixed}`, { path: jsonPath('backstores', p.name, 'size') });
  }
  const c = commonConfig(bs);
  checkSize(p.name, { size: p.size, blockSize: c.blockSize ?? 512 });
  c.size = p.size;
  return { doc, result: { size: p.size } };
};

// ---------------------------------------------------------------------------
// Targets, TPGs, portals

const targetCreate: ConfigOp = (doc, params) => {
  const p = parseParams(
    z.object({ iqn: iscsiName, alias: z.string().optional(), tpg: tpgTag.default(1), portals: z.array(portalParam).min(1).default(['0.0.0.0:3260']) }),
    params,
  );
  const existing = targetKey(doc, p.iqn);
  if (existing !== undefined) throw new ControlError('ERR_EXISTS', `iSCSI target ${existing} already exists`, { path: jsonPath('iscsi', 'targets', existing) });
  const t: TargetDoc = { tpgs: { [String(p.tpg)]: newTpg(uniquePortals(p.portals)) } };
  if (p.alias !== undefined) t.alias = p.alias;
  doc.iscsi.targets[p.iqn] = t;
  return { doc };
};

const targetDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ iqn: z.string() }), params);
  const { key } = getTarget(doc, p.iqn);
  delete doc.iscsi.targets[key];
  return { doc };
};

const tpgCreate: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, portals: z.array(portalParam).min(1).default(['0.0.0.0:3260']) }), params);
  const { key, target } = getTarget(doc, p.iqn);
  if (String(p.tpg) in target.tpgs) throw new ControlError('ERR_EXISTS', `target ${key} already has TPG ${p.tpg}`, { path: jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg)) });
  target.tpgs[String(p.tpg)] = newTpg(uniquePortals(p.portals));
  return { doc };
};

const tpgDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object(tpgRef), params);
  const { key } = getTpg(doc, p.iqn, p.tpg);
  delete doc.iscsi.targets[key].tpgs[String(p.tpg)];
  return { doc };
};

const portalAdd: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, portal: portalParam }), params);
  const { key, tpg } = getTpg(doc, p.iqn, p.tpg);
  if (tpg.portals.includes(p.portal)) {
    throw new ControlError('ERR_EXISTS', `TPG ${p.tpg} of ${key} already has portal ${p.portal}`, { path: jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg), 'portals') });
  }
  tpg.portals.push(p.portal);
  return { doc };
};

const portalDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, portal: portalParam }), params);
  const { key, tpg } = getTpg(doc, p.iqn, p.tpg);
  const i = tpg.portals.indexOf(p.portal);
  if (i < 0) throw new ControlError('ERR_NOT_FOUND', `TPG ${p.tpg} of ${key} has no portal ${p.portal}`, { path: jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg), 'portals') });
  tpg.portals.splice(i, 1);
  return { doc };
};

// ---------------------------------------------------------------------------
// LUNs

const lunAdd: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, backstore: z.string(), lun: lunNumber.optional() }), params);
  const { key, tpg } = getTpg(doc, p.iqn, p.tpg);
  requireBackstore(doc, p.backstore);
  let lun = p.lun;
  if (lun === undefined) {
    lun = 0;
    while (String(lun) in tpg.luns) lun++;
    if (lun > 16383) throw new ControlError('ERR_INVALID_PARAMS', `TPG ${p.tpg} of ${key} has no free LUN number`);
  } else if (String(lun) in tpg.luns) {
    throw new ControlError('ERR_EXISTS', `TPG ${p.tpg} of ${key} already has LUN ${lun} (backstore "${tpg.luns[String(lun)]}")`, {
      path: jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg), 'luns', String(lun)),
    });
  }
  tpg.luns[String(lun)] = p.backstore;
  return { doc, result: { lun } };
};

const lunDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, lun: lunNumber, force: z.boolean().default(false) }), params);
  const { key, tpg } = getTpg(doc, p.iqn, p.tpg);
  const path = jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg), 'luns', String(p.lun));
  if (!(String(p.lun) in tpg.luns)) throw new ControlError('ERR_NOT_FOUND', `TPG ${p.tpg} of ${key} has no LUN ${p.lun}`, { path });
  const mappedBy: Array<[AclDoc, string, string]> = [];
  for (const [initiator, acl] of Object.entries(tpg.acls)) {
    for (const [m, v] of Object.entries(acl.mappedLuns)) if (v.tpgLun === p.lun) mappedBy.push([acl, initiator, m]);
  }
  if (mappedBy.length && !p.force) {
    const who = mappedBy.map(([, i, m]) => `${i} (mapped LUN ${m})`).join(', ');
    throw new ControlError('ERR_IN_USE', `LUN ${p.lun} of ${key} tpg ${p.tpg} is mapped by the ACL of ${who}; unmap it first or use force`, { path });
  }
  for (const [acl, , m] of mappedBy) delete acl.mappedLuns[m];
  delete tpg.luns[String(p.lun)];
  return { doc };
};

// ---------------------------------------------------------------------------
// ACLs

const chapParam = ChapSecretSchema.nullable().optional();

function setChap(acl: { chap?: ChapDoc; mutualChap?: ChapDoc }, which: 'chap' | 'mutualChap', v: ChapDoc | null | undefined): void {
  if (v === null) delete acl[which];
  else if (v !== undefined) acl[which] = { userid: v.userid, password: v.password };
}

const aclAdd: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, initiator: iscsiName, chap: chapParam, mutualChap: chapParam }), params);
  const { key, tpg } = getTpg(doc, p.iqn, p.tpg);
  const existing = aclKey(tpg, p.initiator);
  if (existing !== undefined) {
    throw new ControlError('ERR_EXISTS', `TPG ${p.tpg} of ${key} already has an ACL for ${existing}`, { path: jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg), 'acls', existing) });
  }
  const acl: AclDoc = { mappedLuns: {} };
  setChap(acl, 'chap', p.chap);
  setChap(acl, 'mutualChap', p.mutualChap);
  tpg.acls[p.initiator] = acl;
  return { doc };
};

const aclDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, initiator: z.string() }), params);
  getAcl(doc, p.iqn, p.tpg, p.initiator);
  const { tpg } = getTpg(doc, p.iqn, p.tpg);
  delete tpg.acls[aclKey(tpg, p.initiator)!];
  return { doc };
};

const aclChap: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, initiator: z.string(), chap: chapParam, mutualChap: chapParam }), params);
  const { acl } = getAcl(doc, p.iqn, p.tpg, p.initiator);
  setChap(acl, 'chap', p.chap);
  setChap(acl, 'mutualChap', p.mutualChap);
  return { doc };
};

const aclMap: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, initiator: z.string(), mappedLun: lunNumber, tpgLun: lunNumber, readOnly: z.boolean().default(false) }), params);
  const { acl, path } = getAcl(doc, p.iqn, p.tpg, p.initiator);
  const { key, tpg } = getTpg(doc, p.iqn, p.tpg);
  if (!(String(p.tpgLun) in tpg.luns)) {
    throw new ControlError('ERR_NOT_FOUND', `TPG ${p.tpg} of ${key} has no LUN ${p.tpgLun}`, { path: jsonPath('iscsi', 'targets', key, 'tpgs', String(p.tpg), 'luns', String(p.tpgLun)) });
  }
  if (String(p.mappedLun) in acl.mappedLuns) {
    throw new ControlError('ERR_EXISTS', `mapped LUN ${p.mappedLun} already exists (TPG LUN ${acl.mappedLuns[String(p.mappedLun)].tpgLun})`, { path: `${path}.mappedLuns["${p.mappedLun}"]` });
  }
  acl.mappedLuns[String(p.mappedLun)] = { tpgLun: p.tpgLun, readOnly: p.readOnly };
  return { doc };
};

const aclUnmap: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, initiator: z.string(), mappedLun: lunNumber }), params);
  const { acl, path } = getAcl(doc, p.iqn, p.tpg, p.initiator);
  if (!(String(p.mappedLun) in acl.mappedLuns)) throw new ControlError('ERR_NOT_FOUND', `no mapped LUN ${p.mappedLun}`, { path: `${path}.mappedLuns["${p.mappedLun}"]` });
  delete acl.mappedLuns[String(p.mappedLun)];
  return { doc };
};

// ---------------------------------------------------------------------------
// Attributes and parameters

const boolValue = z.union([
  z.boolean(),
  z.enum(['true', 'false', 'yes', 'no', '1', '0', 'on', 'off']).transform((v) => ['true', 'yes', '1', 'on'].includes(v)),
  z.union([z.literal(0), z.literal(1)]).transform((v) => v === 1),
]);

function intValue(min: number, max: number): z.ZodType<number> {
  return z
    .union([z.number(), z.string().regex(/^\d+$/, 'a whole number').transform(Number)])
    .pipe(z.number().int().min(min, `at least ${min}`).max(max, `at most ${max}`));
}

/** Attribute name -> value check (ranges as in config-schema.ts). */
const ATTRIBUTES: Record<keyof TpgAttributesDoc, z.ZodType<boolean | number>> = {
  authentication: boolValue,
  generateNodeAcls: boolValue,
  demoModeWriteProtect: boolValue,
  defaultCmdsnDepth: intValue(1, 512),
  loginTimeout: intValue(1, 600),
  nopInInterval: intValue(0, 3600),
  nopInTimeout: intValue(1, 3600),
};

const attributeSet: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, name: z.string(), value: z.unknown() }), params);
  const check = (ATTRIBUTES as Record<string, z.ZodType<boolean | number> | undefined>)[p.name];
  if (!check) throw new ControlError('ERR_INVALID_PARAMS', `unknown TPG attribute "${p.name}" (known: ${Object.keys(ATTRIBUTES).join(', ')})`);
  const v = check.safeParse(p.value);
  if (!v.success) throw new ControlError('ERR_INVALID_PARAMS', `attribute ${p.name}: ${v.error.issues[0].message}`);
  const { tpg } = getTpg(doc, p.iqn, p.tpg);
  (tpg.attributes as unknown as Record<string, boolean | number>)[p.name] = v.data;
  return { doc };
};

const parameterSet: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ ...tpgRef, name: z.string(), value: z.union([z.string(), z.number(), z.null()]) }), params);
  if (!KEYS.has(p.name)) throw new ControlError('ERR_INVALID_PARAMS', `"${p.name}" is not an iSCSI login key (RFC 7143 §13)`);
  const { tpg } = getTpg(doc, p.iqn, p.tpg);
  if (p.value === null) delete tpg.parameters[p.name];
  else tpg.parameters[p.name] = String(p.value);
  return { doc };
};

const discoveryAuthSet: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ enabled: z.boolean(), chap: chapParam, mutualChap: chapParam }), params);
  const d = doc.iscsi.discoveryAuth ?? { enabled: false };
  d.enabled = p.enabled;
  setChap(d, 'chap', p.chap);
  setChap(d, 'mutualChap', p.mutualChap);
  doc.iscsi.discoveryAuth = d;
  return { doc };
};

// ---------------------------------------------------------------------------
// NBD exports

const nbdExportAdd: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ name: z.string().min(0).max(4096), backstore: z.string(), readOnly: z.boolean().default(false), description: z.string().max(4096).optional() }), params);
  requireBackstore(doc, p.backstore);
  doc.nbd ??= { listen: ['127.0.0.1:10809'], exports: {} };
  if (p.name in doc.nbd.exports) throw new ControlError('ERR_EXISTS', `an NBD export named "${p.name}" already exists`, { path: jsonPath('nbd', 'exports', p.name) });
  doc.nbd.exports[p.name] = { backstore: p.backstore, readOnly: p.readOnly, ...(p.description !== undefined ? { description: p.description } : {}) };
  return { doc };
};

const nbdExportDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ name: z.string() }), params);
  if (!doc.nbd || !(p.name in doc.nbd.exports)) throw new ControlError('ERR_NOT_FOUND', `no NBD export named "${p.name}"`, { path: jsonPath('nbd', 'exports', p.name) });
  delete doc.nbd.exports[p.name];
  return { doc };
};

// ---------------------------------------------------------------------------
// FUSE exports (a LUN as a file under a mount directory)

/** Where a FUSE export goes when the request names no mount directory. */
export const DEFAULT_FUSE_MOUNTPOINT = '/run/lunkit/fuse';

const fuseMountpoint = z.string().regex(/^\/./, 'FUSE mount points are absolute paths');

const fuseExportAdd: ConfigOp = (doc, params) => {
  const p = parseParams(
    z.object({ name: z.string().regex(/^[^/\0]{1,255}$/, 'a file name without "/"'), backstore: z.string(), mountpoint: fuseMountpoint.optional(), readOnly: z.boolean().default(false) }),
    params,
  );
  if (p.name === '.' || p.name === '..') throw new ControlError('ERR_INVALID_PARAMS', 'params.name: cannot be "." or ".."');
  requireBackstore(doc, p.backstore);
  doc.fuse ??= {};
  // Without a mount directory: the only one there is, or the default.
  const mounts = Object.keys(doc.fuse);
  const mnt = p.mountpoint ?? (mounts.length === 1 ? mounts[0] : DEFAULT_FUSE_MOUNTPOINT);
  const m = (doc.fuse[mnt] ??= { exports: {}, directIo: false, allowOther: false });
  if (p.name in m.exports) throw new ControlError('ERR_EXISTS', `a FUSE export named "${p.name}" already exists in ${mnt}`, { path: jsonPath('fuse', mnt, 'exports', p.name) });
  m.exports[p.name] = { backstore: p.backstore, readOnly: p.readOnly };
  return { doc, result: { mountpoint: mnt, file: `${mnt}/${p.name}` } };
};

const fuseExportDelete: ConfigOp = (doc, params) => {
  const p = parseParams(z.object({ name: z.string(), mountpoint: fuseMountpoint.optional() }), params);
  const candidates = Object.entries(doc.fuse ?? {}).filter(([mnt, m]) => (p.mountpoint === undefined || mnt === p.mountpoint) && p.name in m.exports);
  if (candidates.length === 0) throw new ControlError('ERR_NOT_FOUND', `no FUSE export named "${p.name}"`, { path: jsonPath('fuse') });
  if (candidates.length > 1) throw new ControlError('ERR_INVALID_PARAMS', `"${p.name}" is exported in ${candidates.map(([m]) => m).join(' and ')}: name the mountpoint`);
  const [mnt, m] = candidates[0];
  delete m.exports[p.name];
  // An empty mount directory is unmounted.
  if (Object.keys(m.exports).length === 0) delete doc.fuse![mnt];
  if (Object.keys(doc.fuse!).length === 0) delete doc.fuse;
  return { doc };
};

const configClear: ConfigOp = (doc, params) => {
  parseParams(z.object({}), params);
  // Everything goes, the NBD listener and discovery authentication too (targetcli clearconfig).
  return { doc: emptyConfigDoc() };
};

/** Every configuration-changing method but config.replace (which the daemon handles: it migrates and validates the given document). */
export const CONFIG_OPS: Readonly<Record<string, ConfigOp>> = {
  'config.clear': configClear,
  'backstore.create': backstoreCreate,
  'backstore.delete': backstoreDelete,
  'backstore.resize': backstoreResize,
  'target.create': targetCreate,
  'target.delete': targetDelete,
  'tpg.create': tpgCreate,
  'tpg.delete': tpgDelete,
  'portal.add': portalAdd,
  'portal.delete': portalDelete,
  'lun.add': lunAdd,
  'lun.delete': lunDelete,
  'acl.add': aclAdd,
  'acl.delete': aclDelete,
  'acl.chap': aclChap,
  'acl.map': aclMap,
  'acl.unmap': aclUnmap,
  'attribute.set': attributeSet,
  'parameter.set': parameterSet,
  'discoveryAuth.set': discoveryAuthSet,
  'nbd.export.add': nbdExportAdd,
  'nbd.export.delete': nbdExportDelete,
  'fuse.export.add': fuseExportAdd,
  'fuse.export.delete': fuseExportDelete,
};
