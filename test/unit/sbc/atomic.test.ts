import { describe, expect, it } from 'vitest';
import { be, cdb10, dataOf, makeDevice, reasonOf, run } from './harness.js';
import { harness, inquiryCdb, senseOf } from '../core/helpers.js';
import type { BackstoreOps } from '../../../src/core/types.js';
import type { CommandOutcome } from '../../../src/core/command.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { sbcBlockLimits } from '../../../src/core/sbc-commands.js';

const BS = 512;

/** WRITE ATOMIC(16), byte by byte: LBA 2-9, ATOMIC BOUNDARY 10-11, TRANSFER LENGTH 12-13. */
function wa16(lba: bigint | number, blocks: number, byte1 = 0, boundary = 0): number[] {
  return [0x9c, byte1, ...be(lba, 8), ...be(boundary, 2), ...be(blocks, 2), 0, 0];
}

function fieldByte(o: CommandOutcome): number | undefined {
  return o.kind === 'check' ? o.field?.byte : undefined;
}

describe('WRITE ATOMIC(16) handler', () => {
  it('writes 1..256 blocks at the start and at the end of the LU', async () => {
    const dev = makeDevice({ blocks: 1024 });
    for (const n of [1, 7, 256]) {
      const data = Buffer.alloc(n * BS, n);
      expect(reasonOf(await run(dev, wa16(0, n), { dataOut: data }))).toBe('good');
      expect(dataOf(await run(dev, cdb10(0x28, 0, n))).equals(data)).toBe(true);
      expect(reasonOf(await run(dev, wa16(1024 - n, n), { dataOut: data }))).toBe('good');
      expect(dataOf(await run(dev, cdb10(0x28, 1024 - n, n))).equals(data)).toBe(true);
    }
  });

  it('0 blocks is GOOD in range and LBA OUT OF RANGE past the end, at 2^63 and at -1', async () => {
    const dev = makeDevice({ blocks: 64 });
    expect(reasonOf(await run(dev, wa16(0, 0)))).toBe('good');
    expect(reasonOf(await run(dev, wa16(64, 0)))).toBe('good');
    expect(reasonOf(await run(dev, wa16(65, 0)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, wa16(1n << 63n, 0)))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, wa16((1n << 64n) - 1n, 0)))).toBe('LBA_OUT_OF_RANGE');
  });

  it('refuses ranges that run past the end without writing anything', async () => {
    const dev = makeDevice({ blocks: 64 });
    const data = Buffer.alloc(4 * BS, 0xa6);
    expect(reasonOf(await run(dev, wa16(62, 4), { dataOut: data }))).toBe('LBA_OUT_OF_RANGE');
    expect(reasonOf(await run(dev, wa16((1n << 64n) - 1n, 2), { dataOut: data }))).toBe('LBA_OUT_OF_RANGE');
    expect(dataOf(await run(dev, cdb10(0x28, 62, 2))).every((b) => b === 0)).toBe(true);
  });

  it('TRANSFER LENGTH above MAXIMUM ATOMIC TRANSFER LENGTH: INVALID FIELD IN CDB at byte 12', async () => {
    const dev = makeDevice({ blocks: 32768 });
    const max = sbcBlockLimits(BS).maxAtomicTransferLength;
    expect(reasonOf(await run(dev, wa16(0, max), { dataOut: Buffer.alloc(max * BS, 1) }))).toBe('good');
    const over = await run(dev, wa16(0, max + 1), { dataOut: Buffer.alloc((max + 1) * BS) });
    expect(reasonOf(over)).toBe('INVALID_FIELD_IN_CDB');
    expect(fieldByte(over)).toBe(12);
  });

  it('WRPROTECT != 0 and a non-zero ATOMIC BOUNDARY are INVALID FIELD IN CDB', async () => {
    const dev = makeDevice();
    const data = Buffer.alloc(BS);
    for (let wp = 1; wp < 8; wp++) {
      expect(reasonOf(await run(dev, wa16(0, 1, wp << 5), { dataOut: data }))).toBe('INVALID_FIELD_IN_CDB');
    }
    const b = await run(dev, wa16(0, 1, 0, 1), { dataOut: data });
    expect(reasonOf(b)).toBe('INVALID_FIELD_IN_CDB');
    expect(fieldByte(b)).toBe(10);
  });

  it('WRITE PROTECTED when the nexus is write-protected', async () => {
    const dev = makeDevice();
    expect(reasonOf(await run(dev, wa16(0, 1), { dataOut: Buffer.alloc(BS, 1), writeProtected: true }))).toBe(
      'WRITE_PROTECTED',
    );
    expect(dataOf(await run(dev, cdb10(0x28, 0, 1))).every((b) => b === 0)).toBe(true);
  });

  it('writes nothing when less data arrives than the TRANSFER LENGTH asks for', async () => {
    const dev = makeDevice();
    const short = await run(dev, wa16(0, 4), { dataOut: Buffer.alloc(2 * BS, 0x5a), expectedLength: 2 * BS });
    expect(reasonOf(short)).toBe('INVALID_FIELD_IN_CDB');
    expect(dataOf(await run(dev, cdb10(0x28, 0, 4))).every((b) => b === 0)).toBe(true);
  });

  it('passes FUA to the backstore when asked, or when the write cache is off; DPO is accepted', async () => {
    const seen: boolean[] = [];
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * BS, blockSize: BS });
    const spy: BackstoreOps = Object.assign(Object.create(rd) as RamdiskBackstore, {
      write: async (buf: Buffer, off: number, opts?: { fua?: boolean }) => {
        seen.push(opts?.fua === true);
        return rd.write(buf, off);
      },
    });
    const data = Buffer.alloc(BS, 3);
    const wc = makeDevice({ backstore: spy });
    expect(reasonOf(await run(wc, wa16(0, 1), { dataOut: data }))).toBe('good');
    expect(reasonOf(await run(wc, wa16(0, 1, 0x08), { dataOut: data }))).toBe('good');
    expect(reasonOf(await run(wc, wa16(0, 1, 0x10), { dataOut: data }))).toBe('good');
    expect(reasonOf(await run(wc, wa16(0, 1, 0x18), { dataOut: data }))).toBe('good');
    const noWc = makeDevice({ backstore: spy, writeCache: false });
    expect(reasonOf(await run(noWc, wa16(0, 1), { dataOut: data }))).toBe('good');
    expect(seen).toEqual([false, true, false, true, true]);
  });

  it('holds the range lock across the write: an overlapping WRITE cannot interleave', async () => {
    const rd = new RamdiskBackstore({ name: 'r', size: 64 * BS, blockSize: BS });
    let releaseWrite: () => void = () => undefined;
    let slowWrites = 1;
    const slow: BackstoreOps = Object.assign(Object.create(rd) as RamdiskBackstore, {
      write: async (buf: Buffer, off: number) => {
        if (slowWrites-- > 0) await new Promise<void>((r) => (releaseWrite = r));
        return rd.write(buf, off);
      },
    });
    const dev = makeDevice({ backstore: slow });
    const atomic = run(dev, wa16(0, 8), { dataOut: Buffer.alloc(8 * BS, 0x11) });
    await new Promise((r) => setImmediate(r));
    const plain = run(dev, cdb10(0x2a, 4, 1), { dataOut: Buffer.alloc(BS, 0x22) });
    await new Promise((r) => setImmediate(r));
    // Without the lock the WRITE would land first and then be overwritten.
    releaseWrite();
    expect(reasonOf(await atomic)).toBe('good');
    expect(reasonOf(await plain)).toBe('good');
    const back = dataOf(await run(dev, cdb10(0x28, 0, 8)));
    expect(back.subarray(4 * BS, 5 * BS).every((b) => b === 0x22)).toBe(true);
    expect(back.subarray(0, 4 * BS).every((b) => b === 0x11)).toBe(true);
  });
});

describe('WRITE ATOMIC(16) through the engine', () => {
  it('VPD 0xB0 reports consistent atomic limits: max <= MAXIMUM TRANSFER LENGTH, no alignment, granularity or boundary', async () => {
    for (const blockSize of [512, 4096] as const) {
      const n = await harness({ blockSize }).connect();
      const b0 = (await n.command(0, inquiryCdb(true, 0xb0, 255))).dataIn!;
      expect(b0.length).toBe(64);
      const maxAtomic = b0.readUInt32BE(44);
      expect(maxAtomic).toBe(sbcBlockLimits(blockSize).maxAtomicTransferLength);
      expect(maxAtomic).toBeGreaterThanOrEqual(256);
      expect(maxAtomic).toBeLessThanOrEqual(Math.min(0xffff, b0.readUInt32BE(8)));
      expect(b0.readUInt32BE(48)).toBe(0); // ATOMIC ALIGNMENT
      expect(b0.readUInt32BE(52)).toBe(0); // ATOMIC TRANSFER LENGTH GRANULARITY
      expect(b0.readUInt32BE(56)).toBe(0); // MAX ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY
      expect(b0.readUInt32BE(60)).toBe(0); // MAXIMUM ATOMIC BOUNDARY SIZE
    }
  });

  it('is dispatched, advertises DPO/FUA in REPORT SUPPORTED OPERATION CODES and refuses WRPROTECT', async () => {
    const h = harness();
    const n = await h.connect();
    const data = Buffer.alloc(2 * BS, 0x77);
    const ok = await n.command(0, wa16(3, 2, 0x18), { dataOut: data, expectedLength: data.length });
    expect(ok.status).toBe(0);
    expect(h.store.data.subarray(3 * BS, 5 * BS).equals(data)).toBe(true);
    // RSOC, reporting options 001b: one command, opcode 0x9c.
    const rsoc = await n.command(0, [0xa3, 0x0c, 0x01, 0x9c, 0, 0, 0, 0, 0x01, 0x00, 0, 0]);
    expect(rsoc.status).toBe(0);
    const d = rsoc.dataIn!;
    expect(d[1] & 0x07).toBe(0x03); // SUPPORT: supported per standard
    expect(d.readUInt16BE(2)).toBe(16);
    expect(d[4]).toBe(0x9c);
    expect(d[5] & 0x18).toBe(0x18);
    const bad = await n.command(0, wa16(0, 1, 0x20), { dataOut: Buffer.alloc(BS), expectedLength: BS });
    expect(bad.status).toBe(2);
    expect(senseOf(bad.sense)).toMatchObject({ key: 5, asc: 0x24, ascq: 0 });
  });
});
