// A fake systemd NOTIFY_SOCKET for tests: a Unix datagram socket that a small
// python3 process binds (Node has none), printing every datagram it receives
// with the sender's PID from SCM_CREDENTIALS, which is what systemd checks.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NotifyMessage {
  pid: number;
  text: string;
}

export interface FakeNotifySocket {
  /** The value for NOTIFY_SOCKET. */
  path: string;
  messages: NotifyMessage[];
  /** Resolves once a message matching `re` has arrived (rejects after timeoutMs). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<NotifyMessage>;
  close(): Promise<void>;
}

const RECEIVER = String.raw`
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
# "@name": the abstract namespace (a leading NUL), as systemd may hand out.
s.bind("\0" + sys.argv[1][1:] if sys.argv[1].startswith("@") else sys.argv[1])
print(json.dumps({"bound": sys.argv[1]}), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = -1
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    print(json.dumps({"pid": pid, "text": data.decode("utf-8", "replace")}), flush=True)
`;

/** A receiver on a path in a fresh temp directory, or with `abstract` on "@lunkit-notify-..." (no file). */
export async function startFakeNotifySocket(opts: { abstract?: boolean } = {}): Promise<FakeNotifySocket> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-notify-'));
  const path = opts.abstract ? `@lunkit-notify-${process.pid}-${dir.slice(-6)}` : join(dir, 'notify.sock');
  const child: ChildProcess = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: NotifyMessage[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let err = '';
  let bound = false;
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = JSON.parse(buf.slice(0, nl)) as NotifyMessage & { bound?: string };
      buf = buf.slice(nl + 1);
      if (line.bound) bound = true;
      else messages.push({ pid: line.pid, text: line.text });
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const waitFor = (re: RegExp, timeoutMs = 20_000): Promise<NotifyMessage> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = messages.find((x) => re.test(x.text));
        if (m) {
          waiters.delete(check);
          clearTimeout(t);
          resolve(m);
        }
      };
      const t = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no notify message matching ${re} in ${timeoutMs} ms; got ${JSON.stringify(messages)} ${err}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`fake NOTIFY_SOCKET receiver did not bind: ${err}`)), 10_000);
      const ok = (): void => {
        if (bound) {
          clearTimeout(t);
          waiters.delete(ok);
          resolve();
        }
      };
      waiters.add(ok);
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`fake NOTIFY_SOCKET receiver exited ${code}: ${err}`));
      });
    });
  } catch (e) {
    await close();
    throw e;
  }
  return { path, messages, waitFor, close };
}
