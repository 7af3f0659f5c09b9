// The null backstore: reads return zeroes, writes are discarded. It measures
// the cost of everything above the backstore (nbdkit's null plugin).

import type { BackstoreCaps, BackstoreOps } from '../../core/types.js';
import { checkGeometry } from '../geometry.js';

export interface NullBackstoreOptions {
  name: string;
  /** Size in bytes; a multiple of blockSize. */
  size: number;
  blockSize: 512 | 4096;
}

const NULL_CAPS: BackstoreCaps = Object.freeze({
  canWrite: true,
  canFlush: true,
  canFua: true,
  canUnmap: false,
  canWriteZeroes: true,
  canExtents: false,
  unmapReadsZero: true,
  thin: false,
  rotationRate: 1,
  // One object in this process: nothing is cached per nexus.
  canMultiConn: true,
});

export class NullBackstore implements BackstoreOps {
  readonly kind = 'null';
  readonly name: string;
  readonly blockSize: 512 | 4096;
  readonly caps: BackstoreCaps = NULL_CAPS;
  private _size: number;

  constructor(opts: NullBackstoreOptions) {
    checkGeometry(opts.size, opts.blockSize);
    this.name = opts.name;
    this._size = opts.size;
    this.blockSize = opts.blockSize;
  }

  get size(): number {
    return this._size;
  }

  read(buf: Buffer, _offset: number): Promise<void> {
    buf.fill(0);
    return Promise.resolve();
  }

  write(_buf: Buffer, _offset: number, _opts?: { fua?: boolean }): Promise<void> {
    return Promise.resolve();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  writeZeroes(_offset: number, _length: number, _opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void> {
    return Promise.resolve();
  }

  resize(size: number): Promise<void> {
    checkGeometry(size, this.blockSize);
    this._size = size;
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
