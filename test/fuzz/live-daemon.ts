// The daemon the live fuzzer and the soak run against: a real `lunkit daemon`
// process (bin/lunkit.js, so dist/ must be built), so that a crash is an exit
// we see, not a test-process exception. It is started as
// test/helpers/daemon-process.ts does, but keeps only the tail of its output
// (a million fuzz cases must not grow this process) and collects the lines
// that name an internal error.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/daemon-process.js';
import { LUNKIT_BIN } from '../helpers/lunkit-process.js';
import { makeTestCerts } from '../integration/nbd/tls-certs.js';

export const FUZZ_IQN = 'iqn.2026-12.io.lunkit:fuzz';
/** The side session's target: a different length from FUZZ_IQN, so no one-byte mutation names it. */
export const SIDE_IQN = 'iqn.2026-12.io.lunkit:side-verify-target';
export const SIDE_INITIATOR = 'iqn.2026-12.io.lunkit:side-verify-initiator';
export const FUZZ_EXPORT = 'fuzz';
export const SIDE_EXPORT = 'side-verify-export';
export const LUN_BYTES = 16 << 20;

/** Lines that mean the daemon itself went wrong, not the client. */
const INTERNAL_ERROR = /uncaught|unhandled|TypeError|RangeError|ReferenceError|AssertionError|Maximum call stack/i;
const TAIL_BYTES = 64 * 1024;

export interface LiveDaemon {
  pid: number;
  dir: string;
  /** The fuzz target's portal (LUNs 0 and 1). */
  iscsiPort: number;
  /** The side target's portal (LUN 0, ACL for SIDE_INITIATOR only). */
  sidePort: number;
  nbdPort: number;
  child: ChildProcess;
  /** Set when the process exited without stop() being called. */
  crashed(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Lines of output that name an internal error (the first 20). */
  internalErrors(): string[];
  /** Lines that name the side sessions or a reset (the first 50): what happened to a side session. */
  sideLines(): string[];
  tail(): string;
  stop(): Promise<void>;
}

export interface LiveDaemonOptions {
  /** `limits` (daemon/limits-schema.ts) over the fuzzer's. */
  limits?: { iscsi?: Record<string, number>; nbd?: Record<string, number> };
  /** TPG attributes of the fuzz target. */
  attributes?: Record<string, unknown>;
  backstoreType?: 'ramdisk' | 'file';
  /** Size of each backstore (default LUN_BYTES). */
  lunBytes?: number;
  logLevel?: string;
  /** NBD STARTTLS offered (not required); default true. */
  tls?: boolean;
}

export async function startLiveDaemon(o: LiveDaemonOptions = {}): Promise<LiveDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'lunkit-live-'));
  let spawned: ChildProcess | undefined;
  try {
    const [iscsiPort, sidePort, nbdPort] = [await freePort(), await freePort(), await freePort()];
    const certs = o.tls === false ? undefined : await makeTestCerts(dir);
    const size = o.lunBytes ?? LUN_BYTES;
    const store = (name: string): unknown => (o.backstoreType === 'file' ? { type: 'file', path: join(dir, `${name}.img`), size } : { type: 'ramdisk', size });
    const config = {
      backstores: { fuzz0: store('fuzz0'), fuzz1: store('fuzz1'), side: store('side') },
      iscsi: {
        targets: {
          [FUZZ_IQN]: {
            tpgs: {
              '1': {
                portals: [`127.0.0.1:${iscsiPort}`],
                luns: { '0': 'fuzz0', '1': 'fuzz1' },
                attributes: { generateNodeAcls: true, loginTimeout: 5, ...o.attributes },
              },
            },
          },
          [SIDE_IQN]: {
            tpgs: { '1': { portals: [`127.0.0.1:${sidePort}`], luns: { '0': 'side' }, acls: { [SIDE_INITIATOR]: { mappedLuns: { '0': 0 } } } } },
          },
        },
      },
      nbd: {
        listen: [`127.0.0.1:${nbdPort}`],
        ...(certs ? { tls: { certFile: certs.certFile, keyFile: certs.keyFile, require: false } } : {}),
        exports: { [FUZZ_EXPORT]: { backstore: 'fuzz0' }, [SIDE_EXPORT]: { backstore: 'side' } },
      },
      limits: {
        // Mutated logins fail by the thousand from 127.0.0.1; the CHAP back-off
        // would turn the campaign into a wait (the fuzz target has no CHAP).
        iscsi: { authFailureDelayMs: 0, ...o.limits?.iscsi },
        nbd: { ...o.limits?.nbd },
      },
    };
    const file = join(dir, 'lunkit.json');
    await writeFile(file, JSON.stringify(config, null, 2));
    const args = [LUNKIT_BIN, 'daemon', '--socket', join(dir, 's.sock'), '--config', file, '--log-level', o.logLevel ?? 'error'];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    spawned = child;
    let tail = '';
    let partial = '';
    const errors: string[] = [];
    const side: string[] = [];
    let crash: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let stopping = false;
    const onOutput = (d: Buffer): void => {
      const s = d.toString();
      tail = (tail + s).slice(-TAIL_BYTES);
      const lines = (partial + s).split('\n');
      partial = lines.pop()!.slice(-TAIL_BYTES);
      for (const l of lines) {
        if (INTERNAL_ERROR.test(l) && errors.length < 20) errors.push(l.slice(0, 2000));
        if (/side-verify|reset/i.test(l) && side.length < 50) side.push(l.slice(0, 500));
      }
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.once('exit', (code, signal) => {
      if (!stopping) crash = { code, signal };
    });
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`lunkit daemon not ready in time:\n${tail}`)), 30_000);
      const check = (): void => {
        if (/^ready$/m.test(tail)) {
          clearTimeout(t);
          child.stdout!.off('data', check);
          res();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', () => {
        clearTimeout(t);
        rej(new Error(`lunkit daemon exited at start:\n${tail}`));
      });
    });
    return {
      pid: child.pid!,
      dir,
      iscsiPort,
      sidePort,
      nbdPort,
      child,
      crashed: () => crash,
      internalErrors: () => errors,
      sideLines: () => side,
      tail: () => tail,
      async stop() {
        stopping = crash === undefined;
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(t);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (spawned && spawned.exitCode === null && spawned.signalCode === null) spawned.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
