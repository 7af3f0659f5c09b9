// SendTargets discovery (RFC 7143 §4.3, Appendix C; RFC 3721): a discovery
// session, one Text Request "SendTargets=All", the TargetName/TargetAddress
// pairs of the answer, a logout.

import { IscsiInitiatorError } from './errors.js';
import { IscsiSession, type SessionOptions } from './session.js';
import { parsePortal } from './url.js';

export interface DiscoveredPortal {
  host: string;
  port: number;
  /** Target portal group tag (the ",tpgt" suffix); undefined if absent. */
  tpgt: number | undefined;
}

export interface DiscoveredTarget {
  name: string;
  portals: DiscoveredPortal[];
}

/**
 * Parse a SendTargets answer: each TargetName starts a record, the
 * TargetAddress pairs after it ("host[:port][,tpgt]", IPv6 in brackets) are its
 * portals. A target without addresses is reachable at the portal we asked
 * (Appendix C), which `fallback` supplies.
 */
export function parseSendTargets(pairs: Array<[string, string]>, fallback?: { host: string; port: number }): DiscoveredTarget[] {
  const out: DiscoveredTarget[] = [];
  let cur: DiscoveredTarget | undefined;
  for (const [k, v] of pairs) {
    if (k === 'TargetName') {
      cur = { name: v, portals: [] };
      out.push(cur);
    } else if (k === 'TargetAddress' && cur !== undefined) {
      const comma = v.lastIndexOf(',');
      const hasTag = comma >= 0 && /^[0-9]+$/.test(v.slice(comma + 1));
      const addr = hasTag ? v.slice(0, comma) : v;
      try {
        const { host, port } = parsePortal(addr);
        cur.portals.push({ host, port, tpgt: hasTag ? Number(v.slice(comma + 1)) : undefined });
      } catch (err) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `bad TargetAddress ${JSON.stringify(v)} in SendTargets answer`, { cause: err });
      }
    }
  }
  if (fallback !== undefined) {
    for (const t of out) if (t.portals.length === 0) t.portals.push({ host: fallback.host, port: fallback.port, tpgt: undefined });
  }
  return out;
}

/**
 * Log in a discovery session to host:port, ask SendTargets=All (or one
 * target name), log out, and return the targets with their portals.
 */
export async function discoverTargets(opts: Omit<SessionOptions, 'targetName' | 'sessionType'> & { sendTargets?: string }): Promise<DiscoveredTarget[]> {
  const session = await IscsiSession.open({ keepaliveIntervalMs: 0, ...opts, sessionType: 'Discovery' });
  try {
    const pairs = await session.text([['SendTargets', opts.sendTargets ?? 'All']]);
    return parseSendTargets(pairs, { host: opts.host, port: opts.port });
  } finally {
    await session.logout().catch(() => session.destroy());
  }
}
