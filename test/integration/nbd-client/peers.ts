// Real NBD servers for the client and backstore tests: nbdkit and qemu-nbd,
// started in the foreground on a free TCP port or a Unix socket in a temp
// directory, stopped by PID, directory removed. Not a test file itself.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NbdPeer {
  child: ChildProcess;
  dir: string;
  /** nbd:// or nbd+unix:// URL for an export name. */
  url(exportName?: string): string;
  output(): string;
  /** Kill hard (SIGKILL) without cleaning up: the "server died" case. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s) and remove the temp directory. */
  stop(): Promise<void>;
}

/** A free TCP port: bind port 0, read it, close. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

function canConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(opts);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => child.once('exit', () => res()));
}

async function startPeer(
  cmd: string,
  args: (dir: string) => string[],
  where: (dir: string) => net.NetConnectOpts,
  url: (dir: string, name: string) => string,
  socketDir?: string,
): Promise<NbdPeer> {
  const dir = socketDir ?? (await mkdtemp(join(tmpdir(), 'lunkit-nbdpeer-')));
  const ownDir = socketDir === undefined;
  const child = spawn(cmd, args(dir), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      if (ownDir) await rm(dir, { recursive: true, force: true });
      throw new Error(`${cmd} exited with ${child.exitCode}: ${out}`);
    }
    if (await canConnect(where(dir))) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      if (ownDir) await rm(dir, { recursive: true, force: true });
      throw new Error(`${cmd} did not start listening in 10 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
  };
  return {
    child,
    dir,
    url: (name = '') => url(dir, name),
    output: () => out,
    kill,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited(child);
        clearTimeout(t);
      }
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** nbdkit in the foreground; `plugin` is e.g. ['memory', '1G'] or ['file', '/path']. */
export async function startNbdkit(plugin: string[], opts: { tcpPort?: number; extraArgs?: string[]; socketDir?: string } = {}): Promise<NbdPeer> {
  const port = opts.tcpPort;
  return startPeer(
    'nbdkit',
    (dir) => ['-f', '--exit-with-parent', ...(port === undefined ? ['-U', join(dir, 'nbd.sock')] : ['-i', '127.0.0.1', '-p', String(port)]), ...(opts.extraArgs ?? []), ...plugin],
    (dir) => (port === undefined ? { path: join(dir, 'nbd.sock') } : { host: '127.0.0.1', port }),
    (dir, name) => (port === undefined ? `nbd+unix:///${name}?socket=${join(dir, 'nbd.sock')}` : `nbd://127.0.0.1:${port}/${name}`),
    opts.socketDir,
  );
}

/** qemu-nbd serving a raw file under an export name, on TCP or a Unix socket. */
export async function startQemuNbd(file: string, exportName: string, opts: { tcpPort?: number; extraArgs?: string[] } = {}): Promise<NbdPeer> {
  const port = opts.tcpPort;
  return startPeer(
    'qemu-nbd',
    (dir) => ['-f', 'raw', '-x', exportName, '--persistent', '-t', ...(port === undefined ? ['-k', join(dir, 'nbd.sock')] : ['-b', '127.0.0.1', '-p', String(port)]), ...(opts.extraArgs ?? []), file],
    (dir) => (port === undefined ? { path: join(dir, 'nbd.sock') } : { host: '127.0.0.1', port }),
    (dir, name) => (port === undefined ? `nbd+unix:///${name}?socket=${join(dir, 'nbd.sock')}` : `nbd://127.0.0.1:${port}/${name}`),
  );
}
