// `attach nbd://` with --connections, in process (runHolder, as
// `lunkit attach --foreground` does): the holder opens 4 NBD connections to
// lunkit's own NBD server (counted there), the FUSE file reads back what was
// written through it, and stopping the holder flushes and closes all four. An
// export without multi-conn (nbdkit's multi-conn filter, mode disable) gets
// one connection and the holder's log says why. Needs root and /dev/fuse.

import { randomBytes } from 'node:crypto';
import { access, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/daemon/config.js';
import { LunkitRuntime } from '../../../src/daemon/runtime.js';
import { planAttach } from '../../../src/attach/plan.js';
import { parseSource, withSourceOptions } from '../../../src/attach/source.js';
import type { Logger } from '../../../src/util/log.js';
import { startNbdkit } from './peers.js';

const MiB = 1024 * 1024;
const canFuse = process.getuid?.() === 0 && (await access('/dev/fuse').then(() => true, () => false));

let rt: LunkitRuntime;
let base = '';
const savedRunDir = process.env.LUNKIT_RUN_DIR;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'lunkit-attach-nbdmc-'));
  process.env.LUNKIT_RUN_DIR = join(base, 'run');
  rt = await LunkitRuntime.start(
    parseConfig({ backstores: { disk: { type: 'ramdisk', size: '32M' } }, nbd: { listen: ['127.0.0.1:0'], exports: { disk: { backstore: 'disk' } } } }),
  );
}, 30_000);

afterAll(async () => {
  await rt?.stop(0);
  if (savedRunDir === undefined) delete process.env.LUNKIT_RUN_DIR;
  else process.env.LUNKIT_RUN_DIR = savedRunDir;
  if (base) await rm(base, { recursive: true, force: true });
});

function collect(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (m: string, f?: Record<string, unknown>): void => {
    lines.push(`${m} ${JSON.stringify(f ?? {})}`);
  };
  return { lines, debug: put, info: put, warn: put, error: put };
}

describe.skipIf(!canFuse)('attach nbd:// --connections', () => {
  it('--connections 4: four NBD connections, data through the FUSE file reads back, stop closes them', async () => {
    const { runHolder } = await import('../../../src/attach/holder.js');
    const url = `nbd://127.0.0.1:${rt.nbdAddresses()[0].port}/disk`;
    const source = withSourceOptions(parseSource(url), { connections: 4 });
    const plan = planAttach(source, { file: join(base, 'mnt', 'disk') });
    const logger = collect();
    const holder = await runHolder(plan, logger);
    try {
      expect(rt.nbd!.connections().filter((c) => c.export === 'disk')).toHaveLength(4);
      expect(logger.lines.join('\n')).toMatch(/multi-conn.*"connections":4/);
      const data = randomBytes(8 * MiB);
      const fh = await open(holder.state.file, 'r+');
      try {
        await fh.write(data, 0, data.length, MiB);
        await fh.sync();
        const back = Buffer.alloc(data.length);
        await fh.read(back, 0, back.length, MiB);
        expect(back.equals(data)).toBe(true);
      } finally {
        await fh.close();
      }
    } finally {
      await holder.stop();
    }
    await expect.poll(() => rt.nbd!.connections().length).toBe(0);
  });

  it('the default (4) falls back to one connection on an export without multi-conn, and the log says why', async () => {
    const { runHolder } = await import('../../../src/attach/holder.js');
    const peer = await startNbdkit(['memory', '16M', 'multi-conn-mode=disable'], { extraArgs: ['--filter=multi-conn'] });
    try {
      const plan = planAttach(parseSource(peer.url()), { file: join(base, 'mnt2', 'disk') });
      const logger = collect();
      const holder = await runHolder(plan, logger);
      try {
        expect(logger.lines.join('\n')).toMatch(/one connection.*"requested":4.*CAN_MULTI_CONN/);
        const fh = await open(holder.state.file, 'r+');
        const data = randomBytes(MiB);
        await fh.write(data, 0, data.length, 0);
        const back = Buffer.alloc(MiB);
        await fh.read(back, 0, MiB, 0);
        await fh.close();
        expect(back.equals(data)).toBe(true);
      } finally {
        await holder.stop();
      }
    } finally {
      await peer.stop();
    }
  });
});
