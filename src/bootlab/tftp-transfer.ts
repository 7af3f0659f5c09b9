// One read transfer on its own UDP socket (its TID, RFC 1350 §4), as a small
// state machine: optional OACK until the client's ACK 0 (RFC 2347), then
// windows of DATA (RFC 7440; windowsize 1 is plain RFC 1350 lock-step).
//
// The sender keeps the unacknowledged window in memory (at most windowsize ×
// blksize bytes, capped by negotiation) and reads new blocks from its source
// strictly in order. Retransmission is driven by the timer alone: an ACK that
// does not move the window (a duplicate) never causes a send, which is what
// keeps the Sorcerer's Apprentice bug (RFC 1123 §4.2.3.1) out.

import type { Socket, RemoteInfo } from 'node:dgram';
import type { Logger } from '../util/log.js';
import {
  TftpErrorCode,
  TftpOpcode,
  decodePacket,
  encodeDataHeader,
  encodeError,
  encodeOack,
  type NegotiatedOptions,
} from '../protocols/tftp/index.js';
import type { BlockSource } from './tftp-source.js';

export interface TransferPeer {
  address: string;
  port: number;
}

export interface TransferCounters {
  dataBytes(n: number): void;
  errorSent(): void;
}

export interface TransferInit {
  socket: Socket;
  peer: TransferPeer;
  filename: string;
  source: BlockSource;
  negotiated: NegotiatedOptions;
  /** Retransmit timeout when the client negotiated none. */
  defaultTimeoutMs: number;
  /** Retransmissions of one window (or the OACK) before giving up. */
  retries: number;
  logger: Logger;
  counters: TransferCounters;
  /** Called synchronously when the transfer ends, before its socket closes. */
  onFinish?: () => void;
}

export type TransferOutcome = 'complete' | 'failed' | 'aborted';

export class TftpTransfer {
  private phase: 'oack' | 'data' | 'done' = 'data';
  /** Absolute number of the first unacknowledged block (no 16-bit wrap). */
  private base = 1;
  /** Blocks base, base+1, ... already read; kept until acknowledged. */
  private window: Buffer[] = [];
  /** Highest absolute block number sent so far. */
  private sentHigh = 0;
  /** Absolute number of the final (short) block, once it has been read. */
  private lastBlock: number | null = null;
  private tries = 0;
  private timer: NodeJS.Timeout | null = null;
  private pumping = false;
  private restartPump = false;
  private readonly timeoutMs: number;
  private readonly blksize: number;
  private readonly windowsize: number;
  private readonly startedAt = Date.now();
  private resolveDone!: (o: TransferOutcome) => void;
  /** Settles once the socket and the source are closed. */
  readonly done: Promise<TransferOutcome>;

  constructor(private readonly init: TransferInit) {
    this.timeoutMs = init.negotiated.timeout !== undefined ? init.negotiated.timeout * 1000 : init.defaultTimeoutMs;
    this.blksize = init.negotiated.blksize;
    this.windowsize = init.negotiated.windowsize;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    init.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    init.socket.on('error', (err) => this.fail(`socket error: ${err.message}`, null));
  }

  get peer(): TransferPeer {
    return this.init.peer;
  }

  start(): void {
    if (this.init.negotiated.accepted.length > 0) {
      this.phase = 'oack';
      this.sendOack();
    } else {
      this.kick();
    }
  }

  /** Ends the transfer from our side, telling the client why. */
  abort(message: string): Promise<TransferOutcome> {
    if (this.phase !== 'done') this.finish('aborted', { code: TftpErrorCode.NOT_DEFINED, message });
    return this.done;
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.phase === 'done') return;
    const { peer, logger, socket, counters } = this.init;
    if (rinfo.address !== peer.address || rinfo.port !== peer.port) {
      // RFC 1350 §4: a packet from a wrong TID gets ERROR 5 and the
      // transfer carries on undisturbed. Never answer an ERROR with one.
      if (msg.length >= 2 && msg.readUInt16BE(0) === TftpOpcode.ERROR) return;
      counters.errorSent();
      socket.send(encodeError(TftpErrorCode.UNKNOWN_TID, 'Unknown transfer ID'), rinfo.port, rinfo.address, () => {});
      logger.debug('tftp: packet from unknown TID', { client: `${rinfo.address}:${rinfo.port}`, file: this.init.filename });
      return;
    }
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      logger.debug('tftp: undecodable packet ignored', { client: fmtPeer(peer), reason: decoded.reason });
      return;
    }
    const packet = decoded.packet;
    if (packet.opcode === TftpOpcode.ERROR) {
      // RFC 2347: ERROR 8 after our OACK means the client refuses the options.
      logger.info('tftp: client ended transfer', { client: fmtPeer(peer), file: this.init.filename, code: packet.code, message: packet.message });
      this.finish('aborted', null);
      return;
    }
    if (packet.opcode !== TftpOpcode.ACK) return;
    if (this.phase === 'oack') {
      if (packet.block !== 0) return;
      this.phase = 'data';
      this.tries = 0;
      this.kick();
      return;
    }
    // Map the 16-bit number onto the window: blocks base..sentHigh. Anything
    // else (an older ACK, a duplicate of base-1) is ignored.
    const delta = (packet.block - (this.base & 0xffff)) & 0xffff;
    const acked = this.base + delta;
    if (acked > this.sentHigh) return;
    this.window.splice(0, acked - this.base + 1);
    this.base = acked + 1;
    this.tries = 0;
    if (this.lastBlock !== null && acked >= this.lastBlock) {
      this.finish('complete', null);
      return;
    }
    // RFC 7440 §4: an ACK for block k restarts the window at k+1.
    this.kick();
  }

  private sendOack(): void {
    this.send([encodeOack(this.init.negotiated.accepted)]);
    this.armTimer();
  }

  private kick(): void {
    this.clearTimer();
    if (this.pumping) {
      this.restartPump = true;
      return;
    }
    void this.pump();
  }

  /** Sends blocks base..base+windowsize-1, reading new ones as needed, then waits. */
  private async pump(): Promise<void> {
    this.pumping = true;
    this.restartPump = false;
    try {
      let i = 0;
      while (this.phase === 'data') {
        if (this.restartPump) {
          this.restartPump = false;
          i = 0;
        }
        if (i >= this.windowsize) break;
        if (i >= this.window.length) {
          if (this.lastBlock !== null) break;
          const block = await this.init.source.next();
          if (this.phase !== 'data') return;
          this.window.push(block);
          if (block.length < this.blksize) this.lastBlock = this.base + this.window.length - 1;
          continue;
        }
        const number = this.base + i;
        const block = this.window[i];
        this.init.counters.dataBytes(block.length);
        this.send([encodeDataHeader(number), block]);
        if (number > this.sentHigh) this.sentHigh = number;
        i++;
      }
      if (this.phase === 'data') this.armTimer();
    } catch (err) {
      this.fail(`read failed: ${(err as Error).message}`, { code: TftpErrorCode.NOT_DEFINED, message: 'Read error' });
    } finally {
      this.pumping = false;
    }
  }

  private armTimer(): void {
    this.clearTimer();
    this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private onTimeout(): void {
    this.timer = null;
    if (this.phase === 'done') return;
    if (++this.tries > this.init.retries) {
      this.fail('client stopped answering', { code: TftpErrorCode.NOT_DEFINED, message: 'Timeout' });
      return;
    }
    this.init.logger.debug('tftp: retransmit', { client: fmtPeer(this.init.peer), block: this.base, try: this.tries });
    if (this.phase === 'oack') this.sendOack();
    else this.kick();
  }

  private send(chunks: Buffer[]): void {
    const { socket, peer } = this.init;
    socket.send(chunks, peer.port, peer.address, (err) => {
      if (err && this.phase !== 'done') this.fail(`send failed: ${err.message}`, null);
    });
  }

  private fail(why: string, error: { code: number; message: string } | null): void {
    if (this.phase === 'done') return;
    this.init.logger.warn('tftp: transfer failed', { client: fmtPeer(this.init.peer), file: this.init.filename, block: this.base, reason: why });
    this.finish('failed', error);
  }

  private finish(outcome: TransferOutcome, error: { code: number; message: string } | null): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.clearTimer();
    this.window = [];
    this.init.onFinish?.();
    const { socket, peer, counters, logger, source } = this.init;
    if (outcome === 'complete') {
      logger.info('tftp: sent', { client: fmtPeer(peer), file: this.init.filename, blocks: this.base - 1, ms: Date.now() - this.startedAt });
    }
    const closeAll = (): void => {
      try {
        socket.close();
      } catch {
        // already closed by a socket error
      }
      source.close().then(
        () => this.resolveDone(outcome),
        () => this.resolveDone(outcome),
      );
    };
    if (error === null) {
      closeAll();
      return;
    }
    counters.errorSent();
    // Close only once the ERROR has left, or the client would never learn why.
    try {
      socket.send(encodeError(error.code, error.message), peer.port, peer.address, closeAll);
    } catch {
      closeAll();
    }
  }
}

export function fmtPeer(p: TransferPeer): string {
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}
