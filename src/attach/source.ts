// What `lunkit attach` and `lunkit mount` can show as a local file: an image
// file (any file-backstore file), a remote NBD export (the nbd backstore, on
// lunkit's own NBD client), a remote iSCSI LUN (the iscsi backstore, on
// lunkit's own initiator), or a LUN of a running lunkit daemon (daemon-lun.ts:
// the daemon's own FuseFabric serves it; no holder process).

import { basename } from 'node:path';
import type { BackstoreOps } from '../core/types.js';
import { createBackstore, type BlockSize } from '../backstores/index.js';
import { AttachError } from './errors.js';
import { redactIscsiUrl } from './redact.js';
import { NBD_MAX_CONNECTIONS } from '../nbd-client/index.js';
import type { Logger } from '../util/log.js';

export type AttachSource =
  | { kind: 'file'; path: string }
  /** A remote NBD export; connections: how many to open when it has CAN_MULTI_CONN (absent: NBD_ATTACH_CONNECTIONS). */
  | { kind: 'nbd'; url: string; connections?: number | undefined }
  /** A remote iSCSI LUN; connections/errorRecoveryLevel go to the initiator's session. */
  | { kind: 'iscsi'; url: string; connections?: number | undefined; errorRecoveryLevel?: 0 | 1 | 2 | undefined }
  /**
   * A LUN of a running daemon ("lunkit:<backstore>"): the daemon adds a FUSE
   * export on its own FuseFabric (daemon-lun.ts); never opened by a holder.
   */
  | { kind: 'daemon-lun'; backstore: string };

/**
 * NBD connections for an nbd:// source when the user gives none and the
 * export advertises CAN_MULTI_CONN: nbdfuse's default. Without the flag one
 * is opened (NbdMultiClient).
 */
export const NBD_ATTACH_CONNECTIONS = 4;

/** Connection options: --connections for iscsi:// (MC/S) and nbd:// (multi-conn), --erl for iscsi:// only. */
export interface SourceOptions {
  connections?: number | undefined;
  erl?: number | undefined;
}
/** @deprecated the old name of SourceOptions. */
export type IscsiSourceOptions = SourceOptions;

export function withSourceOptions(s: AttachSource, o: SourceOptions): AttachSource {
  if (o.connections === undefined && o.erl === undefined) return s;
  if (s.kind === 'nbd') {
    if (o.erl !== undefined) throw new AttachError('ERR_ATTACH_SOURCE', '--erl applies to iscsi:// sources only');
    const n = o.connections;
    if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > NBD_MAX_CONNECTIONS)) {
      throw new AttachError('ERR_ATTACH_SOURCE', `--connections must be 1..${NBD_MAX_CONNECTIONS} for nbd://, not ${n}`);
    }
    return { ...s, connections: n ?? s.connections };
  }
  if (s.kind !== 'iscsi') throw new AttachError('ERR_ATTACH_SOURCE', '--connections applies to iscsi:// and nbd:// sources, --erl to iscsi:// only');
  if (o.connections !== undefined && (!Number.isInteger(o.connections) || o.connections < 1 || o.connections > 65535)) {
    throw new AttachError('ERR_ATTACH_SOURCE', `--connections must be 1..65535, not ${o.connections}`);
  }
  if (o.erl !== undefined && o.erl !== 0 && o.erl !== 1 && o.erl !== 2) throw new AttachError('ERR_ATTACH_SOURCE', `--erl must be 0, 1 or 2, not ${o.erl}`);
  return { ...s, connections: o.connections ?? s.connections, errorRecoveryLevel: (o.erl as 0 | 1 | 2 | undefined) ?? s.errorRecoveryLevel };
}

/** The old name of withSourceOptions. */
export const withIscsiOptions = withSourceOptions;

export function parseSource(text: string): AttachSource {
  if (/^nbd(\+unix|s|s\+unix)?:\/\//.test(text)) return { kind: 'nbd', url: text };
  if (/^iscsi:\/\//i.test(text)) return { kind: 'iscsi', url: text };
  const m = /^lunkit:(?:\/\/)?([^/]+)$/.exec(text);
  if (m) return { kind: 'daemon-lun', backstore: m[1] };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new AttachError('ERR_ATTACH_SOURCE', `unsupported source ${text}: use a file path, nbd://, nbd+unix://, iscsi:// or lunkit:<backstore>`);
  if (text.length === 0) throw new AttachError('ERR_ATTACH_SOURCE', 'empty source');
  return { kind: 'file', path: text };
}

export function describeSource(s: AttachSource): string {
  switch (s.kind) {
    case 'file':
      return s.path;
    case 'nbd':
      return s.url;
    case 'iscsi':
      return redactIscsiUrl(s.url);
    case 'daemon-lun':
      return `lunkit:${s.backstore}`;
  }
}

/** A file name for the source: the image's base name, the NBD export name, "<iqn tail>-lun<N>" for iSCSI, or "disk". */
export function defaultFileName(s: AttachSource): string {
  let name = '';
  if (s.kind === 'file') name = basename(s.path);
  else if (s.kind === 'iscsi') {
    // iscsi://.../iqn.2003-01.org.example:disk1/3 -> disk1-lun3
    const m = /^iscsi:\/\/[^/]*\/([^/?]+)\/(\d+)/i.exec(s.url);
    if (m) {
      const iqn = decodeURIComponent(m[1]);
      name = `${iqn.slice(Math.max(iqn.lastIndexOf(':'), iqn.lastIndexOf('.')) + 1) || 'lun'}-lun${m[2]}`;
    }
  } else if (s.kind === 'nbd') {
    try {
      name = decodeURIComponent(new URL(s.url).pathname.replace(/^\//, ''));
    } catch {
      name = '';
    }
  } else name = s.backstore;
  name = name.replace(/[/\0]/g, '_');
  return name.length > 0 && name !== '.' && name !== '..' ? name : 'disk';
}

export interface OpenSourceOptions {
  blockSize: BlockSize;
  readOnly: boolean;
  /** Where an nbd:// source logs how many connections it opened and why. */
  logger?: Logger | undefined;
}

/** Opens the backstore behind a source, in this process. */
export async function openSource(s: AttachSource, opts: OpenSourceOptions): Promise<BackstoreOps> {
  switch (s.kind) {
    case 'file':
      return createBackstore({ type: 'file', name: basename(s.path), path: s.path, readOnly: opts.readOnly, blockSize: opts.blockSize, create: false });
    case 'nbd': {
      const { NbdBackstore } = await import('../backstores/nbd/nbd.js');
      const connections = s.connections ?? NBD_ATTACH_CONNECTIONS;
      return NbdBackstore.open({ name: defaultFileName(s), url: s.url, blockSize: opts.blockSize, readOnly: opts.readOnly, connections, logger: opts.logger });
    }
    case 'iscsi': {
      // Loaded only here: the initiator is needed by iSCSI holders alone.
      const { IscsiBackstore } = await import('../backstores/iscsi/iscsi.js');
      try {
        // Credentials: the URL's, else LIBISCSI_CHAP_* in the holder's environment (never argv).
        return await IscsiBackstore.open({ url: s.url, name: defaultFileName(s), readOnly: opts.readOnly, connections: s.connections, errorRecoveryLevel: s.errorRecoveryLevel });
      } catch (err) {
        // A LUN lunkit cannot serve is a bad source; anything else (login, connection) a failed start.
        const code = (err as { code?: unknown }).code === 'EINVAL' ? 'ERR_ATTACH_SOURCE' : 'ERR_ATTACH_START';
        throw new AttachError(code, (err as Error).message, { cause: err });
      }
    }
    case 'daemon-lun':
      throw new AttachError('ERR_ATTACH_SOURCE', `lunkit:${s.backstore} is served by the daemon's own FUSE fabric, not by an attach holder`);
  }
}
