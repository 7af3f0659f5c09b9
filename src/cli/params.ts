// Command-line arguments -> control request params (docs/control-protocol.md
// "Methods"), one pure function per verb so each is tested without a daemon.
// Everything a user can get wrong locally (an iSCSI name, a size, a portal, a
// missing option) is refused here with a UsageError before anything is sent;
// the daemon checks again, since other programs talk to it too.

import { resolve } from 'node:path';

import type { BackstoreCliOption } from '../backstores/cli-options.js';
import { BACKSTORE_DESCRIPTORS, BACKSTORE_TYPES, findBackstoreType } from '../backstores/registry.js';
import { iscsiNameMessage } from '../protocols/iscsi/names.js';
import { parseSize } from '../util/size.js';
import { UsageError } from './output.js';

/** The registered backstore types, for `backstore create TYPE`. */
export { BACKSTORE_TYPES };

const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export function checkName(name: string, what: string): string {
  if (!NAME.test(name)) throw new UsageError('ERR_INVALID_NAME', `${what} "${name}": names use A-Z a-z 0-9 _ . : - (1 to 64 characters)`);
  return name;
}

export function checkIscsiName(name: string, role: string): string {
  const msg = iscsiNameMessage(name, role);
  if (msg) throw new UsageError('ERR_INVALID_NAME', msg);
  return name;
}

export function checkSize(input: string | number, what = 'size'): number {
  try {
    const bytes = parseSize(input);
    if (bytes === 0) throw new UsageError('ERR_INVALID_SIZE', `${what} must be greater than 0`);
    return bytes;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError('ERR_INVALID_SIZE', `${what}: ${(e as Error).message}`);
  }
}

function checkInt(v: number | undefined, what: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) throw new UsageError('ERR_INVALID_NUMBER', `${what} must be an integer ${min}..${max} (got ${v})`);
  return v;
}

/** "host:port", "[v6]:port" or "host" (port 3260), as the config file takes it. */
export function checkPortal(portal: string): string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(portal);
  if (!m || (m[3] !== undefined && Number(m[3]) > 65535)) {
    throw new UsageError('ERR_INVALID_PORTAL', `portal "${portal}" is not host:port (e.g. 127.0.0.1:3260, [::1]:3260)`);
  }
  return portal;
}

function checkTpg(tpg: number | undefined): number {
  return checkInt(tpg ?? 1, 'the TPG tag', 1, 65535) as number;
}

function checkLun(lun: number | undefined, what = 'the LUN'): number | undefined {
  return checkInt(lun, what, 0, 16383);
}

// --- backstores -------------------------------------------------------------

export interface BackstoreCreateArgs {
  type: string;
  name: string;
  size?: string;
  path?: string;
  thin?: boolean;
  blockSize?: number;
  url?: string;
  readOnly?: boolean;
  removable?: boolean;
  serial?: string;
  /** Directory relative file paths are resolved against (the daemon has its own cwd). */
  cwd?: string;
  /** Options of other backstore types, by option key (camelCase: chapUserid). */
  [option: string]: unknown;
}

/** Every option some backstore type takes, once each (in registry order). */
export function backstoreCliOptions(): BackstoreCliOption[] {
  const out = new Map<string, BackstoreCliOption>();
  for (const d of BACKSTORE_DESCRIPTORS) for (const o of d.cli.options) if (!out.has(o.key)) out.set(o.key, o);
  return [...out.values()];
}

/**
 * `backstore create TYPE NAME [options]`: the type's descriptor builds its
 * fields (src/backstores/registry.ts); what applies to every type is here.
 */
export function backstoreCreateParams(a: BackstoreCreateArgs): { name: string; backstore: Record<string, unknown> } {
  const d = findBackstoreType(a.type);
  if (!d) throw new UsageError('ERR_INVALID_TYPE', `unknown backstore type "${a.type}" (use ${BACKSTORE_TYPES.join(', ')})`);
  const type = d.type;
  checkName(a.name, 'backstore name');
  const takes = new Set(d.cli.options.map((o) => o.key));
  for (const o of backstoreCliOptions()) {
    if (a[o.key] !== undefined && !takes.has(o.key)) throw new UsageError('ERR_USAGE', `--${o.flag} does not apply to a ${type} backstore`);
  }
  const bs: Record<string, unknown> = {
    type,
    ...d.cli.params(a, {
      usage: (message) => new UsageError('ERR_USAGE', message),
      size: (input) => checkSize(input),
      absolute: (path) => resolve(a.cwd ?? process.cwd(), path),
    }),
  };
  if (a.blockSize !== undefined) {
    if (a.blockSize !== 512 && a.blockSize !== 4096) throw new UsageError('ERR_USAGE', `--block-size is 512 or 4096 (got ${a.blockSize})`);
    bs.blockSize = a.blockSize;
  }
  const blockSize = (bs.blockSize as number | undefined) ?? 512;
  if (typeof bs.size === 'number' && bs.size % blockSize !== 0) {
    throw new UsageError('ERR_INVALID_SIZE', `size ${bs.size} is not a multiple of the block size ${blockSize}`);
  }
  for (const o of d.cli.options) if (o.config !== undefined && a[o.key] !== undefined) bs[o.config] = a[o.key];
  return { name: a.name, backstore: bs };
}

export function backstoreResizeParams(a: { name: string; size: string }): { name: string; size: number } {
  return { name: checkName(a.name, 'backstore name'), size: checkSize(a.size) };
}

// --- targets, portals, LUNs --------------------------------------------------

export function targetCreateParams(a: { iqn: string; portal?: string[]; tpg?: number; alias?: string }): Record<string, unknown> {
  const p: Record<string, unknown> = { iqn: checkIscsiName(a.iqn, 'target name'), tpg: checkTpg(a.tpg) };
  if (a.portal && a.portal.length > 0) p.portals = a.portal.map(checkPortal);
  if (a.alias !== undefined) p.alias = a.alias;
  return p;
}

export function targetParams(a: { iqn: string }): { iqn: string } {
  return { iqn: checkIscsiName(a.iqn, 'target name') };
}

export function portalParams(a: { iqn: string; portal: string; tpg?: number }): { iqn: string; tpg: number; portal: string } {
  return { iqn: checkIscsiName(a.iqn, 'target name'), tpg: checkTpg(a.tpg), portal: checkPortal(a.portal) };
}

export function lunAddParams(a: { iqn: string; backstore: string; lun?: number; tpg?: number }): Record<string, unknown> {
  const p: Record<string, unknown> = {
    iqn: checkIscsiName(a.iqn, 'target name'),
    tpg: checkTpg(a.tpg),
    backstore: checkName(a.backstore, 'backstore name'),
  };
  const lun = checkLun(a.lun);
  if (lun !== undefined) p.lun = lun;
  return p;
}

export function lunDeleteParams(a: { iqn: string; lun: number; tpg?: number; force?: boolean }): Record<string, unknown> {
  const p: Record<string, unknown> = { iqn: checkIscsiName(a.iqn, 'target name'), tpg: checkTpg(a.tpg), lun: checkLun(a.lun) };
  if (a.force) p.force = true;
  return p;
}

// --- ACLs --------------------------------------------------------------------

export function aclParams(a: { iqn: string; initiator: string; tpg?: number }): { iqn: string; tpg: number; initiator: string } {
  return {
    iqn: checkIscsiName(a.iqn, 'target name'),
    tpg: checkTpg(a.tpg),
    initiator: checkIscsiName(a.initiator, 'initiator name'),
  };
}

export interface AclChapArgs {
  iqn: string;
  initiator: string;
  tpg?: number;
  userid?: string;
  password?: string;
  mutualUserid?: string;
  mutualPassword?: string;
  clear?: boolean;
}

function chapPair(userid: string | undefined, password: string | undefined, opt: string): { userid: string; password: string } | undefined {
  if (userid === undefined && password === undefined) return undefined;
  if (userid === undefined || password === undefined) {
    throw new UsageError('ERR_USAGE', `--${opt}userid and --${opt}password go together`);
  }
  if (userid.length === 0 || userid.length > 255) throw new UsageError('ERR_USAGE', `--${opt}userid must be 1 to 255 characters`);
  // RFC 7143 §9.2.1: a CHAP secret of at least 96 bits.
  if (password.length < 12 || password.length > 255) {
    throw new UsageError('ERR_USAGE', `--${opt}password must be 12 to 255 characters (RFC 7143 §9.2.1)`);
  }
  return { userid, password };
}

/** `acl chap`: chap/mutualChap objects to set, null to remove (--clear), absent to leave as they are. */
export function aclChapParams(a: AclChapArgs): Record<string, unknown> {
  const p: Record<string, unknown> = aclParams(a);
  const chap = chapPair(a.userid, a.password, '');
  const mutual = chapPair(a.mutualUserid, a.mutualPassword, 'mutual-');
  if (a.clear) {
    if (chap || mutual) throw new UsageError('ERR_USAGE', '--clear removes the credentials: give no userid/password with it');
    p.chap = null;
    p.mutualChap = null;
    return p;
  }
  if (!chap && !mutual) throw new UsageError('ERR_USAGE', 'give --userid and --password (and optionally --mutual-userid/--mutual-password), or --clear');
  if (chap) p.chap = chap;
  if (mutual) p.mutualChap = mutual;
  return p;
}

export function aclMapParams(a: { iqn: string; initiator: string; mappedLun: number; tpgLun: number; readOnly?: boolean; tpg?: number }): Record<string, unknown> {
  return {
    ...aclParams(a),
    mappedLun: checkLun(a.mappedLun, 'the mapped LUN'),
    tpgLun: checkLun(a.tpgLun, 'the TPG LUN'),
    readOnly: a.readOnly ?? false,
  };
}

export function aclUnmapParams(a: { iqn: string; initiator: string; mappedLun: number; tpg?: number }): Record<string, unknown> {
  return { ...aclParams(a), mappedLun: checkLun(a.mappedLun, 'the mapped LUN') };
}

// --- attributes and parameters -----------------------------------------------

/** TPG attributes (config-file names) and their types; targetcli's names are accepted too. */
export const TPG_ATTRIBUTES: Readonly<Record<string, { kind: 'boolean' } | { kind: 'integer'; min: number; max: number }>> = {
  authentication: { kind: 'boolean' },
  generateNodeAcls: { kind: 'boolean' },
  demoModeWriteProtect: { kind: 'boolean' },
  defaultCmdsnDepth: { kind: 'integer', min: 1, max: 512 },
  loginTimeout: { kind: 'integer', min: 1, max: 600 },
  nopInInterval: { kind: 'integer', min: 0, max: 3600 },
  nopInTimeout: { kind: 'integer', min: 1, max: 3600 },
};

const TARGETCLI_ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  generate_node_acls: 'generateNodeAcls',
  demo_mode_write_protect: 'demoModeWriteProtect',
  default_cmdsn_depth: 'defaultCmdsnDepth',
  login_timeout: 'loginTimeout',
  nopin_response_timeout: 'nopInTimeout',
  nopin_timeout: 'nopInInterval',
};

export function attributeName(name: string): string {
  const n = TARGETCLI_ATTRIBUTE_NAMES[name] ?? name;
  if (!(n in TPG_ATTRIBUTES)) throw new UsageError('ERR_USAGE', `unknown TPG attribute "${name}" (known: ${Object.keys(TPG_ATTRIBUTES).join(', ')})`);
  return n;
}

function attributeValue(name: string, raw: string): boolean | number {
  const spec = TPG_ATTRIBUTES[name];
  if (spec.kind === 'boolean') {
    const v = raw.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new UsageError('ERR_USAGE', `${name} is a boolean: use true/false, yes/no, on/off or 1/0 (got "${raw}")`);
  }
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < spec.min || n > spec.max) throw new UsageError('ERR_USAGE', `${name} is an integer ${spec.min}..${spec.max} (got "${raw}")`);
  return n;
}

function splitAssignment(s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new UsageError('ERR_USAGE', `"${s}" is not name=value`);
  return [s.slice(0, eq), s.slice(eq + 1)];
}

/** `set attribute|parameter IQN name=value...`: one request per assignment, in order. */
export function setParams(kind: 'attribute' | 'parameter', a: { iqn: string; assignments: string[]; tpg?: number }): Array<Record<string, unknown>> {
  const iqn = checkIscsiName(a.iqn, 'target name');
  const tpg = checkTpg(a.tpg);
  if (a.assignments.length === 0) throw new UsageError('ERR_USAGE', 'give at least one name=value');
  return a.assignments.map((s) => {
    const [rawName, raw] = splitAssignment(s);
    if (kind === 'attribute') {
      const name = attributeName(rawName);
      return { iqn, tpg, name, value: attributeValue(name, raw) };
    }
    // Login keys (RFC 7143 §13) are sent as text; the daemon knows the table.
    if (!/^[A-Za-z0-9.+@_-]{1,63}$/.test(rawName)) throw new UsageError('ERR_USAGE', `"${rawName}" is not a login key name (RFC 7143 §6.1)`);
    return { iqn, tpg, name: rawName, value: raw };
  });
}

export function discoveryAuthParams(a: {
  enable?: boolean;
  userid?: string;
  password?: string;
  mutualUserid?: string;
  mutualPassword?: string;
}): Record<string, unknown> {
  const chap = chapPair(a.userid, a.password, '');
  const mutual = chapPair(a.mutualUserid, a.mutualPassword, 'mutual-');
  const enabled = a.enable ?? chap !== undefined;
  if (enabled && !chap) throw new UsageError('ERR_USAGE', 'discovery authentication needs --userid and --password');
  if (mutual && !chap) throw new UsageError('ERR_USAGE', 'mutual CHAP needs --userid and --password too');
  const p: Record<string, unknown> = { enabled };
  if (chap) p.chap = chap;
  if (mutual) p.mutualChap = mutual;
  return p;
}

// --- NBD exports ---------------------------------------------------------------

export function nbdExportAddParams(a: { name: string; backstore: string; readOnly?: boolean; description?: string }): Record<string, unknown> {
  if (a.name.length === 0 || Buffer.byteLength(a.name) > 4096) throw new UsageError('ERR_INVALID_NAME', 'an NBD export name is 1 to 4096 bytes');
  const p: Record<string, unknown> = { name: a.name, backstore: checkName(a.backstore, 'backstore name'), readOnly: a.readOnly ?? false };
  if (a.description !== undefined) p.description = a.description;
  return p;
}

// --- configuration -------------------------------------------------------------

/** `save [file]`: the daemon writes the file, so a relative path is made absolute here. */
export function saveParams(a: { file?: string; cwd?: string }): { path?: string } {
  return a.file === undefined ? {} : { path: resolve(a.cwd ?? process.cwd(), a.file) };
}
