// How a boot lab names what it derives from the operator's few decisions: the
// lab target, each client's initiator name (set by its iPXE script with
// `set initiator-iqn`, so the iBFT hands the same name to the booted OS), the
// overlay backstore and its file. One place, so the script, the ACL and the
// status agree.

import { join } from 'node:path';

/** Naming authority of every IQN lunkit makes up (RFC 3720 §3.2.6.3.1). */
const AUTHORITY = 'iqn.2026-11.io.lunkit';

/**
 * The canonical MAC (aa:bb:cc:dd:ee:ff) of what an operator or a URL gives:
 * colons, hyphens (iPXE's ${mac:hexhyp}), or 12 bare hex digits, any case.
 * undefined when it is none of these.
 */
export function parseMac(input: string): string | undefined {
  const s = input.trim().toLowerCase();
  let hex: string | undefined;
  if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/.test(s)) hex = s.replace(/[:-]/g, '');
  else if (/^[0-9a-f]{12}$/.test(s)) hex = s;
  if (hex === undefined) return undefined;
  // Multicast (group) addresses are never a NIC's own.
  if ((parseInt(hex.slice(0, 2), 16) & 1) === 1) return undefined;
  return hex.match(/../g)!.join(':');
}

/** The name a client gets when the operator gives none: its MAC with hyphens. */
export function defaultClientName(mac: string): string {
  return mac.replace(/:/g, '-');
}

/** The one iSCSI target of a lab; every client logs in to it and sees its own disk as LUN 0. */
export function labTargetIqn(lab: string): string {
  return `${AUTHORITY}:bootlab.${lab}`;
}

/** A client's initiator name: its ACL on the lab target, and what its script sets. */
export function clientInitiatorIqn(lab: string, client: string): string {
  return `${AUTHORITY}.bootlab:${lab}.${client}`;
}

/** The backstore holding a client's overlay (not in the saved configuration: derived). */
export function clientBackstoreName(lab: string, client: string): string {
  return `bootlab.${lab}.${client}`;
}

/** The prefix of every backstore a lab derives. */
export function labBackstorePrefix(lab: string): string {
  return `bootlab.${lab}.`;
}

/** A client's overlay file; a reset moves to the next generation's file. */
export function overlayPath(dir: string, client: string, generation: number): string {
  return join(dir, `${client}.${generation}.qcow2`);
}
