// A boot lab in the configuration is a few decisions (golden image, address,
// clients by MAC); the iSCSI objects that serve it are derived here, every time
// the configuration is applied: per client a qcow2 overlay backstore whose
// backing file is the client's golden image, and per lab one target whose TPG
// has a LUN per client and an ACL per client mapping that LUN as LUN 0 (LIO's
// mapped LUNs), so every client logs in to the same target and sees only its
// own disk. The runtime applies the expanded configuration like any other;
// the saved document keeps only the `bootlabs` section.

import { clientBackstoreName, clientInitiatorIqn, labBackstorePrefix, labTargetIqn, overlayPath } from '../bootlab/names.js';
import type { BootlabConfig, BootlabsConfig } from '../bootlab/schema.js';
import { BackstoreSchema, TargetSchema, type LunkitConfig } from './config-schema.js';

type Target = LunkitConfig['iscsi']['targets'][string];
type Backstore = LunkitConfig['backstores'][string];

/** The backstores and target one lab derives. */
export function labObjects(lab: string, l: BootlabConfig): { backstores: Record<string, Backstore>; target: { iqn: string; config: Target } } {
  const backstores: Record<string, Backstore> = {};
  const luns: Record<string, string> = {};
  const acls: Record<string, unknown> = {};
  for (const c of Object.values(l.clients)) {
    const bs = clientBackstoreName(lab, c.name);
    backstores[bs] = BackstoreSchema.parse({
      type: 'qcow2',
      path: overlayPath(l.dir, c.name, c.generation),
      create: true,
      backing: c.golden,
      backingFormat: c.goldenFormat,
    });
    luns[String(c.lun)] = bs;
    acls[clientInitiatorIqn(lab, c.name)] = {
      mappedLuns: { 0: { tpgLun: c.lun, readOnly: false } },
      ...(l.chap && c.chap ? { chap: c.chap } : {}),
    };
  }
  const config = TargetSchema.parse({
    alias: `lunkit boot lab ${lab}`,
    tpgs: {
      1: {
        portals: [`${l.listen}:${l.ports.iscsi}`],
        luns,
        acls,
        // iPXE and the booted OS log in with one connection at ERL 0; nothing to opt into.
        attributes: { authentication: l.chap },
      },
    },
  });
  return { backstores, target: { iqn: labTargetIqn(lab), config } };
}

/** The configuration with every lab's derived objects added (the runtime's view). */
export function expandBootlabs(cfg: LunkitConfig): LunkitConfig {
  if (!cfg.bootlabs || Object.keys(cfg.bootlabs).length === 0) return cfg;
  const backstores = { ...cfg.backstores };
  const targets = { ...cfg.iscsi.targets };
  for (const [lab, l] of Object.entries(cfg.bootlabs)) {
    const objs = labObjects(lab, l);
    Object.assign(backstores, objs.backstores);
    targets[objs.target.iqn] = objs.target.config;
  }
  return { ...cfg, backstores, iscsi: { ...cfg.iscsi, targets } };
}

/**
 * What is wrong with the bootlabs section beyond its schema: names a lab would
 * derive that the configuration already uses, clients that share a name or a
 * LUN, labs whose services would share a port. Each problem names its JSON path.
 */
export function bootlabProblems(cfg: LunkitConfig, pathOf: (p: ReadonlyArray<PropertyKey>) => string): string[] {
  const labs: BootlabsConfig = cfg.bootlabs ?? {};
  const problems: string[] = [];
  const targetKeys = new Set(Object.keys(cfg.iscsi.targets).map((k) => k.toLowerCase()));
  const udp = new Map<string, string>();
  const tcp = new Map<string, string>();
  for (const [lab, l] of Object.entries(labs)) {
    const base = ['bootlabs', lab];
    if (targetKeys.has(labTargetIqn(lab))) problems.push(`${pathOf(base)}: the lab's target ${labTargetIqn(lab)} is also defined in iscsi.targets`);
    const prefix = labBackstorePrefix(lab);
    for (const name of Object.keys(cfg.backstores)) {
      if (name.startsWith(prefix)) problems.push(`${pathOf(['backstores', name])}: backstore names starting with "${prefix}" belong to boot lab ${lab}`);
    }
    const names = new Map<string, string>();
    const luns = new Map<number, string>();
    for (const [mac, c] of Object.entries(l.clients)) {
      const other = names.get(c.name);
      if (other !== undefined) problems.push(`${pathOf([...base, 'clients', mac, 'name'])}: client name "${c.name}" is also used by ${other}`);
      names.set(c.name, mac);
      const lunOwner = luns.get(c.lun);
      if (lunOwner !== undefined) problems.push(`${pathOf([...base, 'clients', mac, 'lun'])}: LUN ${c.lun} is also used by ${lunOwner}`);
      luns.set(c.lun, mac);
      if (l.chap && !c.chap) problems.push(`${pathOf([...base, 'clients', mac])}: the lab has chap on but this client has no chap credentials`);
    }
    for (const [kind, map, p] of [
      ['HTTP', tcp, l.ports.http],
      ['TFTP', udp, l.ports.tftp],
    ] as const) {
      const key = `${l.listen}:${p}`;
      const other = map.get(key);
      if (other !== undefined) problems.push(`${pathOf([...base, 'ports'])}: ${kind} ${key} is also used by boot lab ${other}`);
      map.set(key, lab);
    }
    if (l.proxyDhcp !== undefined) {
      const other = udp.get(`dhcp:${l.proxyDhcp}`);
      if (other !== undefined) problems.push(`${pathOf([...base, 'proxyDhcp'])}: boot lab ${other} already answers proxy DHCP on ${l.proxyDhcp}`);
      udp.set(`dhcp:${l.proxyDhcp}`, lab);
    }
  }
  return problems;
}
