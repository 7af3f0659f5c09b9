// Hand-built NBD bytes for the hostile-client tests (not the production
// encoders: STYLE.md §13), and a streaming reader that counts replies without
// keeping their data (a test may receive hundreds of MiB).
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export const IHAVEOPT = Buffer.from('IHAVEOPT', 'latin1');
export const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, INFO: 6, GO: 7, STRUCTURED_REPLY: 8 } as const;
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
export const REP_ERR_POLICY = 0x80000002;
export const CMD_READ = 0;
export const CMD_WRITE = 1;

export function option(opt: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(16);
  IHAVEOPT.copy(h, 0);
  h.writeUInt32BE(opt, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

/** NBD_OPT_INFO / NBD_OPT_GO data: name length, name, no info requests. */
export function exportRequest(name: string): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  return b;
}

/** A compact (28-byte) request header. */
export function request(type: number, handle: bigint, offset: number, length: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(0x25609513, 0);
  b.writeUInt16BE(0, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(handle, 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

export async function rawConnect(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.on('error', () => {});
  return s;
}

/**
 * Consumes a socket's bytes as they come: option replies during haggling,
 * then simple replies to READs of a known length (their data hashed, not
 * kept). Paused at creation; resume() starts reading.
 */
export class StreamReader {
  private pending: Buffer[] = [];
  private buffered = 0;
  private waiters: Array<() => void> = [];
  closed = false;
  bytes = 0;

  constructor(readonly sock: Socket) {
    sock.pause();
    sock.on('data', (d: Buffer) => {
      this.bytes += d.length;
      this.pending.push(d);
      this.buffered += d.length;
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  resume(): void {
    this.sock.resume();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async need(n: number, deadline: number): Promise<void> {
    while (this.buffered < n) {
      if (this.closed) throw new Error(`connection closed with ${this.buffered} of ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} bytes (have ${this.buffered})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  /** Takes n bytes; with `hash`, feeds them to it instead of returning them. */
  async take(n: number, timeoutMs = 20_000, hash?: ReturnType<typeof createHash>): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      await this.need(1, deadline);
      const head = this.pending[0];
      const part = head.length <= left ? head : head.subarray(0, left);
      if (head.length <= left) this.pending.shift();
      else this.pending[0] = head.subarray(left);
      this.buffered -= part.length;
      left -= part.length;
      if (hash) hash.update(part);
      else out.push(part);
    }
    return hash ? Buffer.alloc(0) : Buffer.concat(out);
  }

  /** Resolves true once the peer has closed (false if it did not by the deadline). */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.closed;
  }

  async greeting(): Promise<void> {
    const g = await this.take(18);
    if (!g.subarray(0, 8).equals(Buffer.from('NBDMAGIC')) || !g.subarray(8, 16).equals(IHAVEOPT)) throw new Error('not an NBD greeting');
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const h = await this.take(20);
    if (h.readBigUInt64BE(0) !== 0x3e889045565a9n) throw new Error(`bad option reply magic ${h.toString('hex')}`);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.take(h.readUInt32BE(16)) };
  }

  /** One simple reply; a successful READ's `length` bytes are hashed (sha256 hex). */
  async simpleReply(readLength: number): Promise<{ error: number; handle: bigint; sha256: string | undefined }> {
    const h = await this.take(16);
    if (h.readUInt32BE(0) !== 0x67446698) throw new Error(`bad reply magic ${h.toString('hex')}`);
    const error = h.readUInt32BE(4);
    let sha256: string | undefined;
    if (error === 0 && readLength > 0) {
      const hash = createHash('sha256');
      await this.take(readLength, 60_000, hash);
      sha256 = hash.digest('hex');
    }
    return { error, handle: h.readBigUInt64BE(8), sha256 };
  }
}

/** Greeting, fixed-newstyle flags, NBD_OPT_GO on `name` (simple replies): the connection is in transmission. */
export async function goRaw(port: number, name: string): Promise<StreamReader> {
  const r = new StreamReader(await rawConnect(port));
  r.resume();
  await r.greeting();
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(3, 0); // C_FIXED_NEWSTYLE | C_NO_ZEROES
  r.sock.write(Buffer.concat([flags, option(OPT.GO, exportRequest(name))]));
  for (;;) {
    const rep = await r.optionReply();
    if (rep.type === REP_ACK) return r;
    if (rep.type !== REP_INFO) throw new Error(`NBD_OPT_GO failed: 0x${rep.type.toString(16)} ${rep.data.subarray(0).toString()}`);
  }
}

export async function until(cond: () => boolean, ms: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until `sample` returns the same value for `quietMs` (the server has stopped moving). */
export async function settled<T>(sample: () => T, quietMs: number, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let last = JSON.stringify(sample());
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error(`did not settle within ${ms} ms (last ${last})`);
    await new Promise((r) => setTimeout(r, 50));
    const now = JSON.stringify(sample());
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return sample();
}
