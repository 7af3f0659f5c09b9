// CLI conventions (docs/cli.md): every verb and sub-verb's --help shows an
// example; usage errors exit 2 (and print ERR_USAGE JSON with --json), a
// daemon that is not there exits 1; --version names the package version and,
// in a checkout, the commit; no output carries escape sequences (NO_COLOR
// holds because lunkit prints no colour at all).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { runCli } from '../../helpers/daemon-process.js';
import { ROOT } from '../../helpers/lunkit-process.js';

const NO_SOCKET = '/nonexistent-lunkit-dir/lunkit.sock';

/** The sub-commands yargs lists under "Commands:" for `path`. */
function subCommands(help: string, path: string[]): string[] {
  const m = /\nCommands:\n([\s\S]*?)\n\n/.exec(help);
  if (!m) return [];
  const out: string[] = [];
  for (const line of m[1].split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] !== 'lunkit' || w.slice(1, path.length + 1).join(' ') !== path.join(' ')) continue;
    const next = w[path.length + 1];
    if (next && !/^[<[]/.test(next)) out.push(next);
  }
  return out;
}

describe('lunkit CLI conventions', () => {
  it('every verb and sub-verb has an example in its --help', async () => {
    const top = await runCli(undefined, ['--help']);
    expect(top.code).toBe(0);
    const verbs = subCommands(top.stdout, []).filter((v) => v !== 'completion');
    expect(verbs.length).toBeGreaterThan(25);
    const missing: string[] = [];
    let seen = 0;
    const walk = async (path: string[]): Promise<void> => {
      const r = await runCli(undefined, [...path, '--help']);
      expect(r.code, path.join(' ')).toBe(0);
      seen++;
      if (!/\nExamples:\n {2}lunkit /.test(r.stdout)) missing.push(path.join(' '));
      for (const sub of subCommands(r.stdout, path)) await walk([...path, sub]);
    };
    for (const v of verbs) await walk([v]);
    expect(missing).toEqual([]);
    expect(seen).toBeGreaterThan(60);
  }, 180_000);

  it.each([
    [[], /name a command/],
    [['no-such-verb'], /Unknown argument: no-such-verb/],
    [['ls', '--no-such-option'], /Unknown argument/],
    [['lun', 'add'], /Not enough non-option arguments/],
    [['target', 'create', 'NOT-AN-IQN'], /ERR_INVALID_NAME/],
    [['backstore', 'create', 'file', 'd0', '--path', '/tmp/x.img', '--size', '1Q'], /ERR_INVALID_SIZE/],
  ])('usage error %j exits 2 and says what is wrong', async (args, message) => {
    const r = await runCli(NO_SOCKET, args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('a usage error with --json is one JSON error on stderr', async () => {
    const r = await runCli(NO_SOCKET, ['ls', '--json', '--no-such-option']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'ERR_USAGE', message: expect.stringMatching(/Unknown argument/) } });
  });

  it('no daemon exits 1 with ERR_CONTROL_CONNECT and what to do', async () => {
    const r = await runCli(NO_SOCKET, ['ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no lunkit daemon at .*lunkit daemon.*ERR_CONTROL_CONNECT/);
  });

  it('--version prints the package version and this checkout\'s commit', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const r = await runCli(undefined, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${pkg.version.replaceAll('.', '\\.')} \\(git ${commit}(-dirty)?\\)\\n$`));
  });

  it('prints no escape sequences, with or without NO_COLOR', async () => {
    for (const env of [{ NO_COLOR: '1' }, { FORCE_COLOR: '1' }]) {
      for (const args of [['--help'], ['ls', '--help'], ['ls'], ['ls', '--json', '--bogus']]) {
        const r = await runCli(NO_SOCKET, args, { env });
        expect(`${r.stdout}${r.stderr}`, args.join(' ')).not.toContain('\x1b');
      }
    }
  });
});
