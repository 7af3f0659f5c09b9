// iSCSI URLs as libiscsi (lib/init.c iscsi_parse_url) and QEMU's iscsi block
// driver read them:
//
//   iscsi://[user[%password]@]host[:port]/target-iqn/lun     (a LUN)
//   iscsi://[user[%password]@]host[:port][/]                 (a portal, for discovery)
//
// Like libiscsi: user and password split at the first '%' (or ':' when there
// is no '%'), and they are taken literally (the '%' is the separator, so they
// are not percent-decoded); the target IQN is percent-decoded; the port
// defaults to 3260; an IPv6 host is written in brackets. A query string may
// carry target_user=, target_password= (mutual CHAP) and header_digest=
// crc32c|none. Missing credentials fall back to LIBISCSI_CHAP_USERNAME /
// LIBISCSI_CHAP_PASSWORD and LIBISCSI_CHAP_TARGET_USERNAME /
// LIBISCSI_CHAP_TARGET_PASSWORD, and, as in libiscsi, mutual CHAP only counts
// when one-way CHAP is set.

import { IscsiInitiatorError } from './errors.js';

export const ISCSI_DEFAULT_PORT = 3260;

export interface ChapSecret {
  user: string;
  password: string;
}

export interface IscsiUrl {
  host: string;
  port: number;
  /** Target IQN (undefined for a portal URL). */
  target: string | undefined;
  /** LUN (undefined for a portal URL). */
  lun: number | undefined;
  /** One-way CHAP: what we prove to the target. */
  chap: ChapSecret | undefined;
  /** Mutual CHAP: what the target must prove to us. */
  targetChap: ChapSecret | undefined;
  /** header_digest= in the query string, if given. */
  headerDigest: 'crc32c' | 'none' | undefined;
}

/** The environment variables libiscsi reads (pass `{}` to ignore the process environment). */
export type ChapEnv = Partial<Record<'LIBISCSI_CHAP_USERNAME' | 'LIBISCSI_CHAP_PASSWORD' | 'LIBISCSI_CHAP_TARGET_USERNAME' | 'LIBISCSI_CHAP_TARGET_PASSWORD', string>>;

function bad(url: string, why: string): IscsiInitiatorError {
  return new IscsiInitiatorError('ERR_ISCSI_BAD_URL', `bad iSCSI URL "${redact(url)}": ${why}; expected iscsi://[user[%password]@]host[:port]/target-iqn/lun`);
}

/** The URL with any password replaced by "***", for messages. */
export function redact(url: string): string {
  return url.replace(/^(iscsi:\/\/[^@/%:]*[%:])[^@/]*@/, '$1***@').replace(/(target_password=)[^&]*/, '$1***');
}

function percentDecode(url: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(url, 'the target name is not valid percent-encoding');
  }
}

function secret(user: string | undefined, password: string | undefined): ChapSecret | undefined {
  return user && password ? { user, password } : undefined;
}

/** Split "host[:port]" / "[v6]:port"; throws ERR_ISCSI_BAD_URL. */
export function parsePortal(portal: string, url = portal): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  if (portal.startsWith('[')) {
    const end = portal.indexOf(']');
    if (end < 0) throw bad(url, 'unclosed "[" in IPv6 address');
    host = portal.slice(1, end);
    const rest = portal.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw bad(url, `unexpected "${rest}" after IPv6 address`);
    if (rest !== '') portText = rest.slice(1);
  } else {
    const colon = portal.indexOf(':');
    if (colon >= 0 && portal.indexOf(':', colon + 1) >= 0) throw bad(url, 'an IPv6 address must be written in brackets');
    host = colon >= 0 ? portal.slice(0, colon) : portal;
    if (colon >= 0) portText = portal.slice(colon + 1);
  }
  if (host === '') throw bad(url, 'no host');
  let port = ISCSI_DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) throw bad(url, `bad port "${portText}"`);
    port = Number(portText);
    if (port < 1 || port > 65535) throw bad(url, `port ${port} out of range`);
  }
  return { host, port };
}

/**
 * Parse an iscsi:// URL. With `requireLun` (the default) the target IQN and
 * LUN are required; without it a portal URL is accepted and anything after
 * the portal is parsed if present.
 */
export function parseIscsiUrl(url: string, opts: { requireLun?: boolean; env?: ChapEnv } = {}): IscsiUrl {
  const requireLun = opts.requireLun ?? true;
  const env: ChapEnv = opts.env ?? (process.env as ChapEnv);
  if (!url.startsWith('iscsi://')) throw bad(url, 'the scheme must be iscsi://');
  let rest = url.slice('iscsi://'.length);

  let targetUser = env.LIBISCSI_CHAP_TARGET_USERNAME;
  let targetPassword = env.LIBISCSI_CHAP_TARGET_PASSWORD;
  let headerDigest: IscsiUrl['headerDigest'];
  const q = rest.indexOf('?');
  if (q >= 0) {
    for (const part of rest.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      if (key === 'target_user') targetUser = value;
      else if (key === 'target_password') targetPassword = value;
      else if (key === 'header_digest') {
        if (value !== 'crc32c' && value !== 'none') throw bad(url, `header_digest must be crc32c or none, not "${value}"`);
        headerDigest = value;
      }
    }
    rest = rest.slice(0, q);
  }

  let user = env.LIBISCSI_CHAP_USERNAME;
  let password = env.LIBISCSI_CHAP_PASSWORD;
  // The userinfo ends at the last '@' before the path (a password may hold '@').
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const at = authority.lastIndexOf('@');
  let portalText = authority;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    portalText = authority.slice(at + 1);
    let sep = userinfo.indexOf('%');
    if (sep < 0) sep = userinfo.indexOf(':');
    if (sep >= 0) {
      user = userinfo.slice(0, sep);
      password = userinfo.slice(sep + 1);
    } else {
      user = userinfo;
    }
  }
  const { host, port } = parsePortal(portalText, url);

  let target: string | undefined;
  let lun: number | undefined;
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  if (path !== '') {
    const lunSlash = path.indexOf('/');
    if (lunSlash < 0) {
      if (requireLun) throw bad(url, 'no LUN after the target name');
      target = percentDecode(url, path);
    } else {
      target = percentDecode(url, path.slice(0, lunSlash));
      const lunText = path.slice(lunSlash + 1);
      if (!/^[0-9]{1,5}$/.test(lunText)) throw bad(url, `bad LUN "${lunText}"`);
      lun = Number(lunText);
      if (lun > 0x3fff) throw bad(url, `LUN ${lun} is outside flat addressing (0..16383)`);
    }
    if (target === '') throw bad(url, 'empty target name');
  } else if (requireLun) {
    throw bad(url, 'no target name');
  }

  const chap = secret(user, password);
  return {
    host,
    port,
    target,
    lun,
    chap,
    targetChap: chap === undefined ? undefined : secret(targetUser, targetPassword),
    headerDigest,
  };
}

/** host:port with IPv6 in brackets. */
export function formatPortal(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
