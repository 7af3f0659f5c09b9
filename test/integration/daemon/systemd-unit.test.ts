// contrib/systemd: the unit and its drop-in pass `systemd-analyze verify`
// (Debian package systemd, installed by LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh)
// with no warning at all, and the commands they run use options the verbs
// really have. verify also checks that ExecStart's program exists, so the
// test points /usr/local/bin/lunkit (what setup.sh links) at this checkout.

import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../helpers/daemon-process.js';
import { LUNKIT_BIN, ROOT } from '../../helpers/lunkit-process.js';

const run = promisify(execFile);
const UNIT = join(ROOT, 'contrib', 'systemd', 'lunkit.service');
const DROP_IN = join(ROOT, 'contrib', 'systemd', 'lunkit-without-fuse.conf');

let dir: string;
let unitText: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-unit-'));
  unitText = await readFile(UNIT, 'utf8');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function verify(unitDir: string): Promise<{ code: number; output: string }> {
  try {
    const r = await run('systemd-analyze', ['verify', join(unitDir, 'lunkit.service')], { timeout: 60_000 });
    return { code: 0, output: `${r.stdout}${r.stderr}` };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') throw new Error('systemd-analyze is missing: install the Debian package systemd (LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh)');
    return { code: Number(err.code), output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

/** The unit with /usr/local/bin/lunkit pointing at this checkout, in its own directory (plus drop-ins). */
async function stage(name: string, dropIns: string[] = [], text = unitText): Promise<string> {
  const d = join(dir, name);
  await mkdir(join(d, 'lunkit.service.d'), { recursive: true });
  await writeFile(join(d, 'lunkit.service'), text.replaceAll('/usr/local/bin/lunkit', LUNKIT_BIN));
  for (const f of dropIns) await copyFile(f, join(d, 'lunkit.service.d', f.split('/').pop()!));
  return d;
}

function directive(key: string): string {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(unitText);
  if (!m) throw new Error(`lunkit.service has no ${key}=`);
  return m[1];
}

describe('contrib/systemd/lunkit.service', () => {
  it('passes systemd-analyze verify without a warning', async () => {
    const r = await verify(await stage('plain'));
    expect(r).toEqual({ code: 0, output: '' });
  });

  it('passes with the lunkit-without-fuse.conf drop-in too', async () => {
    const r = await verify(await stage('hardened', [DROP_IN]));
    expect(r).toEqual({ code: 0, output: '' });
  });

  it('the check sees mistakes (an unknown key, a missing program)', async () => {
    const typo = await verify(await stage('typo', [], unitText.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes')));
    expect(typo.output).toMatch(/Unknown key.*NoNewPrivilege/);
    const missing = await verify(await stage('missing', [], unitText.replace('ExecStart=/usr/local/bin/lunkit', `ExecStart=${dir}/absent`)));
    expect(missing.code).not.toBe(0);
  });

  it('is Type=notify, runs /usr/local/bin/lunkit, reloads with lunkit apply', () => {
    expect(directive('Type')).toBe('notify');
    expect(directive('ExecStart')).toMatch(/^\/usr\/local\/bin\/lunkit daemon /);
    expect(directive('ExecReload')).toMatch(/^\/usr\/local\/bin\/lunkit apply \/etc\/lunkit\/saveconfig\.json /);
    // FUSE mounts must reach the host: no mount-namespace option in the unit itself.
    for (const ns of ['ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ReadOnlyPaths', 'ProtectKernelTunables']) {
      expect(unitText, ns).not.toMatch(new RegExp(`^${ns}=`, 'm'));
    }
    expect(directive('DeviceAllow')).toBe('/dev/fuse rw');
    expect(directive('CapabilityBoundingSet')).toMatch(/CAP_SYS_ADMIN/);
  });

  it('uses only options that lunkit daemon and lunkit apply have', async () => {
    for (const key of ['ExecStart', 'ExecReload']) {
      const [, verb, ...rest] = directive(key).split(/\s+/);
      const help = await runCli(undefined, [verb, '--help']);
      expect(help.code).toBe(0);
      for (const opt of rest.filter((a) => a.startsWith('--'))) expect(help.stdout, `${key}: ${verb} ${opt}`).toContain(opt);
    }
  });
});
