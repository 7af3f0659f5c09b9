// The boot lab's read-only TFTP server (RFC 1350 with options: RFC 2347
// negotiation, 2348 blksize, 2349 timeout and tsize, 7440 windowsize). It
// serves iPXE binaries and scripts to PXE ROMs: requests arrive on one
// socket; every accepted read gets a new socket (its TID) bound to the same
// host. Refusals, "busy" and bad requests are answered with an ERROR from the
// listening socket, which clients accept as the server's first reply.

import dgram, { type RemoteInfo, type Socket } from 'node:dgram';
import { realpath, stat } from 'node:fs/promises';
import { silentLogger, type Logger } from '../util/log.js';
import {
  TFTP_DEFAULT_PORT,
  TFTP_ETHERNET_BLKSIZE,
  TftpErrorCode,
  TftpOpcode,
  decodePacket,
  encodeError,
  negotiateOptions,
  TFTP_DEFAULT_MAX_WINDOWSIZE,
  type TftpRequest,
} from '../protocols/tftp/index.js';
import { openConfined, splitRequestName, type Refusal } from './tftp-paths.js';
import { bufferReader, fileReader, netasciiSource, octetSource, type BlockSource } from './tftp-source.js';
import { TftpTransfer, fmtPeer } from './tftp-transfer.js';

export interface TftpServerOptions {
  /** Directory served; nothing outside it (after resolving symlinks) is read. */
  root: string;
  /** Default 0.0.0.0; an address with ':' listens on IPv6. */
  host?: string;
  /** Default 69; 0 picks any free port. */
  port?: number;
  /** Virtual files by relative name ("boot.ipxe", "x/y"), looked up before the root. */
  files?: ReadonlyMap<string, Buffer>;
  /** Concurrent transfers; more RRQs get ERROR 0 "server busy". Default 64. */
  maxTransfers?: number;
  /** Largest blksize granted (RFC 2348); default 1468, one Ethernet frame. */
  maxBlksize?: number;
  /** Largest windowsize granted (RFC 7440); default 64. */
  maxWindowsize?: number;
  /** Retransmissions of one window before the transfer is abandoned; default 5. */
  retries?: number;
  /** Retransmit timeout when the client does not negotiate one; default 1000 ms. */
  timeoutMs?: number;
  logger?: Logger;
}

export interface TftpServerStats {
  /** Transfers started (each got its own TID). */
  transfers: number;
  /** Transfers running now, including those still opening their file. */
  active: number;
  /** DATA payload bytes put on the wire, retransmissions included. */
  bytesSent: number;
  /** ERROR packets the server sent (refusals, busy, unknown TID, timeouts). */
  errors: number;
}

export interface TftpServer {
  address(): { address: string; port: number };
  /** Ends every transfer (ERROR 0 to its client) and closes every socket. */
  close(): Promise<void>;
  stats(): TftpServerStats;
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const rootReal = await realpath(opts.root);
  const rootStat = await stat(rootReal);
  if (!rootStat.isDirectory()) {
    throw Object.assign(new Error(`TFTP root ${opts.root} is not a directory`), { code: 'ENOTDIR' });
  }
  const host = opts.host ?? '0.0.0.0';
  const type = host.includes(':') ? 'udp6' : 'udp4';
  const main = dgram.createSocket({ type });
  await bind(main, host, opts.port ?? TFTP_DEFAULT_PORT);
  const server = new Server(main, {
    rootReal,
    host,
    type,
    files: opts.files ?? new Map(),
    maxTransfers: opts.maxTransfers ?? 64,
    limits: { maxBlksize: opts.maxBlksize ?? TFTP_ETHERNET_BLKSIZE, maxWindowsize: opts.maxWindowsize ?? TFTP_DEFAULT_MAX_WINDOWSIZE },
    retries: opts.retries ?? 5,
    timeoutMs: opts.timeoutMs ?? 1000,
    logger: opts.logger ?? silentLogger,
  });
  // Kept from bind time: a closed dgram socket can no longer be asked.
  const bound = main.address();
  return {
    address: () => ({ address: bound.address, port: bound.port }),
    close: () => server.close(),
    stats: () => server.stats(),
  };
}

function bind(socket: Socket, address: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

interface ServerConfig {
  rootReal: string;
  host: string;
  type: 'udp4' | 'udp6';
  files: ReadonlyMap<string, Buffer>;
  maxTransfers: number;
  limits: { maxBlksize: number; maxWindowsize: number };
  retries: number;
  timeoutMs: number;
  logger: Logger;
}

class Server {
  private readonly transfers = new Set<TftpTransfer>();
  /** RRQs whose file is being opened; they hold a transfer slot already. */
  private readonly opening = new Set<Promise<void>>();
  /** Client address:port + file of running or opening transfers, to drop retransmitted RRQs. */
  private readonly clients = new Set<string>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly counters = { transfers: 0, bytesSent: 0, errors: 0 };

  constructor(
    private readonly main: Socket,
    private readonly cfg: ServerConfig,
  ) {
    main.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    main.on('error', (err) => cfg.logger.error('tftp: listening socket error', { err }));
  }

  stats(): TftpServerStats {
    return { ...this.counters, active: this.transfers.size + this.opening.size };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await new Promise<void>((resolve) => this.main.close(() => resolve()));
      await Promise.all([...this.opening]);
      await Promise.all([...this.transfers].map((t) => t.abort('Server shutting down')));
    })();
    return this.closing;
  }

  private refuse(rinfo: RemoteInfo, code: number, message: string, log: { reason: string; file?: string }): void {
    if (this.closed) return;
    this.counters.errors++;
    this.cfg.logger.warn('tftp: request refused', { client: fmtPeer(rinfo), code, ...log });
    this.main.send(encodeError(code, message), rinfo.port, rinfo.address, () => {});
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    // Never answer an ERROR: two servers could otherwise bounce errors forever.
    if (msg.length >= 2 && msg.readUInt16BE(0) === TftpOpcode.ERROR) return;
    const decoded = decodePacket(msg);
    if (!decoded.ok) {
      this.refuse(rinfo, TftpErrorCode.ILLEGAL_OPERATION, 'Illegal TFTP operation', { reason: decoded.reason });
      return;
    }
    const packet = decoded.packet;
    if (packet.opcode === TftpOpcode.WRQ) {
      this.refuse(rinfo, TftpErrorCode.ACCESS_VIOLATION, 'Read-only server', { reason: 'write request', file: packet.filename });
      return;
    }
    if (packet.opcode !== TftpOpcode.RRQ) {
      this.refuse(rinfo, TftpErrorCode.ILLEGAL_OPERATION, 'Illegal TFTP operation', { reason: `opcode ${packet.opcode} on the request port` });
      return;
    }
    const key = `${fmtPeer(rinfo)} ${packet.filename}`;
    // A client that resends its RRQ before our first reply arrives must not
    // get a second transfer racing the first.
    if (this.clients.has(key)) return;
    if (this.transfers.size + this.opening.size >= this.cfg.maxTransfers) {
      this.refuse(rinfo, TftpErrorCode.NOT_DEFINED, 'Server busy, try again later', { reason: 'maxTransfers reached', file: packet.filename });
      return;
    }
    this.clients.add(key);
    const opening = this.begin(packet, rinfo, key)
      .catch((err: unknown) => {
        this.cfg.logger.error('tftp: transfer setup failed', { client: fmtPeer(rinfo), file: packet.filename, err });
        this.clients.delete(key);
      })
      .finally(() => this.opening.delete(opening));
    this.opening.add(opening);
  }

  private async begin(req: TftpRequest, rinfo: RemoteInfo, key: string): Promise<void> {
    const found = await this.openSource(req);
    if ('reason' in found) {
      this.clients.delete(key);
      this.refuse(rinfo, found.code, found.message, { reason: found.reason, file: req.filename });
      return;
    }
    if (this.closed) {
      this.clients.delete(key);
      return;
    }
    const negotiated = negotiateOptions(
      { opcode: TftpOpcode.RRQ, options: req.options, fileSize: req.mode === 'octet' ? found.size : undefined },
      this.cfg.limits,
    );
    const socket = dgram.createSocket({ type: this.cfg.type });
    try {
      await bind(socket, this.cfg.host, 0);
    } catch (err) {
      await found.reader.close();
      throw err;
    }
    const source: BlockSource = req.mode === 'octet' ? octetSource(found.reader, negotiated.blksize) : netasciiSource(found.reader, negotiated.blksize);
    if (this.closed) {
      socket.close();
      await source.close();
      this.clients.delete(key);
      return;
    }
    const transfer = new TftpTransfer({
      socket,
      peer: { address: rinfo.address, port: rinfo.port },
      filename: req.filename,
      source,
      negotiated,
      defaultTimeoutMs: this.cfg.timeoutMs,
      retries: this.cfg.retries,
      logger: this.cfg.logger,
      counters: {
        dataBytes: (n) => (this.counters.bytesSent += n),
        errorSent: () => this.counters.errors++,
      },
      // Released at once, not when the socket has closed: a client may ask
      // for its next file from the same port right after the last ACK.
      onFinish: () => this.clients.delete(key),
    });
    this.transfers.add(transfer);
    this.counters.transfers++;
    void transfer.done.then(() => this.transfers.delete(transfer));
    this.cfg.logger.debug('tftp: transfer', {
      client: fmtPeer(rinfo),
      file: req.filename,
      mode: req.mode,
      options: negotiated.accepted.map((o) => `${o.name}=${o.value}`).join(','),
    });
    transfer.start();
  }

  private async openSource(req: TftpRequest): Promise<Refusal | { reader: ReturnType<typeof bufferReader>; size: number }> {
    const parts = splitRequestName(req.filename);
    if (!Array.isArray(parts)) return parts;
    const virtual = this.cfg.files.get(parts.join('/'));
    if (virtual !== undefined) return { reader: bufferReader(virtual), size: virtual.length };
    const opened = await openConfined(this.cfg.rootReal, parts);
    if ('reason' in opened) return opened;
    return { reader: fileReader(opened.handle, opened.size), size: opened.size };
  }
}
