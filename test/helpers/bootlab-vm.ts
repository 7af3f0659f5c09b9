// The boot lab's QEMU harness (issue 15): a private network namespace with a
// bridge, taps and a site DHCP server (Debian dnsmasq), and diskless QEMU
// guests on it whose NIC ROM (iPXE, Debian ipxe-qemu) boots from the network.
// The golden image those guests end up running (scripts/bootlab-golden.sh)
// prints `LUNKIT-GUEST k=v` lines on the serial console; guestLines() parses
// them.
//
// Everything runs inside the namespace, so the lab's addresses (10.NN.0.0/24)
// exist only there and no packet leaves the machine: the bridge has no route
// out. Processes are tracked and killed by PID; destroy() deletes the
// namespace, which takes the bridge and the taps with it.
//
// Needs root, iproute2, /dev/net/tun, qemu-system-x86_64 and dnsmasq
// (scripts/setup.sh installs the peers with LUNKIT_SETUP_PEERS=1).

import { execFile, spawn as spawnChild, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface LabNetOptions {
  /** Second octet of 10.NN.0.0/24; random in 100..199 when omitted. */
  subnet?: number;
}

export interface DnsmasqOptions {
  /** `first,last` addresses to lease; default .100 to .199 of the lab subnet. */
  range?: string;
  /**
   * A boot file for every client (`--dhcp-boot`). The real boot lab leaves it
   * out (lunkit answers as proxy DHCP); the stand-in harness test sets it.
   */
  bootFile?: string;
  extraArgs?: string[];
}

export interface LabNet {
  ns: string;
  bridge: string;
  /** The bridge's address, e.g. 10.123.0.1 (also where lab servers listen). */
  address: string;
  /** The first three octets, e.g. "10.123.0". */
  prefix: string;
  /** A temp directory for lease files, configs and the like; removed by destroy(). */
  dir: string;
  /** Runs a command inside the namespace and waits for it. */
  exec(cmd: string, args: string[], opts?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Starts a command inside the namespace; destroy() kills it if still running. */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** spawn() with stdout and stderr collected into output(). */
  start(cmd: string, args: string[], opts?: SpawnOptions): LabProcess;
  /** Creates a persistent tap device enslaved to the bridge; returns its name. */
  addTap(name?: string): Promise<string>;
  /** Starts dnsmasq as the site's DHCP server on the bridge; resolves once it listens. */
  startDnsmasq(opts?: DnsmasqOptions): Promise<LabProcess>;
  /** Kills what this lab started and deletes the namespace. Safe to call twice. */
  destroy(): Promise<void>;
}

/** A process started in the lab, with what it printed (stdout and stderr). */
export interface LabProcess {
  child: ChildProcess;
  output(): string;
}

let labCounter = 0;

async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`, { cause: e });
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (!isRunning(child) || child.pid === undefined) return;
  const gone = new Promise<void>((res) => child.once('exit', () => res()));
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (isRunning(child)) child.kill('SIGKILL');
  }, graceMs);
  await gone;
  clearTimeout(t);
}

/** Resolves when `pattern` shows up in what `read()` returns, or rejects after `timeoutMs` or when the child exits. */
function waitForOutput(child: ChildProcess, read: () => string, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = read().match(pattern);
      if (!m) return false;
      cleanup();
      resolve(m);
      return true;
    };
    const onExit = (): void => {
      if (check()) return;
      cleanup();
      reject(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${read().slice(-4000)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no ${pattern} within ${timeoutMs} ms:\n${read().slice(-4000)}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', onExit);
    if (!check() && !isRunning(child)) onExit();
  });
}

export async function createLabNet(opts: LabNetOptions = {}): Promise<LabNet> {
  const subnet = opts.subnet ?? randomInt(100, 200);
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) throw new Error(`subnet ${subnet} is not an octet`);
  // Unique per process and call, so parallel runs and leftovers never collide.
  const ns = `lunkit-lab-${process.pid}-${++labCounter}`;
  const prefix = `10.${subnet}.0`;
  const address = `${prefix}.1`;
  const bridge = 'br0';
  const children = new Set<ChildProcess>();
  let dir = '';
  let destroyed = false;

  const nsArgs = (cmd: string, args: string[]): string[] => ['netns', 'exec', ns, cmd, ...args];

  const net: LabNet = {
    ns,
    bridge,
    address,
    prefix,
    get dir() {
      return dir;
    },
    exec: (cmd, args, o = {}) => run('ip', nsArgs(cmd, args), o.timeoutMs),
    spawn(cmd, args, o = {}) {
      if (destroyed) throw new Error(`lab ${ns} is destroyed`);
      // `ip netns exec` execs the command, so child.pid is the command's PID.
      const child = spawnChild('ip', nsArgs(cmd, args), { stdio: ['ignore', 'pipe', 'pipe'], ...o });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    start(cmd, args, o = {}) {
      const child = net.spawn(cmd, args, o);
      let out = '';
      child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      return { child, output: () => out };
    },
    async addTap(name = `tap${randomInt(0, 100_000)}`) {
      await net.exec('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
      await net.exec('ip', ['link', 'set', name, 'master', bridge]);
      await net.exec('ip', ['link', 'set', name, 'up']);
      return name;
    },
    async startDnsmasq(d = {}) {
      const range = d.range ?? `${prefix}.100,${prefix}.199`;
      const args = [
        '--no-daemon',
        '--conf-file=/dev/null',
        '--port=0', // DHCP only, no DNS
        `--interface=${bridge}`,
        '--bind-interfaces',
        `--dhcp-range=${range},255.255.255.0,10m`,
        `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        '--log-dhcp',
        '--log-facility=-', // to stderr, which the test keeps
        ...(d.bootFile ? [`--dhcp-boot=${d.bootFile}`] : []),
        ...(d.extraArgs ?? []),
      ];
      const proc = net.start('dnsmasq', args);
      await waitForOutput(proc.child, proc.output, /DHCP, IP range/, 10_000, 'dnsmasq');
      return proc;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      process.off('exit', onExit);
      await Promise.all([...children].map((c) => stopChild(c)));
      // Anything still inside the namespace was started there by this lab
      // (e.g. a grandchild): kill it by PID before the namespace goes.
      const pids = await run('ip', ['netns', 'pids', ns]).then(
        (r) => r.stdout.split(/\s+/).filter(Boolean).map(Number),
        () => [] as number[],
      );
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };

  // Last resort when the test process ends without destroy() (a failed
  // afterAll, process.exit): synchronous, as 'exit' handlers must be.
  const onExit = (): void => {
    for (const c of children) if (c.pid !== undefined && isRunning(c)) c.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  };
  process.once('exit', onExit);

  try {
    dir = await mkdtemp(join(tmpdir(), 'lunkit-lab-'));
    await run('ip', ['netns', 'add', ns]);
    await net.exec('ip', ['link', 'set', 'lo', 'up']);
    await net.exec('ip', ['link', 'add', bridge, 'type', 'bridge']);
    // No STP and no forwarding delay: the guest's first DHCP packet must pass.
    await net.exec('ip', ['link', 'set', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await net.exec('ip', ['addr', 'add', `${address}/24`, 'dev', bridge]);
    await net.exec('ip', ['link', 'set', bridge, 'up']);
  } catch (e) {
    await net.destroy();
    throw e;
  }
  return net;
}

export interface GuestOptions {
  mac: string;
  tap: string;
  /** QEMU NIC model; the golden image's initramfs has drivers for both. Default virtio-net-pci. */
  nic?: 'virtio-net-pci' | 'e1000';
  memoryMb?: number;
  /** Killed when it has not powered off by then; default 300 s. */
  timeoutMs?: number;
  extraArgs?: string[];
}

export interface Guest {
  child: ChildProcess;
  /** The serial console (and QEMU's own messages) so far, CRs removed. */
  output(): string;
  /**
   * Resolves with the first match of `pattern` in the console output after
   * character `since` (default 0; use `mark()` to wait for a line that comes
   * after the ones already seen).
   */
  waitFor(pattern: RegExp, timeoutMs: number, since?: number): Promise<RegExpMatchArray>;
  /** Current length of output(), for waitFor's `since`. */
  mark(): number;
  /** Types a line into the serial console. */
  send(line: string): void;
  /** QEMU's exit code (null when killed). */
  exited: Promise<number | null>;
  /** Milliseconds since QEMU was started. */
  elapsedMs(): number;
  kill(): Promise<void>;
}

/**
 * A diskless QEMU guest on the lab bridge: the virtio NIC is the only boot
 * device, so SeaBIOS runs its iPXE ROM. TCG, so it works without /dev/kvm.
 * `-no-reboot` turns a reboot or a kernel panic (panic=5 in the golden image)
 * into QEMU exiting, so a failed boot ends the test quickly. The serial port
 * alone is on stdio (not -nographic, which multiplexes the monitor there and
 * would treat a Ctrl-A in typed text as its escape key).
 */
export function startGuest(net: LabNet, opts: GuestOptions): Guest {
  const args = [
    '-accel', 'tcg',
    '-m', String(opts.memoryMb ?? 512),
    '-display', 'none',
    '-vga', 'none',
    '-monitor', 'none',
    '-parallel', 'none',
    '-serial', 'stdio',
    '-netdev', `tap,id=n0,ifname=${opts.tap},script=no,downscript=no`,
    '-device', `${opts.nic ?? 'virtio-net-pci'},netdev=n0,mac=${opts.mac},bootindex=1`,
    '-no-reboot',
    ...(opts.extraArgs ?? []),
  ];
  const started = Date.now();
  const child = net.spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const append = (b: Buffer): void => {
    out += b.toString('latin1').replace(/\r/g, '');
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  // A write after QEMU is gone must not crash the test run.
  child.stdin!.on('error', () => undefined);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const timer = setTimeout(() => {
    out += `\n[bootlab-vm: guest did not power off within ${opts.timeoutMs ?? 300_000} ms; killed]\n`;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 300_000);
  void exited.then(() => clearTimeout(timer));

  return {
    child,
    output: () => out,
    mark: () => out.length,
    waitFor: (pattern, timeoutMs, since = 0) => waitForOutput(child, () => out.slice(since), pattern, timeoutMs, `guest ${opts.mac}`),
    send(line) {
      if (isRunning(child)) child.stdin!.write(`${line}\n`);
    },
    exited,
    elapsedMs: () => Date.now() - started,
    kill: () => stopChild(child, 1_000),
  };
}

/** One `LUNKIT-GUEST ...` console line: `k=v` pairs (a value may hold spaces, as in files=a b) and bare words. */
export type GuestLine = Record<string, string>;

/**
 * Parses the `LUNKIT-GUEST` lines of a console transcript, in order. A bare
 * word (`LUNKIT-GUEST waiting`) becomes `{ waiting: '' }`.
 */
export function guestLines(output: string): GuestLine[] {
  const lines: GuestLine[] = [];
  for (const m of output.matchAll(/^.*?LUNKIT-GUEST (.*)$/gm)) {
    const body = m[1]!.trim();
    const rec: GuestLine = {};
    if (!body.includes('=')) {
      rec[body] = '';
    } else {
      // A value runs until the next ` key=` so that `files=boot-1 boot-2` stays one value.
      for (const kv of body.matchAll(/(\w+)=(.*?)(?=\s+\w+=|$)/g)) rec[kv[1]!] = kv[2]!;
    }
    lines.push(rec);
  }
  return lines;
}
