// The backing chain below a qcow2 image: each layer reads any byte range,
// with zeroes past its own size (== Cluster mapping ==: "If there is no
// backing file or the backing file is smaller than the image, they shall read
// zeros"). A raw layer is a plain file; a qcow2 layer is a read-only
// Qcow2Backstore (qcow2.ts builds the chain).

import fs from 'node:fs';
import path from 'node:path';
import { LunkitError } from '../../protocols/errors.js';
import { closeFd, onMemoryFileSystem, openFd, preadFull } from './io.js';
import { goldenCache, goldenKey } from './golden-cache.js';
import { QCOW2_MAGIC } from './format.js';

export interface Layer {
  readonly size: number;
  /** Read buf.length bytes at offset; bytes at or past size read as zeroes. */
  readAt(buf: Buffer, offset: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A raw file read-only. Layers of the same file (a boot lab's overlays of one
 * golden image) share golden-cache.ts's block cache while two or more are open.
 */
export class RawLayer implements Layer {
  private closed = false;

  private constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly syncIo: boolean,
    /** The file's identity in the shared golden cache. */
    private readonly key: string,
  ) {
    goldenCache.acquire(key);
  }

  /** `syncIo`: read on the event loop (io.ts); default: when the file is on tmpfs/ramfs. */
  static async open(file: string, syncIo?: boolean): Promise<RawLayer> {
    const fd = await openFd(file, fs.constants.O_RDONLY);
    try {
      const st = await new Promise<fs.Stats>((res, rej) => fs.fstat(fd, (err, s) => (err ? rej(err) : res(s))));
      return new RawLayer(fd, st.size, syncIo ?? (await onMemoryFileSystem(file)), goldenKey(st));
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  async readAt(buf: Buffer, offset: number): Promise<void> {
    const inside = Math.max(0, Math.min(buf.length, this.size - offset));
    if (inside > 0) {
      const view = buf.subarray(0, inside);
      if (goldenCache.shared(this.key)) await goldenCache.read(this.key, view, offset, this.size, (chunk, pos) => preadFull(this.fd, chunk, pos, this.syncIo));
      else await preadFull(this.fd, view, offset, this.syncIo);
    }
    buf.fill(0, inside);
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      goldenCache.release(this.key);
    }
    return closeFd(this.fd);
  }
}

/**
 * The path of the backing file named in `image`'s header: relative names are
 * relative to the image's directory. Throws ERR_QCOW2_BACKING when it does not
 * exist or is not a file name.
 */
export function resolveBacking(image: string, name: string): string {
  if (/^json:/.test(name)) {
    throw new LunkitError('ERR_QCOW2_BACKING', `${image}: backing file "${name}" is a json: specification, not a file`);
  }
  const resolved = path.isAbsolute(name) ? name : path.join(path.dirname(image), name);
  if (!fs.existsSync(resolved)) {
    throw new LunkitError('ERR_QCOW2_BACKING', `${image}: backing file ${resolved} (recorded as "${name}") does not exist`);
  }
  return resolved;
}

/** 'qcow2' when the file starts with the qcow2 magic, else 'raw'. */
export async function probeFormat(file: string): Promise<'qcow2' | 'raw'> {
  const fd = await openFd(file, fs.constants.O_RDONLY);
  try {
    const b = Buffer.alloc(4);
    await preadFull(fd, b, 0);
    return b.readUInt32BE(0) === QCOW2_MAGIC ? 'qcow2' : 'raw';
  } finally {
    await closeFd(fd);
  }
}
