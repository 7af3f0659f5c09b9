// Flattens a saveconfig.json document into "path -> leaf value", matching list
// items by the key rtslib identifies them with (not by position), so two
// documents compare key by key and a difference names its path, e.g.
//   targets[iqn.2003-01.org.example:t1].tpgs[1].luns[0].storage_object

const IDENTITY: Partial<Record<string, (o: Record<string, unknown>) => string>> = {
  storage_objects: (o) => `${String(o.plugin)}/${String(o.name)}`,
  targets: (o) => String(o.wwn),
  tpgs: (o) => String(o.tag),
  luns: (o) => String(o.index),
  portals: (o) => `${String(o.ip_address)}:${String(o.port)}`,
  node_acls: (o) => String(o.node_wwn),
  mapped_luns: (o) => String(o.index),
  fabric_modules: (o) => String(o.name),
  alua_tpgs: (o) => String(o.name),
};

export function leaves(v: unknown, path = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (Array.isArray(v)) {
    const key = path.split('.').pop()?.replace(/\[.*$/, '') ?? '';
    const id = IDENTITY[key];
    if (v.length === 0) out.set(path, '(empty list)');
    v.forEach((item, i) => {
      const label = id && typeof item === 'object' && item !== null ? id(item as Record<string, unknown>) : String(i);
      leaves(item, `${path}[${label}]`, out);
    });
  } else if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v);
    if (entries.length === 0) out.set(path, '(empty object)');
    for (const [k, child] of entries) leaves(child, path ? `${path}.${k}` : k, out);
  } else {
    out.set(path, v);
  }
  return out;
}
