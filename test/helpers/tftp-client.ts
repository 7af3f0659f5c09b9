// A deliberately small TFTP client for tests: raw packets built by hand (not
// by the production encoders), a receive queue with timeouts, and a fetch
// loop with hooks to drop or duplicate ACKs.

import dgram, { type RemoteInfo } from 'node:dgram';

export interface Received {
  raw: Buffer;
  from: RemoteInfo;
  opcode: number;
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

export function rawRequest(opcode: 1 | 2, name: string, mode = 'octet', options: [string, string][] = []): Buffer {
  return Buffer.concat([Buffer.from([0, opcode]), cstr(name), cstr(mode), ...options.flatMap(([k, v]) => [cstr(k), cstr(v)])]);
}

export function rawAck(block: number): Buffer {
  return Buffer.from([0, 4, (block >> 8) & 0xff, block & 0xff]);
}

export function rawError(code: number, message: string): Buffer {
  return Buffer.concat([Buffer.from([0, 5, 0, code]), cstr(message)]);
}

/** OACK / request options as a name → value map (names lower-cased). */
export function parseOack(raw: Buffer): Record<string, string> {
  const parts = raw.subarray(2).toString('utf8').split('\0');
  parts.pop();
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i].toLowerCase()] = parts[i + 1];
  return out;
}

export function errorOf(r: Received): { code: number; message: string } {
  return { code: r.raw.readUInt16BE(2), message: r.raw.toString('utf8', 4, r.raw.length - 1) };
}

export class TestClient {
  readonly socket = dgram.createSocket('udp4');
  private queue: Received[] = [];
  private waiter: (() => void) | null = null;
  /** Every DATA block number received, in order (retransmissions included). */
  readonly dataLog: number[] = [];

  static async open(): Promise<TestClient> {
    const c = new TestClient();
    await new Promise<void>((resolve) => c.socket.bind(0, '127.0.0.1', () => resolve()));
    c.socket.on('message', (raw, from) => {
      const opcode = raw.length >= 2 ? raw.readUInt16BE(0) : -1;
      if (opcode === 3) c.dataLog.push(raw.readUInt16BE(2));
      c.queue.push({ raw, from, opcode });
      c.waiter?.();
    });
    return c;
  }

  send(buf: Buffer, port: number, address = '127.0.0.1'): void {
    this.socket.send(buf, port, address);
  }

  async recv(timeoutMs = 3000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('tftp test client: receive timed out');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = null;
    }
    return this.queue.shift()!;
  }

  /** Resolves with whatever arrives within `ms` (used to prove silence). */
  async drain(ms: number): Promise<Received[]> {
    await new Promise((r) => setTimeout(r, ms));
    const got = this.queue;
    this.queue = [];
    return got;
  }

  close(): void {
    this.socket.close();
  }
}

export interface FetchOptions {
  options?: [string, string][];
  mode?: string;
  /** Skip the first ACK of this block number (absolute, 1-based). */
  dropAckOf?: number;
  /** Send every ACK twice. */
  duplicateAcks?: boolean;
  timeoutMs?: number;
}

export interface FetchResult {
  data: Buffer;
  oack: Record<string, string> | null;
  tid: number;
  blocks: number;
}

/** Reads one file; window-aware (ACKs the last block of each window). */
export async function fetchTftp(client: TestClient, port: number, name: string, o: FetchOptions = {}): Promise<FetchResult> {
  client.send(rawRequest(1, name, o.mode ?? 'octet', o.options ?? []), port);
  let first = await client.recv(o.timeoutMs);
  let oack: Record<string, string> | null = null;
  const tid = first.from.port;
  const ack = (n: number): void => {
    client.send(rawAck(n & 0xffff), tid);
    if (o.duplicateAcks) client.send(rawAck(n & 0xffff), tid);
  };
  if (first.opcode === 5) throw Object.assign(new Error(`ERROR ${errorOf(first).code} ${errorOf(first).message}`), errorOf(first));
  if (first.opcode === 6) {
    oack = parseOack(first.raw);
    ack(0);
    first = await client.recv(o.timeoutMs);
  }
  const blksize = Number(oack?.blksize ?? 512);
  const windowsize = Number(oack?.windowsize ?? 1);
  const chunks: Buffer[] = [];
  let expected = 1;
  let inWindow = 0;
  let dropped = false;
  let pkt: Received | null = first;
  for (;;) {
    const r = pkt ?? (await client.recv(o.timeoutMs));
    pkt = null;
    if (r.from.port !== tid) continue;
    if (r.opcode === 5) throw Object.assign(new Error(`ERROR ${errorOf(r).code} ${errorOf(r).message}`), errorOf(r));
    if (r.opcode !== 3) continue;
    if (r.raw.readUInt16BE(2) !== (expected & 0xffff)) {
      // A retransmission or a gap: ACK the last good block again, which is
      // how a lost ACK is recovered (RFC 1350) and what RFC 7440 asks for.
      inWindow = 0;
      ack(expected - 1);
      continue;
    }
    const payload = r.raw.subarray(4);
    chunks.push(payload);
    const last = payload.length < blksize;
    inWindow++;
    if (last || inWindow >= windowsize) {
      inWindow = 0;
      if (o.dropAckOf === expected && !dropped) dropped = true;
      else ack(expected);
    }
    if (last) break;
    expected++;
  }
  return { data: Buffer.concat(chunks), oack, tid, blocks: expected };
}
