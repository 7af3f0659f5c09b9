// tgtd (Debian's tgt), the peer target the benchmarks and interop tests
// compare against: started in the foreground on a free portal with its own
// control port, configured with tgtadm, stopped by PID.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, stopChild } from './bench-process.js';

const execFileP = promisify(execFile);

export interface TgtdAccount {
  user: string;
  password: string;
  /** The target's own (mutual CHAP) account rather than one the initiator must prove. */
  outgoing?: boolean;
}

export interface TgtdTarget {
  iqn: string;
  /** Backing files, served as LUN 1, 2, ... */
  luns: string[];
  /** CHAP accounts bound to the target; none means no authentication. */
  accounts?: TgtdAccount[];
}

export interface TgtdOptions {
  targets: TgtdTarget[];
  /**
   * tgtd's control "port" is only the suffix of its management socket
   * (/var/run/tgtd/socket.N), but two tgtd with the same one collide: each
   * caller passes its own range base; the number is base + portal % 5000.
   */
  controlBase: number;
}

export interface Tgtd {
  readonly port: number;
  readonly pid: number;
  /** Runs `tgtadm -C <control> --lld iscsi <args>`. */
  adm(...args: string[]): Promise<{ stdout: string }>;
  stop(): Promise<void>;
}

export async function startTgtd(opts: TgtdOptions): Promise<Tgtd> {
  const port = await freePort();
  const control = opts.controlBase + (port % 5000);
  const child: ChildProcess = spawn('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`], { stdio: 'ignore' });
  const adm = async (...a: string[]): Promise<{ stdout: string }> => {
    const r = await execFileP('tgtadm', ['-C', String(control), '--lld', 'iscsi', ...a], { timeout: 10_000 });
    return { stdout: r.stdout };
  };
  try {
    // tgtd is ready when its control socket answers: retry the first command.
    for (let tid = 1; tid <= opts.targets.length; tid++) {
      const t = opts.targets[tid - 1];
      for (let i = 0; ; i++) {
        try {
          await adm('--op', 'new', '--mode', 'target', '--tid', String(tid), '-T', t.iqn);
          break;
        } catch (e) {
          if (tid > 1 || i > 100 || child.exitCode !== null) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      for (const [i, file] of t.luns.entries()) {
        await adm('--op', 'new', '--mode', 'logicalunit', '--tid', String(tid), '--lun', String(i + 1), '-b', file);
      }
      await adm('--op', 'bind', '--mode', 'target', '--tid', String(tid), '-I', 'ALL');
      for (const a of t.accounts ?? []) {
        await adm('--op', 'new', '--mode', 'account', '--user', a.user, '--password', a.password);
        await adm('--op', 'bind', '--mode', 'account', '--tid', String(tid), '--user', a.user, ...(a.outgoing === true ? ['--outgoing'] : []));
      }
    }
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { port, pid: child.pid!, adm, stop: () => stopChild(child) };
}
