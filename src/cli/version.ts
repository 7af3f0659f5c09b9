// What `lunkit --version` prints: the package version, and the commit when
// this copy is a git checkout ("0.1.0 (git 1a2b3c4)", "-dirty" with
// uncommitted changes to tracked files). An installed package (npm install
// -g) has no .git and prints the version alone, and so does a checkout where
// git is not installed. Asked of git only for --version, never on a verb.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: src/cli (vitest) and dist/cli (built) are both two levels down. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export function packageVersion(root = packageRoot()): string {
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The short commit of the checkout at `root`, or undefined. Only `root`'s own
 * .git counts: a package installed inside some other repository must not
 * report that repository's commit.
 */
export function gitCommit(root = packageRoot()): string | undefined {
  if (!existsSync(join(root, '.git'))) return undefined;
  const git = (args: string[]): string =>
    execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim();
  try {
    const commit = git(['rev-parse', '--short', 'HEAD']);
    if (!/^[0-9a-f]{4,40}$/.test(commit)) return undefined;
    let dirty = false;
    try {
      dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
    } catch {
      // a commit without the dirty flag is still worth printing
    }
    return dirty ? `${commit}-dirty` : commit;
  } catch {
    return undefined; // git missing, or not a repository after all
  }
}

export function versionText(root = packageRoot()): string {
  const commit = gitCommit(root);
  return commit ? `${packageVersion(root)} (git ${commit})` : packageVersion(root);
}
