// Access control: which initiators may log in to a TPG and which LUNs they see.
// LIO semantics: an explicit node ACL wins; without one, demo mode
// (generateNodeAcls) lets any initiator in with every TPG LUN, read-only when
// demoModeWriteProtect is set. The LunMap reads the TPG config on every call,
// so a LUN added to or removed from the config shows up live.

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

/** Live LUN map of one initiator on one TPG. */
export function makeLunMap(tpg: TpgConfig, initiator: string): LunMap {
  const lookup = (): Map<number, LunMapping> => {
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
  };
  return {
    // get() runs for every command: scan the (short) config lists, no Map.
    get(lun: number): LunMapping | undefined {
      const acl = findAcl(tpg, initiator);
      if (acl) {
        const m = acl.mappedLuns.find((x) => x.mappedLun === lun);
        if (!m) return undefined;
        const l = tpg.luns.find((x) => x.lun === m.tpgLun);
        return l ? { device: l.device, readOnly: m.readOnly } : undefined;
      }
      if (!tpg.attributes.generateNodeAcls) return undefined;
      const l = tpg.luns.find((x) => x.lun === lun);
      return l ? { device: l.device, readOnly: tpg.attributes.demoModeWriteProtect } : undefined;
    },
    list(): number[] {
      return [...lookup().keys()].sort((a, b) => a - b);
    },
  };
}
