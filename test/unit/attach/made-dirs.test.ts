// Mount points that attach creates for a `[file]` path (state.ts
// makeMountpoint/removeMadeDirs): detach removes what it made, only that,
// and only while empty.

import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeMountpoint, removeMadeDirs } from '../../../src/attach/state.js';

let base = '';
const exists = (p: string): Promise<boolean> => stat(p).then(
  () => true,
  () => false,
);

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-made-dirs-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('makeMountpoint / removeMadeDirs', () => {
  it('removes the directories mkdir -p made, up to the first one', async () => {
    const dir = join(base, 'a', 'b', 'c');
    const made = await makeMountpoint(dir);
    expect(made).toBe(join(base, 'a'));
    await removeMadeDirs(dir, made);
    expect(await readdir(base)).toEqual([]);
    expect(await exists(base)).toBe(true);
  });

  it('leaves an existing directory alone', async () => {
    const dir = join(base, 'x');
    await mkdir(dir);
    const made = await makeMountpoint(dir);
    expect(made).toBeUndefined();
    await removeMadeDirs(dir, made);
    expect(await exists(dir)).toBe(true);
  });

  it('stops at a directory that is not empty', async () => {
    const dir = join(base, 'a', 'b', 'c');
    const made = await makeMountpoint(dir);
    await writeFile(join(base, 'a', 'keep'), 'x');
    await removeMadeDirs(dir, made);
    expect(await exists(join(base, 'a', 'b'))).toBe(false);
    expect(await readdir(join(base, 'a'))).toEqual(['keep']);
  });

  it('keeps a mount point that is not empty, and never goes above `top`', async () => {
    const dir = join(base, 'm');
    const made = await makeMountpoint(dir);
    await writeFile(join(dir, 'f'), 'x');
    await removeMadeDirs(dir, made);
    expect(await readdir(dir)).toEqual(['f']);
    const other = join(base, 'o');
    await mkdir(other);
    await removeMadeDirs(other, join(base, 'elsewhere'));
    expect(await exists(other)).toBe(true);
  });
});
