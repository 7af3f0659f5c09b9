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
