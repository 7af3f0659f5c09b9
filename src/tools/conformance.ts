// Conformance runner: starts `lunkit serve` with a thin file LUN on a free
// port, runs libiscsi's iscsi-test-cu against it (ALL, --dataloss, two
// initiator names, and a second portal of the same TPG as the multipath URL so
// the MultipathIO suite runs), and prints
//   tests N: passed P, skipped S, failed F
// followed by every failure and skip with its reason. Exit status 1 when the
// result is below the floor given with --min-pass / --max-fail.
//
//   node dist/tools/conformance.js [--test ALL] [--min-pass 175] [--max-fail 0]
//                                  [--log FILE] [--size 256M] [--dir DIR] [--block-size 512|4096]
//                                  [--param Key=Value ...]

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LunkitError } from '../protocols/errors.js';
import { formatCuSummary, parseCuOutput, type CuSummary } from './cu-report.js';

export const CONFORMANCE_IQN = 'iqn.2026-11.io.lunkit:conformance';
export const INITIATOR_1 = 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test';
export const INITIATOR_2 = 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ConformanceOptions {
  test?: string;
  size?: string;
  /** Directory for the LUN file (default: a new one under os.tmpdir()). */
  dir?: string;
  /** Full iscsi-test-cu output goes here as well. */
  log?: string;
  timeoutMs?: number;
  /** Serve the LUN as a removable medium (INQUIRY RMB=1). */
  removable?: boolean;
  /** Logical block size of the LUN (default 512). */
  blockSize?: 512 | 4096;
  /**
   * Login keys the TPG declares (RFC 7143 §13), e.g. MaxConnections and
   * ErrorRecoveryLevel raised: libiscsi offers one connection at ERL 0, so the
   * suite checks that raising them changes nothing for such an initiator.
   */
  parameters?: Record<string, string>;
  /**
   * The LUN's backstore config (default: a thin file of `size` in `dir`);
   * `dir` is the run's directory, for image files.
   */
  backstore?: (dir: string) => Record<string, unknown>;
}

function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new LunkitError('ERR_TOOL_PEER', `lunkit did not print ${re} within ${timeoutMs} ms; output so far:\n${buf}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        res(m);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new LunkitError('ERR_TOOL_PEER', `lunkit exited with ${code} before it was ready:\n${buf}`));
    });
  });
}

function run(cmd: string, args: string[], timeoutMs: number, log?: NodeJS.WritableStream): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const collect = (d: Buffer): void => {
      out += d.toString();
      log?.write(d);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      out += `\n[conformance] ${cmd} killed after ${timeoutMs} ms\n`;
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      res(out);
    });
  });
}

export async function runConformance(opts: ConformanceOptions = {}): Promise<CuSummary> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'lunkit-conformance-')));
  const ownDir = opts.dir === undefined;
  const cfgPath = join(dir, 'lunkit.json');
  await writeFile(
    cfgPath,
    JSON.stringify({
      backstores: {
        thin0: opts.backstore?.(dir) ?? {
          type: 'file',
          path: join(dir, 'thin0.img'),
          size: opts.size ?? '256M',
          thin: true,
          removable: opts.removable ?? false,
          blockSize: opts.blockSize ?? 512,
        },
      },
      iscsi: {
        targets: {
          [CONFORMANCE_IQN]: {
            tpgs: { '1': { portals: ['127.0.0.1:0', '127.0.0.1:0'], luns: { '0': 'thin0' }, attributes: { generateNodeAcls: true }, parameters: opts.parameters ?? {} } },
          },
        },
      },
    }),
  );
  const lunkit = spawn(process.execPath, [join(ROOT, 'bin', 'lunkit.js'), 'serve', '--config', cfgPath, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: process.env,
  });
  const log = opts.log ? createWriteStream(opts.log) : undefined;
  try {
    const ready = await waitForLine(lunkit, /^ready$/m, 30_000);
    const urls = [...ready.input.matchAll(/listening ([\d.]+):(\d+)/g)].map((m) => `iscsi://${m[1]}:${m[2]}/${CONFORMANCE_IQN}/0`);
    const out = await run(
      'iscsi-test-cu',
      ['-d', '-i', INITIATOR_1, '-I', INITIATOR_2, ...urls, '-t', opts.test ?? 'ALL'],
      opts.timeoutMs ?? 600_000,
      log,
    );
    return parseCuOutput(out);
  } finally {
    log?.end();
    if (lunkit.exitCode === null) {
      const exited = new Promise((r) => lunkit.once('exit', r));
      lunkit.kill('SIGTERM');
      const t = setTimeout(() => lunkit.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (ownDir) await rm(dir, { recursive: true, force: true });
  }
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      test: { type: 'string', default: 'ALL' },
      'min-pass': { type: 'string', default: '0' },
      'max-fail': { type: 'string', default: '0' },
      log: { type: 'string' },
      size: { type: 'string', default: '256M' },
      dir: { type: 'string' },
      'block-size': { type: 'string', default: '512' },
      json: { type: 'boolean', default: false },
      param: { type: 'string', multiple: true, default: [] },
    },
  });
  const parameters: Record<string, string> = {};
  for (const p of values.param) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new LunkitError('ERR_USAGE', `--param ${p}: use Key=Value, e.g. --param MaxConnections=8`);
    parameters[p.slice(0, eq)] = p.slice(eq + 1);
  }
  const blockSize = Number(values['block-size']);
  if (blockSize !== 512 && blockSize !== 4096) throw new LunkitError('ERR_USAGE', `--block-size ${values['block-size']}: use 512 or 4096`);
  const s = await runConformance({ test: values.test, log: values.log, size: values.size, dir: values.dir, blockSize, parameters });
  process.stdout.write(values.json ? JSON.stringify(s) + '\n' : formatCuSummary(s) + '\n');
  const minPass = Number(values['min-pass']);
  const maxFail = Number(values['max-fail']);
  if (s.failed > maxFail || s.passed < minPass) {
    process.stderr.write(`conformance: below the floor (need passed >= ${minPass}, failed <= ${maxFail})\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli().catch((e: unknown) => {
    process.stderr.write(`conformance: ${(e as Error).message}\n`);
    process.exit(2);
  });
}
