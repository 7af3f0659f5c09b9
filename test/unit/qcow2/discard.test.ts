// unmap, writeZeroes and extents after them, checked with QEMU's tools.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Qcow2Backstore } from '../../../src/backstores/qcow2/index.js';
import { check, pattern, qemuImg, qemuRead, tmpDir } from './helpers.js';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const CS = 65536;

function expectCleanAndEqual(file: string, expected: Buffer): void {
  const c = check(file);
  expect(c.corruptions).toBe(0);
  expect(c.leaks).toBe(0);
  expect(c.status).toBe(0);
  expect(qemuRead(file).equals(expected)).toBe(true);
}

describe('qcow2 unmap and write zeroes', () => {
  it('v3 without backing: unmap deallocates whole clusters, zeroes partial ones, extents show holes', async () => {
    const f = path.join(dir, 'u3.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', f, '2M');
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    expect(s.caps).toMatchObject({ canUnmap: true, canWriteZeroes: true, unmapReadsZero: true, thin: true });
    const data = pattern(1 << 20, 1);
    await s.write(data, 0);
    const expected = Buffer.alloc(2 << 20);
    data.copy(expected);
    await s.unmap!(CS + 512, 3 * CS); // partial head, 2 whole, partial tail
    expected.fill(0, CS + 512, 4 * CS + 512);
    const got = Buffer.alloc(1 << 20);
    await s.read(got, 0);
    expect(got.equals(expected.subarray(0, 1 << 20))).toBe(true);
    expect(await s.extents!(0, 6 * CS)).toEqual([
      { offset: 0, length: 2 * CS, hole: false },
      { offset: 2 * CS, length: 2 * CS, hole: true },
      { offset: 4 * CS, length: 2 * CS, hole: false },
    ]);
    await s.close();
    expectCleanAndEqual(f, expected);
  });

  it('v3 over a backing file: unmap and writeZeroes make zero clusters, the backing data does not show', async () => {
    const base = path.join(dir, 'zb.raw');
    const baseData = pattern(1 << 20, 2);
    fs.writeFileSync(base, baseData);
    const top = path.join(dir, 'zb.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-b', 'zb.raw', '-F', 'raw', top);
    const s = await Qcow2Backstore.open({ name: 't', path: top });
    expect(s.caps.unmapReadsZero).toBe(true);
    const expected = Buffer.from(baseData);
    await s.write(Buffer.alloc(CS, 7), 4 * CS);
    expected.fill(7, 4 * CS, 5 * CS);
    await s.unmap!(CS, 2 * CS);
    expected.fill(0, CS, 3 * CS);
    await s.writeZeroes!(4 * CS, CS, { mayUnmap: true }); // an allocated cluster: freed, zero flag
    expected.fill(0, 4 * CS, 5 * CS);
    await s.writeZeroes!(6 * CS + 1024, 2048, { fua: true }); // partial: written as zeroes
    expected.fill(0, 6 * CS + 1024, 6 * CS + 3072);
    const ext = await s.extents!(0, 1 << 20);
    expect(ext.filter((e) => e.hole)).toEqual([
      { offset: CS, length: 2 * CS, hole: true },
      { offset: 4 * CS, length: CS, hole: true },
    ]);
    await s.close();
    expectCleanAndEqual(top, expected);
    const map = JSON.parse(qemuImg('map', '--output=json', top)) as Array<{ start: number; zero: boolean; depth: number }>;
    expect(map.find((m) => m.start === CS)).toMatchObject({ zero: true, depth: 0 });
  });

  it('v2 over a backing file: unmap is advisory (caps say so), writeZeroes writes zeroes', async () => {
    const base = path.join(dir, 'v2b.raw');
    const baseData = pattern(1 << 20, 3);
    fs.writeFileSync(base, baseData);
    const top = path.join(dir, 'v2b.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', '-b', 'v2b.raw', '-F', 'raw', top);
    const s = await Qcow2Backstore.open({ name: 't', path: top });
    expect(s.caps.unmapReadsZero).toBe(false);
    const expected = Buffer.from(baseData);
    await s.unmap!(0, 2 * CS);
    await s.writeZeroes!(2 * CS, 2 * CS, { mayUnmap: true });
    expected.fill(0, 2 * CS, 4 * CS);
    await s.close();
    expectCleanAndEqual(top, expected);
  });

  it('v2 without backing: unmap deallocates and reads zeroes', async () => {
    const f = path.join(dir, 'v2.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', f, '1M');
    const s = await Qcow2Backstore.open({ name: 't', path: f });
    expect(s.caps.unmapReadsZero).toBe(true);
    await s.write(Buffer.alloc(4 * CS, 9), 0);
    await s.unmap!(CS, 2 * CS);
    await s.writeZeroes!(3 * CS, CS);
    const expected = Buffer.alloc(1 << 20);
    expected.fill(9, 0, CS);
    await s.close();
    expectCleanAndEqual(f, expected);
  });
});

describe('qcow2 mixed workload', () => {
  // syncIo: I/O on the event loop, as on tmpfs (io.ts), whatever the test directory's file system.
  for (const [compat, syncIo] of [['0.10', false], ['1.1', false], ['1.1', true]] as const) {
    it(`compat ${compat}${syncIo ? ', syncIo' : ''} over a compressed qcow2 backing file: concurrent writes, unmaps, write zeroes and reads match a model`, async () => {
      const src = path.join(dir, `mix-${compat}${syncIo ? '-sync' : ''}.raw`);
      const baseData = Buffer.alloc(4 << 20);
      baseData.fill('backing ');
      pattern(1 << 20, 8).copy(baseData, 1 << 20);
      fs.writeFileSync(src, baseData);
      const base = path.join(dir, `mix-base-${compat}${syncIo ? '-sync' : ''}.qcow2`);
      qemuImg('convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', src, base);
      const top = path.join(dir, `mix-top-${compat}${syncIo ? '-sync' : ''}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', '-o', `cluster_size=4096,compat=${compat}`, '-b', path.basename(base), '-F', 'qcow2', top, String(6 << 20));
      const s = await Qcow2Backstore.open({ name: 't', path: top, syncIo });
      const model = Buffer.alloc(6 << 20);
      baseData.copy(model);
      let seed = 1;
      const r = (): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x80000000;
      };
      for (let round = 0; round < 30; round++) {
        const taken: Array<[number, number]> = [];
        const jobs: Promise<void>[] = [];
        for (let i = 0; i < 24; i++) {
          const len = 512 * (1 + Math.floor(r() * 40));
          const off = 512 * Math.floor(r() * (model.length / 512 - len / 512));
          if (taken.some(([a, b]) => off < b && a < off + len)) continue;
          taken.push([off, off + len]);
          const op = r();
          if (op < 0.5) {
            const data = pattern(len, round * 100 + i);
            data.copy(model, off);
            jobs.push(s.write(data, off));
          } else if (op < 0.65) {
            if (s.caps.unmapReadsZero) model.fill(0, off, off + len);
            const before = Buffer.from(model.subarray(off, off + len));
            jobs.push(
              s.unmap!(off, len).then(async () => {
                if (!s.caps.unmapReadsZero) {
                  const got = Buffer.alloc(len);
                  await s.read(got, off);
                  expect(got.equals(before)).toBe(true);
                }
              }),
            );
          } else if (op < 0.8) {
            model.fill(0, off, off + len);
            jobs.push(s.writeZeroes!(off, len, { mayUnmap: r() < 0.5 }));
          } else {
            const want = Buffer.from(model.subarray(off, off + len));
            jobs.push(
              (async () => {
                const got = Buffer.alloc(len);
                await s.read(got, off);
                expect(got.equals(want)).toBe(true);
              })(),
            );
          }
        }
        await Promise.all(jobs);
      }
      await s.close();
      expectCleanAndEqual(top, model);
    });
  }
});
