// Splits a TCP byte stream into iSCSI PDUs (RFC 7143 §11.2: BHS, AHS, header
// digest, data segment, padding, data digest).
//
// Copies only when a piece straddles chunks: a header (BHS + AHS + digest) or
// a data segment (data + padding + digest) that lies inside one chunk is
// handed over as a subarray view of it. A straddling piece is copied once into
// a Buffer of exactly its size, or, for a data segment, into the place the
// receiver names (dataTarget: e.g. the slice of a command's buffer a Data-Out
// belongs in), so that its bytes are copied once in all. The declared data
// length is checked against the negotiated MaxRecvDataSegmentLength before
// anything is allocated.
//
// Views share memory with the chunks pushed in: the caller must not reuse a
// pushed chunk's memory while PDUs referring to it are alive (socket 'data'
// chunks are fresh Buffers, so this holds for net.Socket).

import { LunkitError } from '../errors.js';
import { BHS_LENGTH, DIGEST_LENGTH } from './constants.js';
import { crc32c, readDigest } from './crc32c.js';
import { padLength } from './pdu.js';
import { ByteQueue } from '../byte-queue.js';

/** One framed PDU, before decoding (decodePdu(bhs, ahs, data)). */
export interface RawPdu {
  /** The 48-byte Basic Header Segment. */
  bhs: Buffer;
  /** The AHS (TotalAHSLength*4 bytes, usually empty). */
  ahs: Buffer;
  /** The data segment without padding and digest. */
  data: Buffer;
  /** Always true when delivered: a bad header digest is a stream error. */
  headerDigestOk: boolean;
  /** False if data digests are on and the data digest did not match (RFC 7143 §7.8: Reject DATA_DIGEST_ERROR). */
  dataDigestOk: boolean;
}

export interface PduFramerOptions {
  /** Largest data segment we accept (our MaxRecvDataSegmentLength). */
  maxDataSegmentLength: number;
  headerDigest: boolean;
  dataDigest: boolean;
  onPdu(frame: RawPdu): void;
  /**
   * A stream error: ERR_PDU_TOO_LARGE or ERR_PDU_HEADER_DIGEST. The framer
   * stops; the caller closes the connection. `bhs` is the offending header
   * (for a Reject before closing, or for logging).
   */
  onError(err: LunkitError, bhs?: Buffer): void;
  /**
   * Asked, with the PDU's header, only when its data segment straddles
   * chunks: a Buffer of exactly `dataLength` bytes to assemble the data in
   * (delivered as RawPdu.data), or undefined for a new one. The data digest
   * is checked over the bytes where they landed.
   */
  dataTarget?(bhs: Buffer, dataLength: number): Buffer | undefined;
}

const EMPTY: Buffer = Buffer.alloc(0);

export class PduFramer {
  private maxDataSegmentLength: number;
  private headerDigest: boolean;
  private dataDigest: boolean;
  private readonly onPdu: (frame: RawPdu) => void;
  private readonly onError: (err: LunkitError, bhs?: Buffer) => void;
  private readonly dataTarget: ((bhs: Buffer, dataLength: number) => Buffer | undefined) | undefined;

  private readonly queue = new ByteQueue();

  // The PDU being assembled: header already taken, waiting for its data.
  private pendingHeader: { bhs: Buffer; ahs: Buffer; dataLength: number; dataDigest: boolean } | undefined;
  private stopped = false;
  private pushing = false;

  constructor(opts: PduFramerOptions) {
    this.maxDataSegmentLength = opts.maxDataSegmentLength;
    this.headerDigest = opts.headerDigest;
    this.dataDigest = opts.dataDigest;
    this.onPdu = opts.onPdu;
    this.onError = opts.onError;
    this.dataTarget = opts.dataTarget;
  }

  /** Turn digests on or off; applies from the next PDU header on. */
  setDigests(header: boolean, data: boolean): void {
    this.headerDigest = header;
    this.dataDigest = data;
  }

  /** Change the data segment cap; applies from the next PDU header on. */
  setMaxDataSegmentLength(n: number): void {
    this.maxDataSegmentLength = n;
  }

  /** Stop delivering PDUs and drop buffered input (e.g. the connection is closing). */
  stop(): void {
    this.stopped = true;
    this.queue.clear();
    this.pendingHeader = undefined;
  }

  /** True once stop() was called or a stream error was reported. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Bytes received but not yet part of a delivered PDU. */
  get bufferedBytes(): number {
    return this.queue.buffered;
  }

  /** Feed bytes from the socket. Delivers every complete PDU synchronously. */
  push(chunk: Buffer): void {
    if (this.stopped || chunk.length === 0) return;
    this.queue.push(chunk);
    // onPdu may call push() again (unlikely, but keep delivery ordered).
    if (this.pushing) return;
    this.pushing = true;
    try {
      this.drain();
    } finally {
      this.pushing = false;
    }
  }

  private drain(): void {
    while (!this.stopped) {
      if (this.pendingHeader === undefined) {
        if (this.queue.buffered < BHS_LENGTH) return;
        // Peek the lengths before taking anything: cap first, allocate later.
        const ahsLength = this.queue.byteAt(4) * 4;
        const dataLength = (this.queue.byteAt(5) << 16) | (this.queue.byteAt(6) << 8) | this.queue.byteAt(7);
        if (dataLength > this.maxDataSegmentLength) {
          const bhs = this.queue.take(BHS_LENGTH);
          this.fail(
            new LunkitError(
              'ERR_PDU_TOO_LARGE',
              `data segment of ${dataLength} bytes exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentLength}`,
            ),
            bhs,
          );
          return;
        }
        const hd = this.headerDigest ? DIGEST_LENGTH : 0;
        const headerLength = BHS_LENGTH + ahsLength + hd;
        if (this.queue.buffered < headerLength) return;
        const header = this.queue.take(headerLength);
        const bhs = header.subarray(0, BHS_LENGTH);
        const ahs = ahsLength === 0 ? EMPTY : header.subarray(BHS_LENGTH, BHS_LENGTH + ahsLength);
        if (hd !== 0) {
          // §13.1: the header digest covers BHS and AHS.
          const want = crc32c(header.subarray(0, BHS_LENGTH + ahsLength));
          if (want !== readDigest(header, BHS_LENGTH + ahsLength)) {
            this.fail(new LunkitError('ERR_PDU_HEADER_DIGEST', 'header digest mismatch'), bhs);
            return;
          }
        }
        this.pendingHeader = { bhs, ahs, dataLength, dataDigest: this.dataDigest };
      }
      const ph = this.pendingHeader;
      let data = EMPTY;
      let dataDigestOk = true;
      if (ph.dataLength > 0) {
        const padded = ph.dataLength + padLength(ph.dataLength);
        // §13.1: no data digest when there is no data segment.
        const segmentLength = padded + (ph.dataDigest ? DIGEST_LENGTH : 0);
        if (this.queue.buffered < segmentLength) return;
        const target = this.dataTarget;
        if (target === undefined) {
          const segment = this.queue.take(segmentLength);
          data = segment.subarray(0, ph.dataLength);
          if (ph.dataDigest) {
            // §13.1: the data digest covers the data and its padding.
            dataDigestOk = crc32c(segment.subarray(0, padded)) === readDigest(segment, padded);
          }
        } else {
          // Data first (into the receiver's buffer if it straddles), then the
          // few bytes of padding and digest.
          const bhs = ph.bhs;
          data = this.queue.take(ph.dataLength, () => target(bhs, ph.dataLength));
          const tail = this.queue.take(segmentLength - ph.dataLength);
          if (ph.dataDigest) {
            const pad = padded - ph.dataLength;
            let crc = crc32c(data);
            if (pad > 0) crc = crc32c(tail.subarray(0, pad), crc);
            dataDigestOk = crc === readDigest(tail, pad);
          }
        }
      }
      this.pendingHeader = undefined;
      this.onPdu({ bhs: ph.bhs, ahs: ph.ahs, data, headerDigestOk: true, dataDigestOk });
    }
  }

  private fail(err: LunkitError, bhs: Buffer): void {
    this.stop();
    this.onError(err, bhs);
  }
}
