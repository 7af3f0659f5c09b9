// The backstores' public surface. The registry (registry.ts) is how lunkit
// knows its backstore types: the daemon opens configured backstores through
// it, and the config schema, the CLI and the targetcli mapping read it.
// createBackstore(spec) opens one of the built-in classes from that class's
// own options (tests, `lunkit attach` of a file or NBD export) without going
// through a configuration.

import type { BackstoreOps } from '../core/types.js';
import { FileBackstore } from './file/file.js';
import { NbdBackstore } from './nbd/nbd.js';
import { NullBackstore } from './null/null.js';
import { RamdiskBackstore } from './ramdisk/ramdisk.js';

export type BlockSize = 512 | 4096;

export interface FileBackstoreSpec {
  type: 'file';
  name?: string;
  path: string;
  size?: number;
  create?: boolean;
  sparse?: boolean;
  writeCache?: boolean;
  readOnly?: boolean;
  blockSize: BlockSize;
}

export interface RamdiskBackstoreSpec {
  type: 'ramdisk';
  name?: string;
  size: number;
  blockSize: BlockSize;
  chunkSize?: number;
}

export interface NullBackstoreSpec {
  type: 'null';
  name?: string;
  size: number;
  blockSize: BlockSize;
}

/** A LUN backed by a remote NBD export (src/backstores/nbd). */
export interface NbdBackstoreSpec {
  type: 'nbd';
  name?: string;
  /** nbd://host[:port]/export or nbd+unix:///export?socket=/path */
  url: string;
  blockSize: BlockSize;
  readOnly?: boolean;
  /** How long one connection attempt may take (default 10 s). */
  connectTimeoutMs?: number;
  /** Reconnect attempts with back-off before I/O fails with EIO (default 5). */
  retries?: number;
}

export type BackstoreSpec = FileBackstoreSpec | RamdiskBackstoreSpec | NullBackstoreSpec | NbdBackstoreSpec;

export async function createBackstore(spec: BackstoreSpec): Promise<BackstoreOps> {
  switch (spec.type) {
    case 'file':
      return FileBackstore.open({ ...spec, name: spec.name ?? spec.path });
    case 'ramdisk':
      return new RamdiskBackstore({ ...spec, name: spec.name ?? 'ramdisk' });
    case 'null':
      return new NullBackstore({ ...spec, name: spec.name ?? 'null' });
    case 'nbd':
      return NbdBackstore.open({ ...spec, name: spec.name ?? spec.url });
  }
}

export { FileBackstore, NbdBackstore, NullBackstore, RamdiskBackstore };
export type { NbdBackstoreOptions } from './nbd/nbd.js';
export type { FileBackstoreOptions } from './file/file.js';
export type { RamdiskBackstoreOptions } from './ramdisk/ramdisk.js';
export type { NullBackstoreOptions } from './null/null.js';
export { nativeFileOps, nativeLoadError } from './file/native.js';
export { BACKSTORE_DESCRIPTORS, BACKSTORE_TYPES, BackstoreConfigSchema, descriptorOf, findBackstoreType, openBackstore, type BackstoreConfig } from './registry.js';
export type { BackstoreDescriptor, CommonBackstoreConfig, Progress, ProgressFn } from './descriptor.js';
export { hideUncappedMethods, capsDisagreements } from './caps.js';
