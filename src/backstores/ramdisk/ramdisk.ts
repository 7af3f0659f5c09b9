// The ramdisk backstore: memory in fixed-size chunks, allocated on first
// write. An unwritten or unmapped chunk costs nothing and reads as zeroes,
// so a 1 GiB ramdisk only holds the data written to it, and the ramdisk is
// thin-provisioned for real: UNMAP frees whole chunks, GET LBA STATUS sees
// them as deallocated.
//
// Chunks keep every Buffer far below Node's buffer size limit and let
// concurrent I/O touch disjoint memory; JavaScript runs one callback at a
// time, so a read or write is atomic with respect to other commands.

import type { BackstoreCaps, BackstoreOps, Extent } from '../../core/types.js';
import { LunkitError } from '../../protocols/errors.js';
import { checkGeometry } from '../geometry.js';

export interface RamdiskBackstoreOptions {
  name: string;
  /** Size in bytes; a multiple of blockSize. */
  size: number;
  blockSize: 512 | 4096;
  /** Allocation unit in bytes (power of two, >= 4096); default 1 MiB. */
  chunkSize?: number;
}

export const DEFAULT_RAMDISK_CHUNK = 1 << 20;

const RAMDISK_CAPS: BackstoreCaps = Object.freeze({
  canWrite: true,
  canFlush: true,
  canFua: true,
  canUnmap: true,
  canWriteZeroes: true,
  canExtents: true,
  unmapReadsZero: true,
  thin: true,
  rotationRate: 1,
  // One object in this process: every nexus reads and writes the same chunks.
  canMultiConn: true,
});

export class RamdiskBackstore implements BackstoreOps {
  readonly kind = 'ramdisk';
  readonly name: string;
  readonly blockSize: 512 | 4096;
  readonly caps: BackstoreCaps = RAMDISK_CAPS;
  readonly chunkSize: number;
  private _size: number;
  /** chunk index -> memory; absent means deallocated (reads as zeroes). */
  private readonly chunks = new Map<number, Buffer>();

  constructor(opts: RamdiskBackstoreOptions) {
    checkGeometry(opts.size, opts.blockSize);
    const chunk = opts.chunkSize ?? DEFAULT_RAMDISK_CHUNK;
    if (chunk < 4096 || (chunk & (chunk - 1)) !== 0) {
      throw new LunkitError('EINVAL', `chunk size ${chunk} must be a power of two >= 4096`);
    }
    this.name = opts.name;
    this._size = opts.size;
    this.blockSize = opts.blockSize;
    this.chunkSize = chunk;
  }

  get size(): number {
    return this._size;
  }

  /** Bytes of memory currently allocated. */
  get allocatedBytes(): number {
    return this.chunks.size * this.chunkSize;
  }

  async read(buf: Buffer, offset: number): Promise<void> {
    this.check(offset, buf.length);
    this.forEachPiece(offset, buf.length, (index, inChunk, pos, len) => {
      const chunk = this.chunks.get(index);
      if (chunk) chunk.copy(buf, pos, inChunk, inChunk + len);
      else buf.fill(0, pos, pos + len);
    });
  }

  async write(buf: Buffer, offset: number): Promise<void> {
    this.check(offset, buf.length);
    this.forEachPiece(offset, buf.length, (index, inChunk, pos, len) => {
      buf.copy(this.chunkFor(index), inChunk, pos, pos + len);
    });
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Whole chunks are freed; partial chunks are zero-filled. */
  async unmap(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    this.forEachPiece(offset, length, (index, inChunk, _pos, len) => {
      if (len === this.chunkSize) this.chunks.delete(index);
      else this.chunks.get(index)?.fill(0, inChunk, inChunk + len);
    });
  }

  async writeZeroes(offset: number, length: number, opts?: { mayUnmap?: boolean }): Promise<void> {
    if (opts?.mayUnmap) {
      await this.unmap(offset, length);
      return;
    }
    this.check(offset, length);
    // Without permission to deallocate, zeroed blocks stay mapped (SBC-3 anchored/mapped).
    this.forEachPiece(offset, length, (index, inChunk, _pos, len) => {
      this.chunkFor(index).fill(0, inChunk, inChunk + len);
    });
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    this.check(offset, length);
    const out: Extent[] = [];
    this.forEachPiece(offset, length, (index, _inChunk, pos, len) => {
      const hole = !this.chunks.has(index);
      const last = out[out.length - 1];
      if (last && last.hole === hole) last.length += len;
      else out.push({ offset: offset + pos, length: len, hole });
    });
    return out;
  }

  resize(size: number): Promise<void> {
    checkGeometry(size, this.blockSize);
    if (size < this._size) {
      // Drop chunks wholly past the end and zero the tail of the last one so
      // a later grow reads zeroes there.
      const lastIndex = Math.floor((size - 1) / this.chunkSize);
      for (const index of [...this.chunks.keys()]) if (index > lastIndex) this.chunks.delete(index);
      const tail = size - lastIndex * this.chunkSize;
      this.chunks.get(lastIndex)?.fill(0, tail);
    }
    this._size = size;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.chunks.clear();
    return Promise.resolve();
  }

  private chunkFor(index: number): Buffer {
    let chunk = this.chunks.get(index);
    if (!chunk) {
      chunk = Buffer.alloc(this.chunkSize);
      this.chunks.set(index, chunk);
    }
    return chunk;
  }

  /** Call fn for each chunk-bounded piece of [offset, offset+length); pos is relative to offset. */
  private forEachPiece(
    offset: number,
    length: number,
    fn: (index: number, inChunk: number, pos: number, len: number) => void,
  ): void {
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const index = Math.floor(abs / this.chunkSize);
      const inChunk = abs - index * this.chunkSize;
      const len = Math.min(this.chunkSize - inChunk, length - pos);
      fn(index, inChunk, pos, len);
      pos += len;
    }
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this._size) {
      throw new LunkitError('EINVAL', `I/O [${offset}, +${length}) outside the ramdisk (${this._size} bytes)`);
    }
  }
}
