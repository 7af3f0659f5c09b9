import { describe, expect, it } from 'vitest';
import { be, cdb10, cdb12, cdb16, dataOf, makeDevice, reasonOf, run } from './harness.js';
import type { BackstoreOps } from '../../../src/core/types.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';

const BS = 512;

function caw(lba: number, blocks: number, byte1 = 0): number[] {
  return [0x89, byte1, ...be(lba, 8), 0, 0, 0, blocks, 0, 0];
}

describe('VERIFY', () => {
  it('BYTCHK=1: GOOD on a match, MISCOMPARE with the offset of the first differing byte', async () => {
    const dev = makeDevice();
    const data = Buffer.alloc(4 * BS, 0x33);
    await run(dev, cdb10(0x2a, 10, 4), { dataOut: data });
    expect(reasonOf(await run(dev, cdb10(0x2f, 10, 4, 0x02), { dataOut: data }))).toBe('good');
    const bad = Buffer.from(data);
    bad[3 * BS + 17] ^= 0x58;
    expect(await run(dev, cdb16(0x8f, 10, 4, 0x02), { dataOut: bad })).toEqual({
      kind: 'check',
      reason: 'MISCOMPARE_DURING_VERIFY',
      info: 3 * BS + 17,
    });
    expect(reasonOf(await run(dev, cdb12(0xaf, 10, 4, 0x02), { dataOut: bad }))).toBe('MISCOMPARE_DURING_VERIFY');
  });

  it('BYTCHK=0 only checks the medium and ignores data; BYTCHK=3 compares one block with every block', async () => {
    const dev = makeDevice();
    await run(dev, cdb10(0x2a, 0, 3), { dataOut: Buffer.alloc(3 * BS, 0x44) });
    expect(reasonOf(await run(dev, cdb10(0x2f, 0, 3, 0x00)))).toBe('good');
    expect(reasonOf(await run(dev, cdb10(0x2f, 0, 3, 0x06), { dataOut: Buffer.alloc(BS, 0x44) }))).toBe('good');
    expect(reasonOf(await run(dev, cdb10(0x2f, 0, 4, 0x06), { dataOut: Buffer.alloc(BS, 0x44) }))).toBe(
      'MISCOMPARE_DURING_VERIFY',
    );
    expect(reasonOf(await run(dev, cdb10(0x2f, 0, 1, 0x04)))).toBe('INVALID_FIELD_IN_CDB');
  });

  it('range checks: beyond the end and with 0 blocks', async () => {
    const dev = makeDevice({ blocks: 64 });
    expect(reasonOf(await run(dev, cdb16(0x8f, 65, 0, 0x02)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, cdb16(0x8f, 63, 2, 0x02), { dataOut: Buffer.alloc(2 * BS) }))).toBe(
      'LBA_OUT_OF_RANGE',
    );
    expect(reasonOf(await run(dev, cdb16(0x8f, 0, 0, 0x02)))).toBe('good');
  });
});

describe('COMPARE AND WRITE', () => {
  it('writes on a match; on a miscompare writes nothing and reports the Data-Out offset', async () => {
    const dev = makeDevice();
    await run(dev, cdb10(0x2a, 2, 2), { dataOut: Buffer.alloc(2 * BS, 0x41) });
    const buf = Buffer.concat([Buffer.alloc(2 * BS, 0x41), Buffer.alloc(2 * BS, 0x42)]);
    expect(reasonOf(await run(dev, caw(2, 2), { dataOut: buf }))).toBe('good');
    expect(dataOf(await run(dev, cdb10(0x28, 2, 2))).every((b) => b === 0x42)).toBe(true);

    const miss = Buffer.concat([Buffer.alloc(2 * BS, 0x42), Buffer.alloc(2 * BS, 0x43)]);
    miss[2 * BS - 27] = 0x43;
    expect(await run(dev, caw(2, 2), { dataOut: miss })).toEqual({
      kind: 'check',
      reason: 'MISCOMPARE_DURING_VERIFY',
      info: 2 * BS - 27,
    });
    expect(dataOf(await run(dev, cdb10(0x28, 2, 2))).every((b) => b === 0x42)).toBe(true);
  });

  it('refuses a length the one-byte field cannot carry and a Data-Out of the wrong size', async () => {
    const dev = makeDevice();
    // NUMBER 0 with 256 blocks of data attached (libiscsi's i=256 case).
    expect(reasonOf(await run(dev, caw(0, 0), { dataOut: Buffer.alloc(512 * BS) }))).toBe('INVALID_FIELD_IN_CDB');
    expect(reasonOf(await run(dev, caw(0, 1), { dataOut: Buffer.alloc(4 * BS), expectedLength: 4 * BS }))).toBe(
      'INVALID_FIELD_IN_CDB',
    );
    expect(reasonOf(await run(dev, caw(0, 0)))).toBe('good');
    expect(reasonOf(await run(dev, caw(2048, 1), { dataOut: Buffer.alloc(2 * BS) }))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, caw(0, 1), { dataOut: Buffer.alloc(2 * BS), writeProtected: true }))).toBe(
      'WRITE_PROTECTED',
    );
  });

  it('is atomic against a WRITE to the same blocks issued while it runs', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * BS, blockSize: BS });
    let releaseRead: () => void = () => undefined;
    let slowReads = 1;
    const slow: BackstoreOps = Object.assign(Object.create(rd) as RamdiskBackstore, {
      read: async (buf: Buffer, off: number) => {
        if (slowReads-- > 0) await new Promise<void>((r) => (releaseRead = r));
        return rd.read(buf, off);
      },
    });
    const dev = makeDevice({ backstore: slow });
    const cawDone = run(dev, caw(0, 1), { dataOut: Buffer.concat([Buffer.alloc(BS), Buffer.alloc(BS, 0x11)]) });
    await new Promise((r) => setImmediate(r));
    // The WRITE queues behind the compare-and-write's range lock.
    const writeDone = run(dev, cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(BS, 0x22) });
    await new Promise((r) => setImmediate(r));
    releaseRead();
    expect(reasonOf(await cawDone)).toBe('good');
    expect(reasonOf(await writeDone)).toBe('good');
    // The WRITE came last: without the lock it would have been overwritten by the CAW.
    expect(dataOf(await run(dev, cdb10(0x28, 0, 1))).every((b) => b === 0x22)).toBe(true);
  });
});
