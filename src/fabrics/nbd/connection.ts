// One NBD client connection: greeting, option haggling (negotiation.ts), then
// the transmission phase. Each request is checked at the edge (proto.md
// "Request message requirements"), then becomes one operation on the core's
// block door (export-nexus.ts); a failure's reason becomes the NBD errno
// through the core's one map (core/errno.ts, nbdErrnoOf). A bad
// request gets an error reply and the stream stays in sync; only a broken
// stream (bad magic, oversized option) closes the connection. STARTTLS
// swaps the socket for a TLS one in the middle of option haggling (tls.ts).
//
// Backpressure (docs/security.md, limits.ts): a request counts as in flight
// until its reply has been handed to the kernel (the write callback), and so
// do the payload bytes it holds: a WRITE's data until the backstore has it, a
// READ's length until its reply has left. Reading stops (socket and framer,
// which may hold thousands of headers from one chunk) while too many requests
// or bytes are held or the socket's queued output is above its high-water
// mark, and starts again when they fall (drain, write callbacks). Option
// haggling reads one option at a time under the same output mark. A
// handshake that has not reached transmission in handshakeTimeout seconds,
// and a connection idle for idleTimeout seconds (no request, no reply read,
// nothing in the backstore), are closed.

import type { Socket } from 'node:net';
import { reasonToErrno, type BlockFailure, type FabricOps } from '../../core/index.js';
import {
  NbdCmd,
  NbdCmdFlag,
  NbdErrno,
  NbdHandshakeFlag,
  OptionFramer,
  RequestFramer,
  cmdName,
  encodeGreeting,
  nbdErrnoOf,
  LunkitError,
  type NbdRequest,
  type OptionFrame,
} from '../../protocols/nbd/index.js';
import { extentsToBlockStatus } from './block-status.js';
import { EXPORT_LUN, ExportNexus } from './export-nexus.js';
import { NBD_MAX_BLOCK, Negotiation, type ResolvedExport, type TransmissionMode } from './negotiation.js';
import type { NbdCore, NbdExportConfig, NbdLogger, PeerInfo } from './ports.js';
import { BufferPool } from '../../util/buffer-pool.js';
import { encodeReply, type Outcome } from './replies.js';
import { upgradeToTls, type NbdTlsSetup } from './tls.js';
import { DEFAULT_NBD_LIMITS, type NbdLimits } from './limits.js';

/** Pause reading while this many requests are in flight (resume at half). */
const MAX_IN_FLIGHT = 64;

/** Reply coalescing stops at this many bytes: a 4 KiB batch of QD32 fits, big reads go at once. */
const COALESCE_MAX_BYTES = 256 * 1024;

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
  /** STARTTLS support; absent: NOTLS. */
  tls?: NbdTlsSetup | undefined;
  /** The server's budgets, read live (setLimits applies from the next check on); absent: the defaults. */
  limits?(): NbdLimits;
  /** A connection closed on a limit (the server counts them and logs a summary). */
  limitHit?(what: NbdLimitEvent): void;
}

/** Why a connection was closed or throttled on a limit (NbdServer.stats() counts them). */
export type NbdLimitEvent = 'handshakeTimeout' | 'idleTimeout' | 'tooManyOptions' | 'readPauseBackpressure' | 'readPauseBudget';

/** One connection as `NbdServer.connections()` lists it (plain JSON, for `lunkit sessions`). */
export interface NbdConnectionInfo {
  /** Server-wide connection number (also in the nexus's initiator port id). */
  id: number;
  /** The export picked with NBD_OPT_GO/EXPORT_NAME; undefined while haggling. */
  export: string | undefined;
  /** "address:port", or "unix" for a Unix socket client. */
  remote: string;
  /** "address:port", or "unix:PATH". */
  local: string;
  /** Accepted at (ms since the epoch). */
  since: number;
  /** Requests received whose reply has not yet been handed to the kernel. */
  inFlight: number;
  /** Payload bytes held: WRITE data not yet written, READ replies not yet sent. */
  inFlightBytes: number;
  /** Output queued in the process, not yet taken by the kernel. */
  queuedBytes: number;
  /** Reading is stopped right now (backpressure). */
  paused: boolean;
  /** Times reading was stopped by backpressure on this connection. */
  pauses: number;
  /** STARTTLS completed. */
  tls: boolean;
  structured: boolean;
  extendedHeaders: boolean;
}

export class NbdConnection {
  private session: ExportNexus | undefined;
  private exportName: string | undefined;
  private readonly since = Date.now();
  /** Ending on the server's initiative (export deleted): new requests get ESHUTDOWN. */
  private shuttingDown = false;
  private mode: TransmissionMode = { structured: false, extended: false };
  /** The socket in use: the accepted one, or the TLS socket wrapping it after STARTTLS. */
  private socket: Socket;
  /**
   * Between a STARTTLS option and the TLS socket: raw bytes that must not be
   * framed as options (they are the client's TLS handshake).
   */
  private held: Buffer[] | undefined;
  /** Context id of base:allocation when the client selected it (SET_META_CONTEXT). */
  private blockStatusContext: number | undefined;
  private readOnly = false;
  private inFlight = 0;
  /** Payload bytes held for requests in flight (see the header comment). */
  private heldBytes = 0;
  /** The framer reading the socket now (options, then requests); gated by updateReading(). */
  private framer: { pause(): void; resume(): void } | undefined;
  /** Options received and not yet answered (haggling reads one at a time). */
  private optionsPending = 0;
  private readingPaused = false;
  private pauses = 0;
  /** Closes a handshake that does not reach transmission in time. */
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** Idle timeout: one timer, re-armed lazily from lastActive (no timer work per request). */
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActive = 0;
  /** Requests the backstore is working on (arrived, reply not yet queued). */
  private executing = 0;
  /** The socket is corked until the next setImmediate (reply coalescing). */
  private corked = false;
  private corkedBytes = 0;
  private disconnecting = false;
  private closed = false;
  /**
   * READ Data-In memory, reused once a reply has left, and WRITE payloads that
   * straddle socket chunks, reused once the write is done (src/util/buffer-pool.ts).
   */
  private readonly readBuffers = new BufferPool();
  /** The pooled buffer the payload being framed was copied into, until onRequest takes it. */
  private payloadLease: Buffer | undefined;
  private readonly closeCallbacks: Array<() => void> = [];

  constructor(
    socket: Socket,
    private readonly ctx: ConnectionContext,
    private readonly peer: PeerInfo,
  ) {
    this.socket = socket;
  }

  private limits(): NbdLimits {
    return this.ctx.limits?.() ?? DEFAULT_NBD_LIMITS;
  }

  get nexusId(): number | undefined {
    return this.session?.nexusId;
  }

  /** The export in use (transmission phase), else undefined. */
  get export(): string | undefined {
    return this.exportName;
  }

  info(): NbdConnectionInfo {
    const p = this.peer;
    const unix = p.remoteAddress === 'unix';
    return {
      id: p.connectionId,
      export: this.exportName,
      remote: unix ? 'unix' : `${p.remoteAddress}:${p.remotePort}`,
      local: unix ? p.localAddress : `${p.localAddress}:${p.localPort}`,
      since: this.since,
      inFlight: this.inFlight,
      inFlightBytes: this.heldBytes,
      queuedBytes: this.socket.writableLength,
      paused: this.readingPaused,
      pauses: this.pauses,
      tls: this.encrypted,
      structured: this.mode.structured || this.mode.extended,
      extendedHeaders: this.mode.extended,
    };
  }

  /**
   * Ends the connection on the server's initiative (its export was deleted):
   * requests already in flight finish and are answered, requests that arrive
   * meanwhile are answered NBD_ESHUTDOWN (proto.md "Error values": the server
   * is shutting down), then the socket is ended. After graceMs whatever is
   * left is cut. Resolves when the socket is closed.
   */
  async shutdown(graceMs = 5000): Promise<void> {
    if (this.closed) return;
    const closed = new Promise<void>((r) => this.onClose(r));
    this.shuttingDown = true;
    const timer = setTimeout(() => this.destroy(), graceMs);
    timer.unref();
    try {
      await this.drain();
      // Let the last replies leave the cork before the FIN.
      this.flushReplies();
      this.end();
      await closed;
    } finally {
      clearTimeout(timer);
    }
  }

  onClose(cb: () => void): void {
    this.closeCallbacks.push(cb);
  }

  start(): void {
    const s = this.socket;
    s.setNoDelay(true);
    s.on('error', (e) => this.ctx.logger.debug?.('nbd socket error', { err: e.message }));
    s.on('close', () => this.finish());
    s.on('drain', this.updateReading);
    // nbdkit --timeout: from accept to transmission, whatever the client does meanwhile.
    this.handshakeTimer = setTimeout(() => this.limitClose('handshakeTimeout', 'no export chosen in time'), this.limits().handshakeTimeout * 1000);
    this.handshakeTimer.unref();
    const negotiation = new Negotiation(
      {
        send: (b) => this.send(b),
        exports: () => this.resolvedExports(),
        openSession: (exp) => this.openSession(exp),
        enterTransmission: (session, exp, mode, context) => this.enterTransmission(session, exp, mode, context, framers.current),
        startTls: () => this.startTls(framers, onOption),
        end: () => this.end(),
        tooManyOptions: () => this.ctx.limitHit?.('tooManyOptions'),
        debug: (msg, fields) => this.ctx.logger.debug?.(msg, fields),
      },
      this.ctx.tls?.mode ?? 'off',
      () => this.limits().maxOptions,
    );
    // Options are answered strictly in order, one at a time: reading stops
    // while one is pending, so a client pipelining options (or never reading
    // the replies) makes the server hold one option and its replies, no more.
    let chain = Promise.resolve();
    const onOption = (frame: OptionFrame): void => {
      const copy = { option: frame.option, data: Buffer.from(frame.data) };
      // STARTTLS: whatever follows it on the wire is TLS, not options; stop
      // framing now, before the option is even answered.
      if (negotiation.willStartTls(copy)) this.hold(framers.current);
      this.optionsPending++;
      this.updateReading();
      chain = chain
        .then(() => negotiation.onOption(copy))
        .catch((e: unknown) => this.broken(String(e)))
        .finally(() => {
          this.optionsPending--;
          if (negotiation.finished && this.session === undefined) framers.current.stop();
          this.updateReading();
        });
    };
    const framers = {
      current: new OptionFramer({
        onClientFlags: (f) => negotiation.onClientFlags(f),
        onOption,
        onError: (e) => this.broken(e.message),
      }),
    };
    this.framer = framers.current;
    s.on('data', (chunk: Buffer) => {
      if (this.held) this.held.push(chunk);
      else if (this.session === undefined) framers.current.push(chunk);
    });
    this.send(encodeGreeting(NbdHandshakeFlag.FIXED_NEWSTYLE | NbdHandshakeFlag.NO_ZEROES));
  }

  /** Stops option framing; later bytes are held raw until startTls() (or transmission) takes them. */
  private hold(framer: OptionFramer): void {
    if (this.held) return;
    const rest = framer.detach();
    this.held = rest.length > 0 ? [rest] : [];
  }

  /** Takes the held bytes and stops holding. */
  private unhold(): Buffer {
    const held = this.held ?? [];
    this.held = undefined;
    return held.length === 1 ? held[0] : Buffer.concat(held);
  }

  /**
   * Called by the negotiation after it queued the STARTTLS ACK: wrap the
   * socket in TLS and go on haggling over it with a fresh option framer (no
   * client flags this time). Rejects if the handshake fails.
   */
  private async startTls(framers: { current: OptionFramer }, onOption: (f: OptionFrame) => void): Promise<void> {
    const setup = this.ctx.tls;
    if (!setup) throw new LunkitError('ERR_INTERNAL', 'TLS is not configured');
    const plain = this.socket;
    plain.removeAllListeners('data');
    const buffered = this.unhold();
    const secure = await upgradeToTls(plain, setup, buffered);
    if (this.closed) {
      secure.destroy();
      return;
    }
    this.socket = secure;
    // The plain socket's pause state stays with it; the TLS socket starts reading.
    this.readingPaused = false;
    secure.on('error', (e) => this.ctx.logger.debug?.('nbd TLS socket error', { err: e.message }));
    secure.on('close', () => this.finish());
    secure.on('drain', this.updateReading);
    this.ctx.logger.debug?.('nbd TLS established', { peer: this.peer.remoteAddress, protocol: secure.getProtocol() });
    framers.current = new OptionFramer({ expectClientFlags: false, onOption, onError: (e) => this.broken(e.message) });
    this.framer = framers.current;
    secure.on('data', (chunk: Buffer) => {
      if (this.held) this.held.push(chunk);
      else if (this.session === undefined) framers.current.push(chunk);
    });
  }

  /** Closes at once (server shutdown or the core ending the nexus). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Transmission started over TLS (for logs and tests). */
  get encrypted(): boolean {
    return 'encrypted' in this.socket;
  }

  /**
   * Stops or restarts reading from the client: stopped while too many
   * requests or payload bytes are held, while output queued in the process
   * is above the high-water mark, or (haggling) while an option is pending.
   * Called whenever one of those changes, and on 'drain'.
   */
  private readonly updateReading = (): void => {
    // A destroyed socket calls its pending write callbacks (with an error)
    // before 'close': freeing their budget must not restart the framer on
    // the requests still queued in it.
    if (this.closed || this.socket.destroyed) return;
    const limits = this.limits();
    const queued = this.socket.writableLength;
    let stop: boolean;
    if (this.session === undefined) stop = this.optionsPending > 0 || queued > limits.sendHighWaterBytes;
    else if (this.readingPaused) {
      // Resume with some room (half the count), not at the first free slot.
      stop = this.inFlight > MAX_IN_FLIGHT / 2 || this.heldBytes > limits.inFlightBytes || queued > limits.sendHighWaterBytes;
    } else stop = this.inFlight >= MAX_IN_FLIGHT || this.heldBytes > limits.inFlightBytes || queued > limits.sendHighWaterBytes;
    if (stop === this.readingPaused) return;
    this.readingPaused = stop;
    if (stop) {
      this.framer?.pause();
      this.socket.pause();
      // Haggling pauses once per option by design: only transmission pauses are news.
      if (this.session !== undefined) {
        this.pauses++;
        // Backpressure: the client is not reading; budget: requests or payload bytes held.
        this.ctx.limitHit?.(queued > limits.sendHighWaterBytes ? 'readPauseBackpressure' : 'readPauseBudget');
      }
    } else {
      this.socket.resume();
      this.framer?.resume();
    }
  };

  /** Closes the connection because a limit was reached (counted and logged by the server). */
  private limitClose(what: NbdLimitEvent, reason: string): void {
    if (this.closed) return;
    this.ctx.logger.debug?.('nbd connection closed on a limit', { peer: this.peer.remoteAddress, id: this.peer.connectionId, limit: what, reason });
    this.ctx.limitHit?.(what);
    this.socket.destroy();
  }

  /**
   * Idle timeout (limits.idleTimeout, 0: never): idle means no request
   * received, no reply taken by the kernel, and nothing in the backstore for
   * that long. So a client that stops reading its replies is idle too (it
   * would otherwise hold its inFlightBytes for as long as it keeps the TCP
   * connection), while a slow backstore request is not. The timer is not
   * touched per request: when it fires it looks at lastActive and sleeps
   * again for the rest.
   */
  armIdleTimer(): void {
    if (this.idleTimer !== undefined || this.closed || this.session === undefined) return;
    const idle = this.limits().idleTimeout;
    if (idle <= 0) return;
    const due = this.lastActive + idle * 1000 - Date.now();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const limit = this.limits().idleTimeout;
      if (limit <= 0) return;
      if (this.executing > 0) this.lastActive = Date.now();
      else if (Date.now() - this.lastActive >= limit * 1000) {
        this.limitClose('idleTimeout', this.inFlight > 0 ? `replies not read for ${limit} s` : `no request for ${limit} s`);
        return;
      }
      this.armIdleTimer();
    }, Math.max(due, 10));
    this.idleTimer.unref();
  }

  /** The server's limits changed: re-arm timers (counted from accept / last activity) and re-check reading. */
  limitsChanged(): void {
    if (this.handshakeTimer !== undefined) {
      clearTimeout(this.handshakeTimer);
      const left = this.since + this.limits().handshakeTimeout * 1000 - Date.now();
      this.handshakeTimer = setTimeout(() => this.limitClose('handshakeTimeout', 'no export chosen in time'), Math.max(left, 0));
      this.handshakeTimer.unref();
    }
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    this.armIdleTimer();
    this.updateReading();
  }

  /** Resolves when the requests in flight have been answered (bounded by the caller). */
  async drain(): Promise<void> {
    while (this.inFlight > 0 && !this.closed) await new Promise((r) => setTimeout(r, 10));
  }

  private resolvedExports(): ResolvedExport[] {
    return [...this.ctx.exports()].map(([name, e]) => ({ name, readOnly: e.readOnly ?? false, description: e.description ?? '' }));
  }

  private openSession(exp: ResolvedExport): Promise<ExportNexus> {
    const cfg = this.ctx.exports().get(exp.name);
    if (!cfg) return Promise.reject(new LunkitError('ERR_NBD_EXPORT_UNAVAILABLE', `export "${exp.name}" went away`));
    try {
      return Promise.resolve(ExportNexus.open(this.ctx.core, this.ctx.fabric, this.peer, exp.name, cfg.device, exp.readOnly));
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  private enterTransmission(
    session: ExportNexus,
    exp: ResolvedExport,
    mode: TransmissionMode,
    context: number | undefined,
    options: OptionFramer,
  ): void {
    if (this.closed) {
      session.close();
      return;
    }
    this.session = session;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.exportName = exp.name;
    this.mode = mode;
    this.blockStatusContext = context;
    this.readOnly = exp.readOnly || session.geometry.writeProtected;
    this.ctx.logger.info?.('nbd client attached', { peer: this.peer.remoteAddress, export: exp.name, ...mode, tls: this.encrypted });
    const framer = new RequestFramer({
      extendedHeaders: mode.extended,
      maxPayloadLength: NBD_MAX_BLOCK,
      // Oversized WRITE payloads are read and dropped so the stream stays in sync.
      maxDiscardLength: 0xffffffff,
      payloadTarget: (length) => {
        const lease = this.readBuffers.tryLease(length);
        this.payloadLease = lease;
        return lease?.subarray(0, length);
      },
      onRequest: (req, payload, dropped) => this.onRequest(req, payload, dropped),
      onError: (e: LunkitError) => this.broken(e.message),
    });
    let rest = options.detach();
    // Options sent after a STARTTLS that was never reached (GO came first) are requests.
    if (this.held) rest = Buffer.concat([rest, this.unhold()]);
    this.socket.removeAllListeners('data');
    this.socket.on('data', (chunk: Buffer) => framer.push(chunk));
    this.framer = framer;
    // Haggling left reading stopped (its last option was pending): start afresh.
    this.readingPaused = false;
    this.socket.resume();
    this.lastActive = Date.now();
    this.armIdleTimer();
    if (rest.length > 0) framer.push(rest);
  }

  private onRequest(req: NbdRequest, payload: Buffer, dropped: boolean): void {
    // A payload copied into a pooled buffer: it goes back once nothing uses it.
    let lease = this.payloadLease;
    this.payloadLease = undefined;
    if (lease && lease.buffer !== payload.buffer) {
      this.readBuffers.release(lease);
      lease = undefined;
    }
    if (this.disconnecting || this.shuttingDown || req.type === NbdCmd.DISC || this.socket.destroyed) {
      if (lease) this.readBuffers.release(lease);
      lease = undefined;
    }
    if (this.disconnecting || this.socket.destroyed) return;
    if (req.type === NbdCmd.DISC) {
      // proto.md NBD_CMD_DISC: finish what is in flight, then close; no reply.
      this.disconnecting = true;
      void this.drain().then(() => this.end());
      return;
    }
    this.lastActive = Date.now();
    if (this.shuttingDown) {
      this.reply(req, { error: NbdErrno.ESHUTDOWN, message: 'the export was removed' });
      // A client flooding requests meanwhile meets the output mark like any other.
      this.updateReading();
      return;
    }
    // Held until the block operation settles (WRITE data) or the reply has
    // left (READ data); an over-long READ is refused before anything is read.
    const writeBytes = payload.length;
    const readBytes = req.type === NbdCmd.READ && req.length <= NBD_MAX_BLOCK ? req.length : 0;
    this.inFlight++;
    this.executing++;
    this.heldBytes += writeBytes + readBytes;
    this.updateReading();
    // The payload is a view of socket chunks, which are never reused (no copy),
    // or, when it straddled chunks, pooled memory given back once the block
    // operation has settled (the backstore holds no reference after that).
    void this.execute(req, payload, dropped)
      .catch((e: unknown): Outcome => ({ error: NbdErrno.EIO, message: e instanceof Error ? e.message : String(e) }))
      .then((out) => {
        if (lease) this.readBuffers.release(lease);
        this.heldBytes -= writeBytes;
        // The client gets a whole idle period to read what the backstore just finished.
        if (--this.executing === 0) this.lastActive = Date.now();
        this.reply(req, out, () => {
          this.lastActive = Date.now();
          this.inFlight--;
          this.heldBytes -= readBytes;
          this.updateReading();
        });
        // The reply may have pushed the queued output over the mark.
        this.updateReading();
      });
  }

  /** Edge validation, then the block operation for one request. */
  private async execute(req: NbdRequest, payload: Buffer, dropped: boolean): Promise<Outcome> {
    const session = this.session;
    if (!session) return { error: NbdErrno.EINVAL, message: 'no export' };
    let allowed = ALLOWED_FLAGS[req.type];
    if (allowed === undefined) return { error: NbdErrno.EINVAL, message: `${cmdName(req.type)} is not supported` };
    // Extended headers: WRITE carries its data length with PAYLOAD_LEN, and MUST set it.
    if (this.mode.extended && req.type === NbdCmd.WRITE) {
      allowed |= NbdCmdFlag.PAYLOAD_LEN;
      if ((req.flags & NbdCmdFlag.PAYLOAD_LEN) === 0) return { error: NbdErrno.EINVAL, message: 'WRITE without NBD_CMD_FLAG_PAYLOAD_LEN' };
    }
    // proto.md NBD_CMD_FLAG_DF: only when SEND_DF was offered, i.e. with structured replies.
    if ((req.flags & NbdCmdFlag.DF) !== 0 && !this.mode.structured) {
      return { error: NbdErrno.EINVAL, message: 'NBD_CMD_FLAG_DF needs structured replies' };
    }
    if ((req.flags & ~allowed) !== 0) return { error: NbdErrno.EINVAL, message: `flags 0x${req.flags.toString(16)} not allowed` };
    const blocks = session.blocks;
    if (req.type === NbdCmd.FLUSH) return this.result(await blocks.flush(EXPORT_LUN), true);
    if (req.type === NbdCmd.BLOCK_STATUS) return this.blockStatus(session, req);

    const isWrite = req.type === NbdCmd.WRITE || req.type === NbdCmd.WRITE_ZEROES || req.type === NbdCmd.TRIM;
    if (isWrite && this.readOnly) return { error: NbdErrno.EPERM, message: 'the export is read-only' };
    if (dropped || ((req.type === NbdCmd.READ || req.type === NbdCmd.WRITE) && req.length > NBD_MAX_BLOCK)) {
      return { error: NbdErrno.EINVAL, message: `length ${req.length} exceeds the maximum block size ${NBD_MAX_BLOCK}` };
    }
    // Offsets beyond 2^53 cannot be inside any export: past the end.
    const offset = req.offset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(req.offset) : Number.MAX_SAFE_INTEGER;
    if (req.length === 0) {
      // proto.md: a zero-length request is valid inside the export (nothing to do).
      const geo = blocks.geometry(EXPORT_LUN);
      if (typeof geo === 'string') return this.failed(geo, isWrite);
      if (offset > geo.size) {
        const pastEndWrite = req.type === NbdCmd.WRITE || req.type === NbdCmd.WRITE_ZEROES;
        return { error: pastEndWrite ? NbdErrno.ENOSPC : NbdErrno.EINVAL, message: 'request goes past the end of the export' };
      }
      if (offset % geo.blockSize !== 0) return { error: NbdErrno.EINVAL, message: `request is not aligned to the block size ${geo.blockSize}` };
      return { error: NbdErrno.OK };
    }
    const fua = (req.flags & NbdCmdFlag.FUA) !== 0;
    switch (req.type) {
      case NbdCmd.READ: {
        // read() resolves only after the backstore is done with the buffer.
        const lease = this.readBuffers.tryLease(req.length);
        let res: Buffer | BlockFailure;
        try {
          res = await blocks.read(EXPORT_LUN, offset, req.length, lease);
        } catch (e) {
          if (lease) this.readBuffers.release(lease);
          throw e;
        }
        if (typeof res === 'string') {
          if (lease) this.readBuffers.release(lease);
          return this.failed(res, false);
        }
        return { error: NbdErrno.OK, data: res, lease };
      }
      case NbdCmd.CACHE:
        // CACHE is a read-side hint: past the end is EINVAL like READ.
        return this.result(blocks.cache(EXPORT_LUN, offset, req.length), false);
      case NbdCmd.WRITE:
        return this.result(await blocks.write(EXPORT_LUN, offset, payload, fua), true);
      case NbdCmd.TRIM:
        // TRIM is advisory (proto.md): the door ignores it on a LU that is not thin.
        // Past the end is EINVAL, not ENOSPC: nothing would be written there.
        return this.result(await blocks.trim(EXPORT_LUN, offset, req.length, fua), false);
      case NbdCmd.WRITE_ZEROES:
        return this.result(
          await blocks.zeroes(EXPORT_LUN, offset, req.length, {
            mayTrim: (req.flags & NbdCmdFlag.NO_HOLE) === 0,
            fastZero: (req.flags & NbdCmdFlag.FAST_ZERO) !== 0,
            fua,
          }),
          true,
        );
      default:
        return { error: NbdErrno.EINVAL, message: `${cmdName(req.type)} is not supported` };
    }
  }

  /**
   * proto.md NBD_CMD_BLOCK_STATUS for base:allocation: the door's extents
   * from the block holding the offset. Needs a selected context; past the
   * end is EINVAL; an unaligned range is fine (descriptors are cut to the
   * request).
   */
  private async blockStatus(session: ExportNexus, req: NbdRequest): Promise<Outcome> {
    const context = this.blockStatusContext;
    if (context === undefined) return { error: NbdErrno.EINVAL, message: 'no meta context was selected' };
    const geo = session.blocks.geometry(EXPORT_LUN);
    if (typeof geo === 'string') return this.failed(geo, false);
    if (req.length === 0) return { error: NbdErrno.EINVAL, message: 'BLOCK_STATUS needs a length' };
    if (req.offset + BigInt(req.length) > BigInt(geo.size)) return { error: NbdErrno.EINVAL, message: 'request goes past the end of the export' };
    const bs = geo.blockSize;
    const offset = Number(req.offset);
    const start = offset - (offset % bs);
    const stop = Math.min(geo.size, Math.ceil((offset + req.length) / bs) * bs);
    const extents = await session.blocks.extents(EXPORT_LUN, start, stop - start);
    if (typeof extents === 'string') return this.failed(extents, false);
    const reqOne = (req.flags & NbdCmdFlag.REQ_ONE) !== 0;
    return {
      error: NbdErrno.OK,
      context,
      extents: extentsToBlockStatus(extents, { offset: req.offset, length: req.length, unmapReadsZero: geo.unmapReadsZero, reqOne }),
    };
  }

  private result(failure: BlockFailure | undefined, isWrite: boolean): Outcome {
    return failure === undefined ? { error: NbdErrno.OK } : this.failed(failure, isWrite);
  }

  /** The one reason-to-errno map (core/errno.ts), narrowed to NBD's wire set. */
  private failed(failure: BlockFailure, isWrite: boolean): Outcome {
    return { error: nbdErrnoOf(reasonToErrno(failure, isWrite)), message: failure };
  }

  /** Queues a reply; `sent` runs once the kernel has all of it (or it was dropped with the connection). */
  private reply(req: NbdRequest, out: Outcome, sent?: () => void): void {
    const lease = out.lease;
    if (this.closed || this.socket.destroyed) {
      if (lease) this.readBuffers.release(lease);
      sent?.();
      return;
    }
    const parts = encodeReply(req, out, this.mode);
    // Coalesce: replies finished in one turn of the event loop (libuv hands
    // back all completed file I/O at once, each completion its own callback)
    // leave in one writev when setImmediate runs after the poll phase, instead
    // of one syscall and one TCP segment each. Measured with fio QD32 4 KiB
    // random reads, this was the fabric's largest cost (bench/README.md).
    // Large data gains nothing from waiting: a batch goes out once it holds
    // COALESCE_MAX_BYTES.
    if (!this.corked) {
      this.corked = true;
      this.corkedBytes = 0;
      this.socket.cork();
      setImmediate(this.flushReplies);
    }
    const last = parts.length - 1;
    for (let i = 0; i <= last; i++) {
      const p = parts[i];
      // The pooled READ buffer is reused, and the request stops counting as
      // in flight, only once the kernel has every byte of the reply: the
      // write callback, not write() returning. Writes complete in order, so
      // the last part's callback covers the whole reply. (Destroying the
      // socket calls pending callbacks with an error: they still run.)
      if (i === last && (lease || sent)) {
        this.socket.write(p, () => {
          if (lease) this.readBuffers.release(lease);
          sent?.();
        });
      } else this.socket.write(p);
      this.corkedBytes += p.length;
    }
    if (this.corkedBytes >= COALESCE_MAX_BYTES) this.flushReplies();
  }

  /** Sends the corked batch (a stale setImmediate may flush a newer batch early: harmless). */
  private readonly flushReplies = (): void => {
    if (!this.corked) return;
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  /** Option haggling output; the queued bytes are checked when the option's turn ends. */
  private send(b: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(b);
  }

  private end(): void {
    this.socket.end();
    // A client that never closes its side would keep a half-open socket: cut it.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private broken(reason: string): void {
    this.ctx.logger.warn?.('nbd connection broken', { peer: this.peer.remoteAddress, reason });
    this.socket.destroy();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.idleTimer);
    this.readBuffers.close();
    this.session?.close();
    for (const cb of this.closeCallbacks) cb();
  }
}
