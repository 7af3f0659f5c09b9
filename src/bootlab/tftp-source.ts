// Where a TFTP transfer's blocks come from: an open file (positional reads,
// 1 MiB read-ahead), an in-memory virtual file, and the netascii conversion
// over either. Blocks are produced in order only: the sender keeps the
// unacknowledged window itself, so a source never goes back.

import type { FileHandle } from 'node:fs/promises';

export interface BlockSource {
  /** The next block: exactly blksize bytes, or fewer for the last one. */
  next(): Promise<Buffer>;
  close(): Promise<void>;
}

/** Read-ahead per transfer; a multiple of blksize so no block straddles two reads. */
export const READ_AHEAD_BYTES = 1024 * 1024;

/** A byte stream read in chunks: a file by positional reads, or a Buffer. */
interface ChunkReader {
  /** Up to `max` bytes at the current position; empty at end of file. */
  read(max: number): Promise<Buffer>;
  close(): Promise<void>;
}

export function fileReader(handle: FileHandle, size: number): ChunkReader {
  let pos = 0;
  return {
    async read(max) {
      // The size was fixed at open: a file growing under a transfer is not
      // followed (tsize was already promised), a shrinking one ends early.
      const want = Math.min(max, size - pos);
      if (want <= 0) return Buffer.alloc(0);
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await handle.read(buf, got, want - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      pos += got;
      return got === want ? buf : buf.subarray(0, got);
    },
    close: () => handle.close(),
  };
}

export function bufferReader(data: Buffer): ChunkReader {
  let pos = 0;
  return {
    async read(max) {
      const chunk = data.subarray(pos, pos + max);
      pos += chunk.length;
      return chunk;
    },
    async close() {},
  };
}

/** Octet mode: blocks are subarray views of a read-ahead chunk (no per-block copy). */
export function octetSource(reader: ChunkReader, blksize: number): BlockSource {
  const chunkSize = Math.max(1, Math.floor(READ_AHEAD_BYTES / blksize)) * blksize;
  let chunk: Buffer = Buffer.alloc(0);
  let offset = 0;
  return {
    async next() {
      if (offset >= chunk.length) {
        chunk = await reader.read(chunkSize);
        offset = 0;
      }
      const block = chunk.subarray(offset, offset + blksize);
      offset += block.length;
      return block;
    },
    close: () => reader.close(),
  };
}

/**
 * Netascii mode (RFC 1350 "netascii", RFC 764): LF becomes CR LF and a bare
 * CR becomes CR NUL, as tftp-hpa sends it. The mapping is per byte, so chunk
 * boundaries need no carried state; the output is at most twice the input.
 */
export function netasciiSource(reader: ChunkReader, blksize: number): BlockSource {
  const chunkSize = Math.max(blksize, 64 * 1024);
  let pending: Buffer = Buffer.alloc(0);
  let eof = false;
  return {
    async next() {
      while (pending.length < blksize && !eof) {
        const raw = await reader.read(chunkSize);
        if (raw.length === 0) {
          eof = true;
          break;
        }
        pending = pending.length === 0 ? toNetascii(raw) : Buffer.concat([pending, toNetascii(raw)]);
      }
      const block = pending.subarray(0, blksize);
      pending = pending.subarray(block.length);
      return block;
    },
    close: () => reader.close(),
  };
}

export function toNetascii(raw: Buffer): Buffer {
  let extra = 0;
  for (const b of raw) if (b === 0x0a || b === 0x0d) extra++;
  if (extra === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + extra);
  let o = 0;
  for (const b of raw) {
    if (b === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else if (b === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x00;
    } else {
      out[o++] = b;
    }
  }
  return out;
}
