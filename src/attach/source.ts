// What `lunkit attach` and `lunkit mount` can show as a local file: an image
// file (any file-backstore file), a remote NBD export (the nbd backstore, on
// lunkit's own NBD client), or later a LUN of a running lunkit daemon.

import { basename } from 'node:path';
import type { BackstoreOps } from '../core/types.js';
import { createBackstore, type BlockSize } from '../backstores/index.js';
import { AttachError } from './errors.js';

export type AttachSource =
  | { kind: 'file'; path: string }
  | { kind: 'nbd'; url: string }
  /**
   * Seam for a LUN of a running daemon ("lunkit:<backstore>"): the daemon
   * would add a FUSE export on its own FuseFabric instead of a holder
   * process opening the backstore. Parsed, not served yet.
   */
  | { kind: 'daemon-lun'; backstore: string };

export function parseSource(text: string): AttachSource {
  if (/^nbd(\+unix|s|s\+unix)?:\/\//.test(text)) return { kind: 'nbd', url: text };
  const m = /^lunkit:(?:\/\/)?([^/]+)$/.exec(text);
  if (m) return { kind: 'daemon-lun', backstore: m[1] };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) throw new AttachError('ERR_ATTACH_SOURCE', `unsupported source ${text}: use a file path, nbd://, nbd+unix:// or lunkit:<backstore>`);
  if (text.length === 0) throw new AttachError('ERR_ATTACH_SOURCE', 'empty source');
  return { kind: 'file', path: text };
}

export function describeSource(s: AttachSource): string {
  switch (s.kind) {
    case 'file':
      return s.path;
    case 'nbd':
      return s.url;
    case 'daemon-lun':
      return `lunkit:${s.backstore}`;
  }
}

/** A file name for the source: the image's base name, the NBD export name, or "disk". */
export function defaultFileName(s: AttachSource): string {
  let name = '';
  if (s.kind === 'file') name = basename(s.path);
  else if (s.kind === 'nbd') {
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
}

/** Opens the backstore behind a source, in this process. */
export async function openSource(s: AttachSource, opts: OpenSourceOptions): Promise<BackstoreOps> {
  switch (s.kind) {
    case 'file':
      return createBackstore({ type: 'file', name: basename(s.path), path: s.path, readOnly: opts.readOnly, blockSize: opts.blockSize, create: false });
    case 'nbd':
      return createBackstore({ type: 'nbd', name: defaultFileName(s), url: s.url, blockSize: opts.blockSize, readOnly: opts.readOnly });
    case 'daemon-lun':
      throw new AttachError('ERR_ATTACH_SOURCE', `lunkit:${s.backstore}: mounting a LUN of a running daemon is not supported yet (use its NBD export: nbd://...)`);
  }
}
