// Saving the configuration so that a crash at any moment leaves either the
// old file or the new one, never a mix: write a temporary file in the same
// directory, fsync it, rename it over the target, fsync the directory (so the
// rename itself is on disk). The previous copies are kept as path.1 (newest)
// .. path.N, like logrotate. The file holds CHAP secrets: mode 0600.

import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readConfigJson } from './config.js';
import { validateDoc, type DesiredState } from './config-doc.js';

export interface SaveResult {
  path: string;
  /** The backup copies that exist after the save, newest first. */
  backups: string[];
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY);
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on a directory; the rename is done anyway.
    const code = (err as { code?: string }).code;
    if (code !== 'EINVAL' && code !== 'EBADF' && code !== 'EISDIR') throw err;
  } finally {
    await fh.close();
  }
}

/** path.N is dropped, path.i becomes path.(i+1), the current file becomes path.1. */
async function rotate(path: string, keep: number): Promise<void> {
  if (keep <= 0 || !(await exists(path))) return;
  await unlink(`${path}.${keep}`).catch(() => {});
  for (let i = keep - 1; i >= 1; i--) {
    await rename(`${path}.${i}`, `${path}.${i + 1}`).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    });
  }
  // A hard link keeps the current file in place until the rename replaces it.
  await link(path, `${path}.1`).catch(() => copyFile(path, `${path}.1`));
}

/** Writes `doc` as JSON to `path` atomically, keeping `backups` previous copies. */
export async function saveConfigFile(path: string, doc: unknown, backups: number): Promise<SaveResult> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(doc, null, 2)}\n`);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rotate(path, backups);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fsyncDir(dir);
  const kept: string[] = [];
  for (let i = 1; i <= backups; i++) if (await exists(`${path}.${i}`)) kept.push(`${path}.${i}`);
  return { path, backups: kept };
}

/**
 * Reads, migrates and validates a saved configuration; ConfigError names the
 * file and, for each problem, the JSON path.
 */
export async function loadConfigDoc(path: string): Promise<DesiredState> {
  return validateDoc(await readConfigJson(path), path);
}
