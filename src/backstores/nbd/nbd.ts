// The NBD backstore: a LUN backed by a remote NBD export (nbdkit, qemu-nbd,
// another lunkit), through lunkit's own client library.
//
// Capabilities follow the export's transmission flags, read once at open
// (STYLE.md §3). A lost connection is retried with exponential back-off
// (spec.retries attempts), replaying the requests that had not completed;
// after that, and whenever a request misses its deadline, I/O fails with EIO,
// which the core turns into MEDIUM ERROR sense. Nothing waits forever.

import type { BackstoreCaps, BackstoreOps, Extent } from '../../core/types.js';
import { checkGeometry } from '../geometry.js';
import { NbdMultiClient, NbdTransmissionFlag, isNbdClientError, type NbdMultiClientOptions } from '../../nbd-client/index.js';
import type { Logger } from '../../util/log.js';
import { LunkitError } from '../../protocols/errors.js';

export interface NbdBackstoreOptions {
  name: string;
  /** nbd://host[:port]/export or nbd+unix:///export?socket=/path */
  url: string;
  blockSize: 512 | 4096;
  /** Serve read-only even if the export is writable. */
  readOnly?: boolean;
  /** Deadline for one connection attempt, handshake included (default 10 s). */
  connectTimeoutMs?: number;
  /** Reconnect attempts before I/O fails with EIO (default 5). */
  retries?: number;
  /** Deadline for one request, reconnects included (default 30 s). */
  requestTimeoutMs?: number;
  /** First back-off delay (default 100 ms, doubling, capped at 5 s). */
  retryDelayMs?: number;
  /**
   * Upstream connections when the export advertises CAN_MULTI_CONN (default
   * 1); without it one is opened whatever this says (NbdMultiClient).
   */
  connections?: number;
  /** Where the connection count (and why it is lower than asked) is logged. */
  logger?: Logger;
}

/** Node-style error the core maps to sense (EIO -> MEDIUM ERROR, ENOSPC -> SPACE ALLOCATION FAILED...). */
function nodeError(err: unknown, what: string): LunkitError {
  if (isNbdClientError(err)) return new LunkitError(err.nodeCode, `nbd backstore ${what}: ${err.message}`, { cause: err });
  return new LunkitError('EIO', `nbd backstore ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

async function mapErrors<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw nodeError(e, what);
  }
}

/**
 * Several upstream connections are opened only when the export has
 * CAN_MULTI_CONN, and NbdMultiClient's flush waits for the writes in flight
 * on every connection before sending one FLUSH (src/nbd-client/multi.ts).
 */
const FLUSH_COVERS_EVERY_UPSTREAM_CONNECTION = true;

export class NbdBackstore implements BackstoreOps {
  readonly kind = 'nbd';
  readonly caps: BackstoreCaps;
  /** Present when caps.canUnmap (the export has SEND_TRIM and is writable). */
  declare readonly unmap?: (offset: number, length: number) => Promise<void>;
  /** Present when caps.canWriteZeroes (SEND_WRITE_ZEROES, writable). */
  declare readonly writeZeroes?: (offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }) => Promise<void>;
  /** Present when caps.canExtents (base:allocation negotiated). */
  declare readonly extents?: (offset: number, length: number) => Promise<Extent[]>;

  private constructor(
    readonly name: string,
    readonly size: number,
    readonly blockSize: 512 | 4096,
    private readonly client: NbdMultiClient,
    readOnly: boolean,
  ) {
    const c = client;
    const canWrite = !c.readOnly && !readOnly;
    const canUnmap = canWrite && c.canTrim;
    // Unmap is sent as WRITE_ZEROES without NO_HOLE when the server has it:
    // the server may deallocate, and the range MUST read back as zeroes
    // (proto.md NBD_CMD_WRITE_ZEROES), so LBPRZ is safe. A bare TRIM
    // promises nothing about later reads, so without WRITE_ZEROES we say no.
    const unmapReadsZero = canUnmap && c.canWriteZeroes;
    this.caps = Object.freeze({
      canWrite,
      canFlush: c.canFlush,
      canFua: canWrite && c.canFua,
      canUnmap,
      canWriteZeroes: canWrite && c.canWriteZeroes,
      canExtents: c.canBlockStatus,
      unmapReadsZero,
      thin: canUnmap,
      rotationRate: (c.transmissionFlags & NbdTransmissionFlag.ROTATIONAL) !== 0 ? 0 : 1,
      // One upstream FLUSH covers every write the backstore accepted, whichever
      // local nexus sent it: with one upstream connection (a reconnect
      // replaces it, never adds a second) trivially; with several, because
      // they are opened only when the export has CAN_MULTI_CONN and the
      // client's flush first waits for the writes in flight on all of them.
      // (Writes acknowledged on a connection that was then lost are covered
      // only if the server kept them: that is equally true for a single local
      // client, so it does not depend on this.)
      canMultiConn: c.canMultiConn || FLUSH_COVERS_EVERY_UPSTREAM_CONNECTION,
    });
    // The optional methods exist exactly when the caps promise them.
    const self = this as { -readonly [K in 'unmap' | 'writeZeroes' | 'extents']?: BackstoreOps[K] };
    if (this.caps.canUnmap) self.unmap = (offset, length) => this.deallocate(offset, length);
    if (this.caps.canWriteZeroes) self.writeZeroes = (offset, length, opts) => this.zero(offset, length, opts);
    if (this.caps.canExtents) self.extents = (offset, length) => this.blockStatus(offset, length);
  }

  /** Connect, negotiate and size the LUN from the export. */
  static async open(opts: NbdBackstoreOptions): Promise<NbdBackstore> {
    const clientOpts: NbdMultiClientOptions = {
      connections: opts.connections ?? 1,
      logger: opts.logger,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 30_000,
      reconnect: { retries: opts.retries ?? 5, initialDelayMs: opts.retryDelayMs ?? 100, maxDelayMs: 5000 },
    };
    let client: NbdMultiClient;
    try {
      client = await NbdMultiClient.connect(opts.url, clientOpts);
    } catch (e) {
      throw nodeError(e, `cannot open ${opts.url}`);
    }
    try {
      const size = client.size;
      if (size === 0 || size % opts.blockSize !== 0) {
        throw new LunkitError('EINVAL', `the NBD export ${opts.url} is ${size} bytes, not a positive multiple of the block size ${opts.blockSize}`);
      }
      checkGeometry(size, opts.blockSize);
      const min = client.export.blockSize.minimum;
      if (min > opts.blockSize) {
        throw new LunkitError('EINVAL', `the NBD export ${opts.url} needs ${min}-byte alignment, more than the block size ${opts.blockSize}`);
      }
      return new NbdBackstore(opts.name, size, opts.blockSize, client, opts.readOnly ?? false);
    } catch (e) {
      client.destroy();
      throw e;
    }
  }

  read(buf: Buffer, offset: number): Promise<void> {
    return mapErrors('read', () => this.client.readInto(buf, offset));
  }

  write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void> {
    if (!this.caps.canWrite) return Promise.reject(new LunkitError('EROFS', 'nbd backstore is read-only'));
    return mapErrors('write', () => this.client.write(buf, offset, { fua: (opts?.fua ?? false) && this.caps.canFua }));
  }

  flush(): Promise<void> {
    // Without SEND_FLUSH the server has no cache to flush (proto.md).
    if (!this.caps.canFlush) return Promise.resolve();
    return mapErrors('flush', () => this.client.flush());
  }

  /** Behind `unmap`. */
  private deallocate(offset: number, length: number): Promise<void> {
    if (this.caps.unmapReadsZero) return mapErrors('unmap', () => this.client.writeZeroes(offset, length));
    return mapErrors('unmap', () => this.client.trim(offset, length));
  }

  /** Behind `writeZeroes`. */
  private zero(offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void> {
    const fua = (opts?.fua ?? false) && this.caps.canFua;
    return mapErrors('write zeroes', () => this.client.writeZeroes(offset, length, { noHole: !(opts?.mayUnmap ?? false), fua }));
  }

  /** Behind `extents`: base:allocation block status, merged; the server may answer in pieces, so ask until covered. */
  private async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const out: Extent[] = [];
    const end = offset + length;
    let at = offset;
    while (at < end) {
      const got = await mapErrors('block status', () => this.client.blockStatus(at, end - at));
      if (got.length === 0) throw new LunkitError('EIO', 'nbd backstore block status: empty block status reply');
      for (const e of got) {
        const last = out[out.length - 1];
        if (last && last.hole === e.hole && last.offset + last.length === e.offset) last.length += e.length;
        else out.push({ offset: e.offset, length: e.length, hole: e.hole });
        at = e.offset + e.length;
      }
    }
    return out;
  }

  /** Upstream NBD connections in use (1 unless asked for more and the export has CAN_MULTI_CONN). */
  get connections(): number {
    return this.client.connections;
  }

  /** Clean NBD disconnect (waits for requests in flight, bounded by their deadline). */
  async close(): Promise<void> {
    await Promise.race([this.client.disconnect(), new Promise<void>((res) => setTimeout(res, 35_000).unref())]);
    this.client.destroy();
  }
}
