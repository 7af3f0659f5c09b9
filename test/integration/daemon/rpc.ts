// A deliberately small control-socket client for the daemon's tests (not the
// CLI's ControlClient): raw lines in, parsed messages out, so tests can also
// send malformed JSON and over-long lines.

import { connect, type Socket } from 'node:net';

export interface RpcMessage {
  jsonrpc: string;
  id?: string | number | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data: { code: string; path?: string; problems?: string[] } };
}

export class RawRpc {
  private buf = '';
  private readonly waiting: Array<(m: RpcMessage) => void> = [];
  readonly received: RpcMessage[] = [];
  closed = false;
  private nextId = 1;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const msg = JSON.parse(line) as RpcMessage;
        this.received.push(msg);
        for (const w of this.waiting.splice(0)) w(msg);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0)) w({ jsonrpc: 'closed' });
    });
    socket.on('error', () => {});
  }

  static connect(path: string): Promise<RawRpc> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new RawRpc(s)));
      s.once('error', reject);
    });
  }

  sendLine(line: string | Buffer): void {
    this.socket.write(line);
  }

  /** Waits for a message matching pred (already received ones count). */
  async waitFor(pred: (m: RpcMessage) => boolean, timeoutMs = 10_000): Promise<RpcMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(pred);
      if (found) return found;
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a control message');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiting.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async call(method: string, params: Record<string, unknown> = {}): Promise<RpcMessage> {
    const id = this.nextId++;
    this.sendLine(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return this.waitFor((m) => m.id === id && m.method === undefined);
  }

  /** The result, or throws with the error code. */
  async ok(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const r = await this.call(method, params);
    if (r.error) throw new Error(`${method}: ${r.error.data.code}: ${r.error.message}`);
    return r.result!;
  }

  close(): void {
    this.socket.destroy();
  }
}
