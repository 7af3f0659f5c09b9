// Issue 4's interop lines, against real clients nobody here wrote: nbdcopy
// moves a random 256 MiB image in and out byte-identically, qemu-img compare
// agrees, fio's nbd engine verifies random read/write with crc32c, and a
// trimmed range (qemu-io discard) reads as zeroes and is a hole in
// nbdinfo --map.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { LunkitRuntime } from '../../src/daemon/runtime.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let rt: LunkitRuntime;
let dir: string;
let url: string;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-nbd-acc-'));
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { d: { type: 'file', path: join(dir, 'd.img'), size: '256M', thin: true } },
      nbd: { listen: ['127.0.0.1:0'], exports: { d: { backstore: 'd' } } },
    }),
  );
  url = `nbd://127.0.0.1:${rt.nbdAddresses()[0].port}/d`;
});
afterAll(async () => {
  await rt?.stop(2000);
  await rm(dir, { recursive: true, force: true });
});

describe('NBD acceptance with nbdcopy, qemu-img, fio and qemu-io', () => {
  it('nbdcopy moves a random 256 MiB image in and out byte-identically; qemu-img compare agrees', async () => {
    const src = join(dir, 'src.img');
    const back = join(dir, 'back.img');
    // 256 MiB of random data without holding it all in memory twice.
    const block = randomBytes(16 * MiB);
    await writeFile(src, Buffer.concat(Array.from({ length: 16 }, (_, i) => Buffer.from(block.map((b) => b ^ i)))));
    await run('nbdcopy', [src, url], { timeout: 120_000 });
    await run('nbdcopy', [url, back], { timeout: 120_000 });
    expect(await sha256(back)).toBe(await sha256(src));
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, url], { timeout: 120_000 });
    expect(cmp.stdout).toMatch(/Images are identical/);
  });

  it('fio (ioengine=nbd) random read/write with verify=crc32c finds no errors', async () => {
    const { stdout } = await run(
      'fio',
      ['--name=verify', '--ioengine=nbd', `--uri=${url}`, '--rw=randrw', '--bs=4k', '--size=64M', '--iodepth=16', '--verify=crc32c', '--verify_state_save=0', '--output-format=json'],
      { timeout: 180_000, maxBuffer: 64 << 20 },
    );
    const job = (JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: Array<{ error: number; read: { io_bytes: number }; write: { io_bytes: number } }> }).jobs[0];
    expect(job.error).toBe(0);
    expect(job.write.io_bytes).toBeGreaterThan(0);
    expect(job.read.io_bytes).toBeGreaterThan(0);
  });

  it('a trimmed range reads as zeroes and nbdinfo --map reports it as a hole', async () => {
    await run('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a ${100 * MiB} ${4 * MiB}`, url], { timeout: 60_000 });
    await run('qemu-io', ['-f', 'raw', '-c', `discard ${101 * MiB} ${MiB}`, url], { timeout: 60_000 });
    // read -P fails (non-zero exit) if any byte differs from the pattern.
    await run('qemu-io', ['-f', 'raw', '-c', `read -P 0 ${101 * MiB} ${MiB}`, '-c', `read -P 0x5a ${100 * MiB} ${MiB}`, url], { timeout: 60_000 });
    const { stdout } = await run('nbdinfo', ['--map', '--json', url], { timeout: 60_000 });
    const map = JSON.parse(stdout) as Array<{ offset: number; length: number; type: number; description: string }>;
    const covering = map.find((e) => e.offset <= 101 * MiB && e.offset + e.length >= 102 * MiB);
    expect(covering?.description).toMatch(/hole/);
    const data = map.find((e) => e.offset <= 100 * MiB && e.offset + e.length > 100 * MiB);
    expect(data?.description).toMatch(/data/);
  });
});
