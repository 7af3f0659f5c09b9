// Opening one negotiated connection: TCP or Unix socket, then the handshake,
// all under one deadline (connectTimeoutMs). Also the two one-shot queries
// (LIST, INFO) that end with ABORT instead of entering transmission.

import net from 'node:net';
import { NbdClientError } from './errors.js';
import { HandshakeReader } from './handshake-reader.js';
import { NbdConnection } from './connection.js';
import { SocketInput } from './socket-input.js';
import { negotiate, abortHandshake, type NegotiateOptions, type Negotiated } from './negotiate.js';
import type { NbdAddress } from './url.js';

/** Open a socket to the address, reading through `input` (one reused receive buffer). */
function openSocket(addr: NbdAddress, input: SocketInput): net.Socket {
  const { onread } = input;
  return addr.transport === 'unix' ? net.connect({ path: addr.path, onread }) : net.connect({ host: addr.host, port: addr.port, onread });
}

function where(addr: NbdAddress): string {
  return addr.transport === 'unix' ? addr.path : `${addr.host}:${addr.port}`;
}

/**
 * Connect and run `talk` over the handshake reader, all within timeoutMs.
 * On any failure the socket is destroyed; on success the socket is handed
 * back to the caller with the reader still attached.
 */
async function withSocket<T>(
  addr: NbdAddress,
  timeoutMs: number,
  talk: (r: HandshakeReader, sock: net.Socket) => Promise<T>,
): Promise<{ value: T; sock: net.Socket; input: SocketInput; reader: HandshakeReader }> {
  const input = new SocketInput();
  const sock = openSocket(addr, input);
  const reader = new HandshakeReader(sock, input);
  let rejectConnect: ((e: Error) => void) | undefined;
  const timer = setTimeout(() => {
    const err = new NbdClientError('ERR_NBD_TIMEOUT', `connecting to ${where(addr)} took longer than ${timeoutMs} ms`);
    reader.fail(err);
    rejectConnect?.(err);
    sock.destroy();
  }, timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      rejectConnect = reject;
      const onError = (err: Error): void => {
        reject(new NbdClientError('ERR_NBD_CONNECT', `cannot connect to ${where(addr)}: ${err.message}`, { cause: err }));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        resolve();
      });
    });
    const value = await talk(reader, sock);
    return { value, sock, input, reader };
  } catch (e) {
    sock.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Connect and negotiate; the result is a connection in the transmission phase. */
export async function openConnection(
  addr: NbdAddress,
  opts: NegotiateOptions & { timeoutMs: number },
  onClose: (err: NbdClientError) => void,
): Promise<NbdConnection> {
  const { value, sock, input, reader } = await withSocket(addr, opts.timeoutMs, async (r, s) => {
    try {
      return await negotiate(r, s, opts);
    } catch (e) {
      // Tell the server we are leaving (it may already be gone).
      if (e instanceof NbdClientError && e.code === 'ERR_NBD_OPTION_REFUSED' && !s.destroyed) {
        await Promise.race([abortHandshake(r, s), new Promise((res) => setTimeout(res, 200))]);
      }
      throw e;
    }
  });
  const negotiated: Negotiated = value;
  return new NbdConnection(sock, input, negotiated, reader.detach(), onClose);
}

/** Run a query-only conversation (LIST, INFO) and close the socket. */
export async function query<T>(addr: NbdAddress, timeoutMs: number, talk: (r: HandshakeReader, sock: net.Socket) => Promise<T>): Promise<T> {
  const { value, sock } = await withSocket(addr, timeoutMs, talk);
  sock.end();
  sock.destroy();
  return value;
}
