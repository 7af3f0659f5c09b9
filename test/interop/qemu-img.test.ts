// A file written through the target with qemu-img convert (QEMU's own iSCSI
// block driver, libiscsi underneath) reads back byte-identical, and qemu-img
// compare agrees.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveConfig, type LunkitProcess } from '../helpers/lunkit-process.js';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.lunkit:qemu';
let proc: LunkitProcess;

beforeAll(async () => {
  proc = await serveConfig((dir) => ({
    backstores: { disk: { type: 'file', path: join(dir, 'disk.img'), size: '64M' } },
    iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:0'], luns: { '0': 'disk' }, attributes: { generateNodeAcls: true } } } } } },
  }));
});
afterAll(async () => {
  await proc?.stop();
});

describe('qemu-img over iscsi://', () => {
  it('writes a random image and reads it back byte-identical', async () => {
    const src = join(proc.dir, 'src.raw');
    const back = join(proc.dir, 'back.raw');
    const data = randomBytes(64 * 1024 * 1024);
    await writeFile(src, data);
    const url = `iscsi://127.0.0.1:${proc.port}/${IQN}/0`;
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url], { timeout: 120_000 });
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, back], { timeout: 120_000 });
    const got = await readFile(back);
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, url], { timeout: 120_000 });
    expect(cmp.stdout).toMatch(/Images are identical/);
    // The data also landed in the backing file itself.
    const file = await readFile(join(proc.dir, 'disk.img'));
    expect(file.equals(data)).toBe(true);
  });
});
