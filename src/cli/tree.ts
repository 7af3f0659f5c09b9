// `lunkit ls`: the configuration as a tree in the shape of targetcli's `ls`
//   o- / ............................................ [...]
//     o- backstores ................................. [...]
//     | o- file ...................... [Storage Objects: 1]
//     | | o- disk0 ............. [/srv/d.img (10G) thin]
// Pure functions over the config.get document, so the text is tested as golden text.

import { BACKSTORE_DESCRIPTORS, commonConfig, describeBackstore } from '../backstores/registry.js';
import type { ConfigDoc } from '../daemon/config-doc.js';
import { formatSize } from '../util/size.js';

export interface TreeNode {
  name: string;
  info: string;
  children: TreeNode[];
  /** The configuration fragment this node shows (`ls --json PATH` prints it). */
  data: unknown;
}

function node(name: string, info: string, data: unknown, children: TreeNode[] = []): TreeNode {
  return { name, info, data, children };
}

function byKey<T>(rec: Record<string, T> | undefined): Array<[string, T]> {
  // LUN numbers sort as numbers, names as text: the order targetcli shows.
  return Object.entries(rec ?? {}).sort(([a], [b]) => {
    const na = /^\d+$/.test(a);
    const nb = /^\d+$/.test(b);
    if (na && nb) return Number(a) - Number(b);
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

function sizeText(size: unknown): string {
  if (typeof size === 'number') return formatSize(size);
  if (typeof size === 'string') return size;
  return '?';
}

function portalText(p: unknown): string {
  if (typeof p === 'string') return p;
  if (p && typeof p === 'object' && 'host' in p && 'port' in p) {
    const { host, port } = p as { host: string; port: number };
    return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  if (p && typeof p === 'object' && 'path' in p) return `unix:${(p as { path: string }).path}`;
  return String(p);
}

type BackstoreDoc = ConfigDoc['backstores'][string];

function backstoreInfo(bs: BackstoreDoc): string {
  const c = commonConfig(bs);
  const summary = describeBackstore(bs);
  const parts: string[] = [];
  const size = c.size === undefined ? summary.unsized : sizeText(c.size);
  if (summary.where !== undefined) parts.push(size === undefined ? summary.where : `${summary.where} (${size})`);
  else if (size !== undefined) parts.push(size);
  parts.push(...(summary.flags ?? []));
  if (c.blockSize !== undefined && c.blockSize !== 512) parts.push(`bs=${c.blockSize}`);
  return parts.join(' ') + (c.readOnly ? ' ro' : '');
}

function lunBackstoreRef(ref: unknown): string {
  if (typeof ref === 'string') return ref;
  if (ref && typeof ref === 'object' && 'backstore' in ref) return String((ref as { backstore: unknown }).backstore);
  return String(ref);
}

function mappedLun(m: unknown): { tpgLun: number; readOnly: boolean } {
  if (typeof m === 'number') return { tpgLun: m, readOnly: false };
  const o = m as { tpgLun: number; readOnly?: boolean };
  return { tpgLun: o.tpgLun, readOnly: o.readOnly ?? false };
}

type TpgDoc = ConfigDoc['iscsi']['targets'][string]['tpgs'][string];

function tpgNode(tag: string, tpg: TpgDoc, backstores: ConfigDoc['backstores']): TreeNode {
  const attrs = tpg.attributes;
  const flags = [
    tpg.enabled === false ? 'disabled' : undefined,
    attrs?.generateNodeAcls ? 'gen-acls' : 'no-gen-acls',
    attrs?.authentication ? 'auth' : 'no-auth',
  ].filter((s): s is string => s !== undefined);
  const lunNodes = byKey(tpg.luns).map(([n, ref]) => {
    const bsName = lunBackstoreRef(ref);
    const bs = backstores[bsName];
    // A local path is worth showing here; a URL is on the backstore's own line.
    const summary = bs ? describeBackstore(bs) : undefined;
    const path = summary && !summary.remote ? summary.where : undefined;
    const where = bs ? `${bs.type}/${bsName}${path !== undefined ? ` (${path})` : ''}` : `${bsName} (missing)`;
    return node(`lun${n}`, where, ref);
  });
  const aclNodes = byKey(tpg.acls).map(([initiator, acl]) => {
    const maps = byKey(acl.mappedLuns as Record<string, unknown> | undefined).map(([ml, m]) => {
      const { tpgLun, readOnly } = mappedLun(m);
      const ref = tpg.luns?.[String(tpgLun)];
      return node(`mapped_lun${ml}`, `lun${tpgLun} ${ref === undefined ? '(missing)' : lunBackstoreRef(ref)} (${readOnly ? 'ro' : 'rw'})`, m);
    });
    const auth = acl.mutualChap ? ', mutual CHAP' : acl.chap ? ', CHAP' : '';
    return node(initiator, `Mapped LUNs: ${maps.length}${auth}`, acl, maps);
  });
  const portalNodes = (tpg.portals ?? []).map((p) => node(portalText(p), 'OK', p));
  return node(`tpg${tag}`, flags.join(', '), tpg, [
    node('acls', `ACLs: ${aclNodes.length}`, tpg.acls, aclNodes),
    node('luns', `LUNs: ${lunNodes.length}`, tpg.luns, lunNodes),
    node('portals', `Portals: ${portalNodes.length}`, tpg.portals, portalNodes),
  ]);
}

/** The whole tree of a configuration document. */
export function buildTree(cfg: ConfigDoc): TreeNode {
  const backstores = cfg.backstores ?? {};
  // Like targetcli's plugin directories, the types LIO also has are listed even
  // when empty; the others (remote NBD, iSCSI) once they hold a backstore.
  const typeNodes = BACKSTORE_DESCRIPTORS.flatMap((d) => {
    const items = byKey(backstores).filter(([, bs]) => bs.type === d.type);
    if (items.length === 0 && d.targetcli.toLio === undefined) return [];
    const data = Object.fromEntries(items);
    return [node(d.type, `Storage Objects: ${items.length}`, data, items.map(([n, bs]) => node(n, backstoreInfo(bs), bs)))];
  });
  const targets = byKey(cfg.iscsi?.targets);
  const targetNodes = targets.map(([iqn, t]) => {
    const tpgs = byKey(t.tpgs).map(([tag, tpg]) => tpgNode(tag, tpg, backstores));
    return node(iqn, `${t.alias ? `${t.alias}, ` : ''}TPGs: ${tpgs.length}`, t, tpgs);
  });
  const da = cfg.iscsi?.discoveryAuth;
  const iscsiInfo = `Targets: ${targetNodes.length}${da?.enabled ? `, discovery auth${da.mutualChap ? ' (mutual)' : ''}` : ''}`;
  const nbd = cfg.nbd;
  const exportNodes = byKey(nbd?.exports).map(([name, e]) =>
    node(name, `${e.backstore}${e.readOnly ? ' (ro)' : ''}${e.description ? ` "${e.description}"` : ''}`, e),
  );
  const nbdInfo = nbd ? `listen ${(nbd.listen ?? []).map(portalText).join(' ')}${nbd.tls ? ', TLS' : ''}` : 'not serving';
  const children = [
    node('backstores', '...', backstores, typeNodes),
    node('iscsi', iscsiInfo, cfg.iscsi, targetNodes),
    node('nbd', nbdInfo, nbd ?? null, [node('exports', `Exports: ${exportNodes.length}`, nbd?.exports ?? {}, exportNodes)]),
  ];
  // FUSE mounts only appear once there is one (a mount directory is a path, so it is shown whole).
  if (cfg.fuse) {
    const mounts = byKey(cfg.fuse).map(([mnt, m]) =>
      node(mnt, `Files: ${Object.keys(m.exports).length}${m.directIo ? ', direct_io' : ''}`, m,
        byKey(m.exports).map(([name, e]) => node(name, `${e.backstore}${e.readOnly ? ' (ro)' : ''}`, e))),
    );
    children.push(node('fuse', `Mounts: ${mounts.length}`, cfg.fuse, mounts));
  }
  // Boot labs likewise; their overlays and target are derived, so only the lab's own decisions show.
  if (cfg.bootlabs) {
    const labs = byKey(cfg.bootlabs).map(([name, l]) =>
      node(name, `${l.listen}, golden ${l.golden}, clients: ${Object.keys(l.clients).length}${l.proxyDhcp ? `, proxy DHCP on ${l.proxyDhcp}` : ''}`, l,
        byKey(l.clients).map(([mac, c]) => node(c.name, `${mac}, LUN ${c.lun}${c.resetOnBoot ? ', reset on boot' : ''}${c.golden !== l.golden ? `, golden ${c.golden}` : ''}`, c))),
    );
    children.push(node('bootlabs', `Labs: ${labs.length}`, cfg.bootlabs, labs));
  }
  return node('/', '...', cfg, children);
}

/** The node at a path such as /iscsi/iqn.../tpg1/luns; undefined if there is none. */
export function findNode(root: TreeNode, path: string): TreeNode | undefined {
  let cur: TreeNode | undefined = root;
  for (const part of path.split('/').filter((p) => p.length > 0)) {
    cur = cur.children.find((c) => c.name === part);
    if (!cur) return undefined;
  }
  return cur;
}

/** Renders a node and everything below it, each line filled with dots to `width` columns. */
export function renderTree(root: TreeNode, width = 80): string {
  const lines: string[] = [];
  const walk = (n: TreeNode, indent: string, last: boolean): void => {
    const left = `${indent}o- ${n.name} `;
    const right = ` [${n.info}]`;
    const dots = Math.max(3, width - left.length - right.length);
    lines.push(`${left}${'.'.repeat(dots)}${right}`);
    // Children sit two columns in; a "|" continues the line of a node that
    // still has siblings below it (targetcli's layout).
    const childIndent = indent + (last ? '  ' : '| ');
    n.children.forEach((c, i) => walk(c, childIndent, i === n.children.length - 1));
  };
  walk(root, '', true);
  return `${lines.join('\n')}\n`;
}
