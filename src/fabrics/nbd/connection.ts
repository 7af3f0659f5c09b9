// One NBD client connection: greeting, option haggling (negotiation.ts), then
// the transmission phase. Each request is checked at the edge (proto.md
// "Request message requirements"), turned into a CDB and submitted through
// the core; the sense of a failure becomes the NBD errno (commands.ts). A bad
// request gets an error reply and the stream stays in sync; only a broken
// stream (bad magic, oversized option) closes the connection.

import type { Socket } from 'node:net';
import type { FabricOps } from '../../core/types.js';
import { ScsiStatus } from '../../core/types.js';
import {
  NbdCmd,
  NbdCmdFlag,
  NbdErrno,
  NbdHandshakeFlag,
  NbdReplyFlag,
  NbdReplyType,
  OptionFramer,
  RequestFramer,
  cmdName,
  encodeBlockStatus,
  encodeErrorChunk,
  encodeGreeting,
  encodeOffsetDataPrefix,
  encodeReplyChunkHeader,
  encodeSimpleReply,
  type BlockDescriptor,
  type LunkitError,
  type NbdRequest,
} from '../../protocols/nbd/index.js';
import { getLbaStatus16, LBA_STATUS_DESCRIPTORS, lbaStatusToExtents } from './block-status.js';
import { prefetch16, rw16, senseToErrno, synchronizeCache16, unmap, writeSame16, WRITE_SAME_CHUNK_BYTES } from './commands.js';
import { LunSession, type NbdCore, type PeerInfo } from './lun-session.js';
import { NBD_MAX_BLOCK, Negotiation, type ResolvedExport } from './negotiation.js';
import type { NbdExportConfig, NbdLogger } from './server.js';

/** Pause reading while this many requests are in flight (resume at half). */
const MAX_IN_FLIGHT = 64;

/** Flags each command may carry (proto.md "Request types"); others are EINVAL. */
const ALLOWED_FLAGS: Readonly<Record<number, number>> = {
  [NbdCmd.READ]: NbdCmdFlag.DF,
  [NbdCmd.WRITE]: NbdCmdFlag.FUA,
  [NbdCmd.FLUSH]: 0,
  [NbdCmd.TRIM]: NbdCmdFlag.FUA,
  [NbdCmd.WRITE_ZEROES]: NbdCmdFlag.FUA | NbdCmdFlag.NO_HOLE | NbdCmdFlag.FAST_ZERO,
  [NbdCmd.CACHE]: 0,
  [NbdCmd.BLOCK_STATUS]: NbdCmdFlag.REQ_ONE,
  [NbdCmd.DISC]: 0,
};

export interface ConnectionContext {
  core: NbdCore;
  fabric: FabricOps;
  logger: NbdLogger;
  exports(): Map<string, NbdExportConfig>;
}

export class NbdConnection {
  private session: LunSession | undefined;
  private structured = false;
  /** Context id of base:allocation when the client selected it (SET_META_CONTEXT). */
  private blockStatusContext: number | undefined;
  private readOnly = false;
  private inFlight = 0;
  private disconnecting = false;
  private closed = false;
  private readonly closeCallbacks: Array<() => void> = [];

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
    private readonly peer: PeerInfo,
  ) {}

  get nexusId(): number | undefined {
    return this.session?.nexus.id;
  }

  onClose(cb: () => void): void {
    this.closeCallbacks.push(cb);
  }

  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    s.on('error', (e) => this.ctx.logger.debug?.('nbd socket error', { err: e.message }));
    s.on('close', () => this.finish());
    const negotiation = new Negotiation({
      send: (b) => this.send(b),
      exports: () => this.resolvedExports(),
      openSession: (exp) => this.openSession(exp),
      enterTransmission: (session, exp, structured, context) => this.enterTransmission(session, exp, structured, context, framer),
      end: () => this.end(),
      debug: (msg, fields) => this.ctx.logger.debug?.(msg, fields),
    });
    // Options are answered strictly in order: queue them behind each other.
    let chain = Promise.resolve();
    const framer = new OptionFramer({
      onClientFlags: (f) => negotiation.onClientFlags(f),
      onOption: (frame) => {
        const copy = { option: frame.option, data: Buffer.from(frame.data) };
        chain = chain.then(() => negotiation.onOption(copy)).catch((e: unknown) => this.broken(String(e)));
      },
      onError: (e) => this.broken(e.message),
    });
    s.on('data', (chunk: Buffer) => {
      if (this.session === undefined) framer.push(chunk);
    });
    this.send(encodeGreeting(NbdHandshakeFlag.FIXED_NEWSTYLE | NbdHandshakeFlag.NO_ZEROES));
  }

  /** Closes at once (server shutdown or the core ending the nexus). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves when the requests in flight have been answered (bounded by the caller). */
  async drain(): Promise<void> {
    while (this.inFlight > 0 && !this.closed) await new Promise((r) => setTimeout(r, 10));
  }

  private resolvedExports(): ResolvedExport[] {
    return [...this.ctx.exports()].map(([name, e]) => ({ name, readOnly: e.readOnly ?? false, description: e.description ?? '' }));
  }

  private openSession(exp: ResolvedExport): Promise<LunSession> {
    const cfg = this.ctx.exports().get(exp.name);
    if (!cfg) return Promise.reject(new Error(`export "${exp.name}" went away`));
    return LunSession.open(this.ctx.core, this.ctx.fabric, this.peer, exp.name, cfg.device, exp.readOnly);
  }

  private enterTransmission(
    session: LunSession,
    exp: ResolvedExport,
    structured: boolean,
    context: number | undefined,
    options: OptionFramer,
  ): void {
    if (this.closed) {
      session.close();
      return;
    }
    this.session = session;
    this.structured = structured;
    this.blockStatusContext = context;
    this.readOnly = exp.readOnly || session.geometry.writeProtected;
    this.ctx.logger.info?.('nbd client attached', { peer: this.peer.remoteAddress, export: exp.name, structured });
    const framer = new RequestFramer({
      maxPayloadLength: NBD_MAX_BLOCK,
      // Oversized WRITE payloads are read and dropped so the stream stays in sync.
      maxDiscardLength: 0xffffffff,
      onRequest: (req, payload, dropped) => this.onRequest(req, payload, dropped),
      onError: (e: LunkitError) => this.broken(e.message),
    });
    const rest = options.detach();
    this.socket.removeAllListeners('data');
    this.socket.on('data', (chunk: Buffer) => framer.push(chunk));
    if (rest.length > 0) framer.push(rest);
  }

  private onRequest(req: NbdRequest, payload: Buffer, dropped: boolean): void {
    if (this.disconnecting) return;
    if (req.type === NbdCmd.DISC) {
      // proto.md NBD_CMD_DISC: finish what is in flight, then close; no reply.
      this.disconnecting = true;
      void this.drain().then(() => this.end());
      return;
    }
    this.inFlight++;
    if (this.inFlight >= MAX_IN_FLIGHT) this.socket.pause();
    const data = payload.length > 0 ? Buffer.from(payload) : payload;
    void this.execute(req, data, dropped)
      .catch((e: unknown): Outcome => ({ error: NbdErrno.EIO, message: e instanceof Error ? e.message : String(e) }))
      .then((out) => {
        this.reply(req, out);
        this.inFlight--;
        if (this.inFlight <= MAX_IN_FLIGHT / 2 && this.socket.isPaused()) this.socket.resume();
      });
  }

  /** Edge validation, then the CDB(s) for one request. */
  private async execute(req: NbdRequest, payload: Buffer, dropped: boolean): Promise<Outcome> {
    const session = this.session;
    if (!session) return { error: NbdErrno.EINVAL, message: 'no export' };
    const allowed = ALLOWED_FLAGS[req.type];
    if (allowed === undefined) return { error: NbdErrno.EINVAL, message: `${cmdName(req.type)} is not supported` };
    if ((req.flags & ~allowed) !== 0) return { error: NbdErrno.EINVAL, message: `flags 0x${req.flags.toString(16)} not allowed` };
    if (req.type === NbdCmd.FLUSH) return this.scsi(session.run(synchronizeCache16(), 'none', 0), true);

    if (req.type === NbdCmd.BLOCK_STATUS) return this.blockStatus(session, req);

    const { blockSize, size } = session.geometry;
    const isWrite = req.type === NbdCmd.WRITE || req.type === NbdCmd.WRITE_ZEROES || req.type === NbdCmd.TRIM;
    if (isWrite && this.readOnly) return { error: NbdErrno.EPERM, message: 'the export is read-only' };
    if (dropped || ((req.type === NbdCmd.READ || req.type === NbdCmd.WRITE) && req.length > NBD_MAX_BLOCK)) {
      return { error: NbdErrno.EINVAL, message: `length ${req.length} exceeds the maximum block size ${NBD_MAX_BLOCK}` };
    }
    if (req.offset + BigInt(req.length) > size) {
      const pastEndWrite = req.type === NbdCmd.WRITE || req.type === NbdCmd.WRITE_ZEROES;
      // CACHE is a read-side hint: past the end is EINVAL like READ.
      return { error: pastEndWrite ? NbdErrno.ENOSPC : NbdErrno.EINVAL, message: 'request goes past the end of the export' };
    }
    if (req.offset % BigInt(blockSize) !== 0n || req.length % blockSize !== 0) {
      return { error: NbdErrno.EINVAL, message: `request is not aligned to the block size ${blockSize}` };
    }
    if (req.length === 0) return { error: NbdErrno.OK };
    const lba = req.offset / BigInt(blockSize);
    const blocks = req.length / blockSize;
    const fua = (req.flags & NbdCmdFlag.FUA) !== 0;
    switch (req.type) {
      case NbdCmd.READ: {
        const res = await session.run(rw16(false, lba, blocks, false), 'read', req.length);
        if (res.status !== ScsiStatus.GOOD) return this.failed(res.sense, false);
        const data = res.dataIn ?? Buffer.alloc(0);
        // A short Data-In would desync a simple reply: pad with zeroes (never expected).
        return { error: NbdErrno.OK, data: data.length === req.length ? data : Buffer.concat([data, Buffer.alloc(req.length - data.length)]) };
      }
      case NbdCmd.CACHE: {
        // PRE-FETCH answers CONDITION MET when the range fits the cache: also a success.
        const res = await session.run(prefetch16(lba, blocks), 'none', 0);
        if (res.status === ScsiStatus.GOOD || res.status === ScsiStatus.CONDITION_MET) return { error: NbdErrno.OK };
        return this.failed(res.sense, false);
      }
      case NbdCmd.WRITE:
        return this.scsi(session.run(rw16(true, lba, blocks, fua), 'write', req.length, payload), true);
      case NbdCmd.TRIM: {
        // TRIM is advisory (proto.md): a non-thin LU just ignores it.
        if (!session.geometry.thin) return { error: NbdErrno.OK };
        const u = unmap(lba, blocks);
        const out = await this.scsi(session.run(u.cdb, 'write', u.param.length, u.param), true);
        if (out.error !== NbdErrno.OK || !fua) return out;
        return this.scsi(session.run(synchronizeCache16(), 'none', 0), true);
      }
      case NbdCmd.WRITE_ZEROES: {
        const mayUnmap = session.geometry.thin && session.geometry.unmapReadsZero && (req.flags & NbdCmdFlag.NO_HOLE) === 0;
        // proto.md NBD_CMD_FLAG_FAST_ZERO: zeroing that would write every block is
        // not fast; fail at once with ENOTSUP so the client picks another way.
        if ((req.flags & NbdCmdFlag.FAST_ZERO) !== 0 && !mayUnmap) {
          return { error: NbdErrno.ENOTSUP, message: 'zeroing this export is not faster than writing' };
        }
        const chunk = Math.max(1, Math.floor(WRITE_SAME_CHUNK_BYTES / blockSize));
        for (let done = 0; done < blocks; done += chunk) {
          const n = Math.min(chunk, blocks - done);
          const out = await this.scsi(session.run(writeSame16(lba + BigInt(done), n, mayUnmap), 'none', 0), true);
          if (out.error !== NbdErrno.OK) return out;
        }
        if (fua) return this.scsi(session.run(synchronizeCache16(), 'none', 0), true);
        return { error: NbdErrno.OK };
      }
      default:
        return { error: NbdErrno.EINVAL, message: `${cmdName(req.type)} is not supported` };
    }
  }

  /**
   * proto.md NBD_CMD_BLOCK_STATUS for base:allocation: GET LBA STATUS from the
   * block holding the offset. Needs a selected context; past the end is EINVAL;
   * an unaligned range is fine (descriptors are cut to the request). A LU that
   * is not thin has no holes: one all-data descriptor, no SCSI command.
   */
  private async blockStatus(session: LunSession, req: NbdRequest): Promise<Outcome> {
    const context = this.blockStatusContext;
    if (context === undefined) return { error: NbdErrno.EINVAL, message: 'no meta context was selected' };
    const { blockSize, size, thin, unmapReadsZero } = session.geometry;
    if (req.length === 0) return { error: NbdErrno.EINVAL, message: 'BLOCK_STATUS needs a length' };
    if (req.offset + BigInt(req.length) > size) return { error: NbdErrno.EINVAL, message: 'request goes past the end of the export' };
    if (!thin) return { error: NbdErrno.OK, context, extents: [{ length: req.length, flags: 0 }] };
    const bs = BigInt(blockSize);
    const res = await session.run(getLbaStatus16(req.offset / bs), 'read', 8 + 16 * LBA_STATUS_DESCRIPTORS);
    if (res.status !== ScsiStatus.GOOD || !res.dataIn) return this.failed(res.sense, false);
    const reqOne = (req.flags & NbdCmdFlag.REQ_ONE) !== 0;
    const extents = lbaStatusToExtents(res.dataIn, { offset: req.offset, length: req.length, blockSize, unmapReadsZero, reqOne });
    return { error: NbdErrno.OK, context, extents };
  }

  private async scsi(p: ReturnType<LunSession['run']>, isWrite: boolean): Promise<Outcome> {
    const res = await p;
    if (res.status === ScsiStatus.GOOD) return { error: NbdErrno.OK };
    return this.failed(res.sense, isWrite);
  }

  private failed(sense: Buffer | undefined, isWrite: boolean): Outcome {
    return { error: senseToErrno(sense, isWrite), message: 'the SCSI command failed' };
  }

  private reply(req: NbdRequest, out: Outcome): void {
    if (this.closed) return;
    if (!this.structured) {
      this.send(encodeSimpleReply({ error: out.error, handle: req.handle }));
      if (out.error === NbdErrno.OK && out.data) this.send(out.data);
      return;
    }
    if (out.error !== NbdErrno.OK) {
      const payload = encodeErrorChunk({ error: out.error, message: out.message ?? '' });
      this.send(encodeReplyChunkHeader({ flags: NbdReplyFlag.DONE, type: NbdReplyType.ERROR, handle: req.handle, offset: 0n, length: payload.length }));
      this.send(payload);
      return;
    }
    if (req.type === NbdCmd.READ && out.data && out.data.length > 0) {
      this.send(
        encodeReplyChunkHeader({
          flags: NbdReplyFlag.DONE,
          type: NbdReplyType.OFFSET_DATA,
          handle: req.handle,
          offset: 0n,
          length: 8 + out.data.length,
        }),
      );
      this.send(encodeOffsetDataPrefix(req.offset));
      this.send(out.data);
      return;
    }
    if (out.extents && out.context !== undefined) {
      const payload = encodeBlockStatus(out.context, out.extents);
      this.send(encodeReplyChunkHeader({ flags: NbdReplyFlag.DONE, type: NbdReplyType.BLOCK_STATUS, handle: req.handle, offset: 0n, length: payload.length }));
      this.send(payload);
      return;
    }
    this.send(encodeReplyChunkHeader({ flags: NbdReplyFlag.DONE, type: NbdReplyType.NONE, handle: req.handle, offset: 0n, length: 0 }));
  }

  private send(b: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(b);
  }

  private end(): void {
    this.socket.end();
  }

  private broken(reason: string): void {
    this.ctx.logger.warn?.('nbd connection broken', { peer: this.peer.remoteAddress, reason });
    this.socket.destroy();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.session?.close();
    for (const cb of this.closeCallbacks) cb();
  }
}

interface Outcome {
  error: number;
  message?: string;
  data?: Buffer;
  /** BLOCK_STATUS: the meta context and its descriptors. */
  context?: number;
  extents?: BlockDescriptor[];
}
