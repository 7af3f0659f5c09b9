// Access control: which initiators may log in to a TPG and which LUNs they see.
// LIO semantics: an explicit node ACL wins; without one, demo mode
// (generateNodeAcls) lets any initiator in with every TPG LUN, read-only when
// demoModeWriteProtect is set.
//
// Each session's nexus holds a SessionLunMap: a snapshot of what its
// initiator sees, replaced by the server when the configuration changes
// (live-update.ts). A snapshot, not a live read of the config, so that the
// server knows exactly which LUNs appeared or went away (REPORTED LUNS DATA
// HAS CHANGED, draining a removed LUN) and get() is one Map lookup per command.

import type { LunMap, LunMapping } from '../../core/types.js';
import type { AclConfig, TpgConfig } from './config.js';

/** iSCSI names compare case-insensitively (RFC 3722 stringprep lower-cases them). */
export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export function findAcl(tpg: TpgConfig, initiator: string): AclConfig | undefined {
  return tpg.acls.find((a) => sameName(a.initiator, initiator));
}

/** May this initiator log in to a normal session on this TPG? */
export function initiatorAllowed(tpg: TpgConfig, initiator: string): boolean {
  return findAcl(tpg, initiator) !== undefined || tpg.attributes.generateNodeAcls;
}

/** The LUNs one initiator sees on one TPG now: LUN number -> mapping. */
export function computeLuns(tpg: TpgConfig, initiator: string): Map<number, LunMapping> {
  const out = new Map<number, LunMapping>();
  const acl = findAcl(tpg, initiator);
  if (acl) {
    for (const m of acl.mappedLuns) {
      const l = tpg.luns.find((x) => x.lun === m.tpgLun);
      if (l) out.set(m.mappedLun, { device: l.device, readOnly: m.readOnly });
    }
  } else if (tpg.attributes.generateNodeAcls) {
    for (const l of tpg.luns) out.set(l.lun, { device: l.device, readOnly: tpg.attributes.demoModeWriteProtect });
  }
  return out;
}

/** The LunMap of one session's nexus; the server swaps its content on live changes. */
export class SessionLunMap implements LunMap {
  private map: ReadonlyMap<number, LunMapping>;
  private sorted: number[];

  constructor(initial: ReadonlyMap<number, LunMapping>) {
    this.map = initial;
    this.sorted = sortedKeys(initial);
  }

  get(lun: number): LunMapping | undefined {
    return this.map.get(lun);
  }

  list(): number[] {
    return this.sorted.slice();
  }

  /** The current mappings (not to be mutated). */
  current(): ReadonlyMap<number, LunMapping> {
    return this.map;
  }

  replace(next: ReadonlyMap<number, LunMapping>): void {
    this.map = next;
    this.sorted = sortedKeys(next);
  }
}

function sortedKeys(m: ReadonlyMap<number, LunMapping>): number[] {
  return [...m.keys()].sort((a, b) => a - b);
}
