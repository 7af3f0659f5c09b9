// What applying one configuration document onto another would do, per object:
// `lunkit diff` prints it and `lunkit apply` shows it before converging.
//
// Both sides are canonical documents (config-doc.ts: every default filled in,
// one spelling per value), so "equal" is key-by-key JSON equality and the diff
// never reports a default the file left out. An object is a member of one of
// the configuration's collections (a backstore, a target, a TPG, a LUN, an
// ACL, a mapped LUN, an NBD export, a FUSE mount or file, a boot lab) or one
// of the sections without a name (iscsi.discoveryAuth, nbd, limits). Its
// plain fields are compared leaf by leaf; its sub-collections are objects of
// their own, so adding an ACL lists the ACL, not the TPG around it. Paths are
// written as config errors write them (backstores.disk0,
// iscsi.targets["iqn..."].tpgs["1"].acls["iqn..."]). Secrets (any field named
// password or secret) are masked in every value the diff returns.

/** How a document's objects nest: each key names a collection (members are objects) or a section. */
interface Shape {
  collections?: Record<string, Shape>;
  sections?: Record<string, Shape>;
}

const LEAF: Shape = {};
const ACL: Shape = { collections: { mappedLuns: LEAF } };
const TPG: Shape = { collections: { luns: LEAF, acls: ACL } };
const TARGET: Shape = { collections: { tpgs: TPG } };
const DOC: Shape = {
  collections: {
    backstores: LEAF,
    fuse: { collections: { exports: LEAF } },
    bootlabs: LEAF,
  },
  sections: {
    iscsi: { collections: { targets: TARGET }, sections: { discoveryAuth: LEAF } },
    nbd: { collections: { exports: LEAF } },
    limits: LEAF,
  },
};

export const MASK = '********';

export interface FieldChange {
  /** The field inside the object (e.g. "attributes.nopInInterval"); "" when the object is a plain value (a LUN's backstore). */
  field: string;
  /** Absent when the field is new. */
  old?: unknown;
  /** Absent when the field is gone. */
  new?: unknown;
}

export type ConfigChange =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string; value: unknown }
  | { op: 'change'; path: string; fields: FieldChange[] };

export interface ConfigDiff {
  changes: ConfigChange[];
  summary: { add: number; change: number; remove: number };
}

type Key = string;

/** A JSON path as config errors write it (config.ts pathOf). */
export function pathOf(parts: readonly Key[]): string {
  let out = '';
  for (const p of parts) {
    if (/^[A-Za-z_$][\w$]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out || '(top level)';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSecretKey(k: string): boolean {
  return /password|secret/i.test(k);
}

/** A copy of `v` with every secret field's value replaced by MASK. */
export function maskSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(maskSecrets);
  if (!isRecord(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = isSecretKey(k) && x !== undefined ? MASK : maskSecrets(x);
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Leaf-by-leaf differences of two plain values (records are walked, arrays compared whole). */
function fieldChanges(prefix: Key[], a: unknown, b: unknown, out: FieldChange[], secret: boolean): void {
  if (same(a, b)) return;
  if (isRecord(a) && isRecord(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) fieldChanges([...prefix, k], a[k], b[k], out, secret || isSecretKey(k));
    return;
  }
  const c: FieldChange = { field: prefix.join('.') };
  if (a !== undefined) c.old = secret ? MASK : maskSecrets(a);
  if (b !== undefined) c.new = secret ? MASK : maskSecrets(b);
  out.push(c);
}

function diffObject(path: Key[], shape: Shape, a: unknown, b: unknown, out: ConfigChange[]): void {
  if (same(a, b)) return;
  if (a === undefined) {
    out.push({ op: 'add', path: pathOf(path), value: maskSecrets(b) });
    return;
  }
  if (b === undefined) {
    out.push({ op: 'remove', path: pathOf(path), value: maskSecrets(a) });
    return;
  }
  const nested = new Set([...Object.keys(shape.collections ?? {}), ...Object.keys(shape.sections ?? {})]);
  const fields: FieldChange[] = [];
  if (isRecord(a) && isRecord(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!nested.has(k)) fieldChanges([k], a[k], b[k], fields, isSecretKey(k));
    }
  } else {
    fieldChanges([], a, b, fields, false);
  }
  // The object's own fields first, then what it holds.
  if (fields.length > 0) out.push({ op: 'change', path: pathOf(path), fields });
  if (!isRecord(a) || !isRecord(b)) return;
  // In the documents' key order (canonical: backstores, iscsi, nbd, fuse, bootlabs).
  for (const k of new Set([...Object.keys(b), ...Object.keys(a)])) {
    const sec = shape.sections?.[k];
    if (sec) diffObject([...path, k], sec, a[k], b[k], out);
    const s = shape.collections?.[k];
    if (!s) continue;
    const ca = isRecord(a[k]) ? a[k] : {};
    const cb = isRecord(b[k]) ? b[k] : {};
    // Removals first, then changes and additions in the file's order.
    for (const name of Object.keys(ca)) if (!(name in cb)) diffObject([...path, k, name], s, ca[name], undefined, out);
    for (const name of Object.keys(cb)) diffObject([...path, k, name], s, ca[name], cb[name], out);
  }
}

/** What turning canonical document `from` into `to` adds, changes and removes, object by object. */
export function diffConfig(from: unknown, to: unknown): ConfigDiff {
  const changes: ConfigChange[] = [];
  diffObject([], DOC, from, to, changes);
  const summary = { add: 0, change: 0, remove: 0 };
  for (const c of changes) summary[c.op]++;
  return { changes, summary };
}

function show(v: unknown): string {
  return v === undefined ? '(none)' : JSON.stringify(v);
}

/** The diff as lines: `+ path value`, `~ path` with `field: old -> new` below, `- path`. */
export function renderDiff(d: ConfigDiff): string {
  const lines: string[] = [];
  for (const c of d.changes) {
    if (c.op === 'add') lines.push(`+ ${c.path} ${show(c.value)}`);
    else if (c.op === 'remove') lines.push(`- ${c.path}`);
    else if (c.fields.length === 1 && c.fields[0].field === '') lines.push(`~ ${c.path}: ${show(c.fields[0].old)} -> ${show(c.fields[0].new)}`);
    else {
      lines.push(`~ ${c.path}`);
      for (const f of c.fields) lines.push(`    ${f.field}: ${show(f.old)} -> ${show(f.new)}`);
    }
  }
  const { add, change, remove } = d.summary;
  lines.push(d.changes.length === 0 ? 'No changes.' : `${add} to add, ${change} to change, ${remove} to remove.`);
  return lines.join('\n');
}
