// Many sessions, targets and portals at once: two targets with a LUN each,
// two portals per TPG; four qemu-img writers (one per target and portal pair,
// each on its own region) and iscsi-perf readers run together, then every
// byte is checked.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LunkitRuntime } from '../../src/daemon/runtime.js';
import { parseConfig } from '../../src/daemon/config.js';

const run = promisify(execFile);
const T1 = 'iqn.2026-11.io.lunkit:multi1';
const T2 = 'iqn.2026-11.io.lunkit:multi2';
const MiB = 1024 * 1024;
let rt: LunkitRuntime;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lunkit-multi-'));
  const tpg = (bs: string): unknown => ({ portals: ['127.0.0.1:0', '127.0.0.1:0'], luns: { '0': bs }, attributes: { generateNodeAcls: true } });
  rt = await LunkitRuntime.start(
    parseConfig({
      backstores: { a: { type: 'file', path: join(dir, 'a.img'), size: '32M' }, b: { type: 'ramdisk', size: '32M' } },
      iscsi: { targets: { [T1]: { tpgs: { '1': tpg('a') } }, [T2]: { tpgs: { '1': tpg('b') } } } },
    }),
  );
});
afterAll(async () => {
  await rt?.stop(2000);
  await rm(dir, { recursive: true, force: true });
});

describe('concurrent sessions, targets and portals', () => {
  it('keeps every writer’s data intact while readers run', async () => {
    const ports = rt.addresses().map((a) => a.port);
    expect(ports).toHaveLength(4);
    // Which ports belong to which target: ask SendTargets through each portal.
    const owner = new Map<number, string>();
    for (const p of ports) {
      const { stdout } = await run('iscsi-ls', [`iscsi://127.0.0.1:${p}/`], { timeout: 15_000 });
      for (const t of [T1, T2]) if (stdout.includes(`${t} Portal:127.0.0.1:${p},`)) owner.set(p, t);
    }
    expect([...owner.values()].sort()).toEqual([T1, T1, T2, T2]);
    const jobs: Array<{ url: string; file: string; data: Buffer; offset: number }> = [];
    const regionOf = new Map<string, number>();
    for (const p of ports) {
      const t = owner.get(p)!;
      const region = regionOf.get(t) ?? 0;
      regionOf.set(t, region + 1);
      const data = randomBytes(8 * MiB);
      const file = join(dir, `w-${p}.raw`);
      await writeFile(file, data);
      jobs.push({ url: `iscsi://127.0.0.1:${p}/${t}/0`, file, data, offset: region * 8 * MiB });
    }
    // A raw window (offset/size) over the iSCSI LUN gives each writer its region.
    const region = (j: (typeof jobs)[number]): string => {
      const [, , portal, target] = j.url.split('/');
      return `driver=raw,offset=${j.offset},size=${8 * MiB},file.driver=iscsi,file.transport=tcp,file.portal=${portal},file.target=${target},file.lun=0`;
    };
    const writers = jobs.map((j) => run('qemu-img', ['convert', '-n', '-f', 'raw', '--target-image-opts', j.file, region(j)], { timeout: 120_000 }));
    const readers = ports.map((p) => run('iscsi-perf', ['-m', '8', '-b', '8', '-t', '2', '-r', `iscsi://127.0.0.1:${p}/${owner.get(p)!}/0`], { timeout: 60_000 }));
    const perf = await Promise.all(readers);
    await Promise.all(writers);
    for (const r of perf) expect(r.stdout.replace(/\r/g, '\n')).toMatch(/iops average [1-9]\d*/);
    for (const j of jobs) {
      const back = join(dir, `r-${j.url.split(':')[2].split('/')[0]}.raw`);
      await run('qemu-img', ['convert', '-O', 'raw', '--image-opts', region(j), back], { timeout: 120_000 });
      expect((await readFile(back)).equals(j.data)).toBe(true);
    }
  });
});
