// One call from an iscsi:// URL to a logged-in session (CLI, attach).

import { IscsiInitiatorError } from './errors.js';
import { IscsiSession, type SessionOptions } from './session.js';
import { parseIscsiUrl, type ChapEnv, type ChapSecret, type IscsiUrl } from './url.js';

export interface OpenUrlOptions extends Omit<SessionOptions, 'host' | 'port' | 'targetName' | 'chap' | 'targetChap' | 'sessionType'> {
  /** Mutual CHAP credentials overriding the URL/environment ones. */
  targetChap?: ChapSecret;
  env?: ChapEnv;
}

/** Parse `url` (which must name a target and LUN), log in, and return the session and the LUN. */
export async function openUrl(url: string, opts: OpenUrlOptions = {}): Promise<{ session: IscsiSession; lun: number; url: IscsiUrl }> {
  const u = parseIscsiUrl(url, { env: opts.env });
  if (u.target === undefined || u.lun === undefined) throw new IscsiInitiatorError('ERR_ISCSI_BAD_URL', 'the URL names no target and LUN');
  const session = await IscsiSession.open({
    ...opts,
    host: u.host,
    port: u.port,
    targetName: u.target,
    chap: u.chap,
    targetChap: u.chap === undefined ? undefined : (opts.targetChap ?? u.targetChap),
    headerDigest: opts.headerDigest ?? (u.headerDigest === 'crc32c' ? true : u.headerDigest === 'none' ? false : undefined),
  });
  return { session, lun: u.lun, url: u };
}
