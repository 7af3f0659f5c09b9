// The block door applies the SCSI path's rules: LUN map, reservations, write
// protection, range and alignment, the task set (a LUN reset from another
// nexus aborts block requests), FUA/write-cache, statistics.
import { describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import type { BlockNexus } from '../../../src/core/block-nexus.js';
import type { FabricOps, LunMapping, NexusIdentity, ScsiDeviceHandle } from '../../../src/core/types.js';
import { MemoryBackstore } from './helpers.js';

const fabric: FabricOps = { name: 'test' };

function identity(name: string, device: ScsiDeviceHandle, readOnly = false): NexusIdentity {
  const mapping: LunMapping = { device, readOnly };
  return {
    initiatorName: name,
    initiatorPortId: `${name},i,0x1`,
    targetName: 'tgt',
    targetPortId: 'tgt,t,0x1',
    relativeTargetPortId: 1,
    targetPortGroup: 0,
    protocolId: 0x0f,
    luns: { get: (l) => (l === 0 ? mapping : undefined), list: () => [0] },
  };
}

function setup(caps = {}, opts: { readOnly?: boolean; thin?: boolean } = {}): { core: ScsiCore; store: MemoryBackstore; dev: ScsiDeviceHandle; door: BlockNexus } {
  const core = new ScsiCore();
  const store = new MemoryBackstore('m', 1 << 20, 512, caps);
  const dev = core.createDevice(store, { name: 'm', thin: opts.thin ?? true });
  const door = core.openBlockNexus(identity('blk', dev, opts.readOnly), fabric);
  return { core, store, dev, door };
}

describe('BlockNexus', () => {
  it('reads back what it wrote, into a caller buffer when it fits', async () => {
    const { door } = setup();
    expect(await door.write(0, 4096, Buffer.alloc(4096, 7))).toBeUndefined();
    const into = Buffer.alloc(8192);
    const r = await door.read(0, 4096, 4096, into);
    expect(Buffer.isBuffer(r) && r.buffer === into.buffer && r.every((b) => b === 7)).toBe(true);
  });

  it('refuses what the SCSI path refuses, with the same reasons', async () => {
    const { door } = setup();
    expect(await door.read(1, 0, 512)).toBe('LUN_NOT_SUPPORTED');
    expect(await door.read(0, 100, 512)).toBe('INVALID_FIELD_IN_CDB');
    expect(await door.write(0, (1 << 20) - 512, Buffer.alloc(1024))).toBe('LBA_OUT_OF_RANGE');
    expect(await door.read(0, 0, 64 << 20)).toBe('LBA_OUT_OF_RANGE');
    expect(door.cache(0, 1 << 20, 512)).toBe('LBA_OUT_OF_RANGE');
    expect(door.cache(0, 0, 512)).toBeUndefined();
  });

  it('a read-only mapping is WRITE PROTECTED for every writer; reads work', async () => {
    const { door } = setup({}, { readOnly: true });
    expect(await door.write(0, 0, Buffer.alloc(512))).toBe('WRITE_PROTECTED');
    expect(await door.trim(0, 0, 512)).toBe('WRITE_PROTECTED');
    expect(await door.zeroes(0, 0, 512)).toBe('WRITE_PROTECTED');
    expect(Buffer.isBuffer(await door.read(0, 0, 512))).toBe(true);
    const geo = door.geometry(0);
    expect(typeof geo !== 'string' && geo.writeProtected).toBe(true);
  });

  it('RESERVE(6) held by another nexus conflicts reads and writes', async () => {
    const { core, dev, door } = setup();
    const other = core.openNexus(identity('iqn.other', dev), fabric);
    const submit = (cdb: number[]) => core.submit({ nexus: other, lun: 0, cdb: Buffer.from(cdb), tag: 1, attr: 'simple', expectedLength: 0, direction: 'none' });
    await submit([0, 0, 0, 0, 0, 0]); // consume POWER ON
    expect((await submit([0x16, 0, 0, 0, 0, 0])).status).toBe(0);
    expect(await door.write(0, 0, Buffer.alloc(512))).toBe('RESERVATION_CONFLICT');
    expect(await door.read(0, 0, 512)).toBe('RESERVATION_CONFLICT');
    expect(await door.flush(0)).toBe('RESERVATION_CONFLICT');
    expect((await submit([0x17, 0, 0, 0, 0, 0])).status).toBe(0);
    expect(await door.write(0, 0, Buffer.alloc(512))).toBeUndefined();
  });

  it('a backstore error becomes the reason errnoToSense gives it', async () => {
    const { store, door } = setup();
    store.failNext = Object.assign(new Error('boom'), { code: 'EIO' });
    expect(await door.read(0, 0, 512)).toBe('MEDIUM_ERROR_READ');
    store.failNext = Object.assign(new Error('full'), { code: 'ENOSPC' });
    expect(await door.write(0, 0, Buffer.alloc(512))).toBe('SPACE_ALLOCATION_FAILED');
  });

  it('a LOGICAL UNIT RESET from an iSCSI-like nexus aborts a block request in flight', async () => {
    const { core, dev, store, door } = setup();
    const other = core.openNexus(identity('iqn.other', dev), fabric);
    const release = store.hold();
    const pending = door.read(0, 0, 512);
    await new Promise((r) => setTimeout(r, 5));
    const reset = core.taskManagement({ nexus: other, fn: 'lun-reset', lun: 0 });
    release();
    expect(await reset).toBe('function-complete');
    expect(await pending).toBe('ABORTED');
  });

  it('trim is advisory on a LU that is not thin; zeroes honour fast-zero', async () => {
    const thick = setup({}, { thin: false });
    await thick.door.write(0, 0, Buffer.alloc(512, 1));
    expect(await thick.door.trim(0, 0, 512)).toBeUndefined();
    expect(thick.store.data[0]).toBe(1);
    expect(await thick.door.zeroes(0, 0, 512, { mayTrim: true, fastZero: true })).toBe('NOT_SUPPORTED');
    expect(await thick.door.zeroes(0, 0, 512)).toBeUndefined();
    expect(thick.store.data[0]).toBe(0);
    const thin = setup();
    await thin.door.write(0, 0, Buffer.alloc(512, 1));
    expect(await thin.door.zeroes(0, 0, 512, { mayTrim: true, fastZero: true })).toBeUndefined();
    expect(thin.store.data[0]).toBe(0);
  });

  it('counts operations on the LU and the nexus like SCSI commands', async () => {
    const { core, door } = setup();
    await door.write(0, 0, Buffer.alloc(1024));
    await door.read(0, 0, 512);
    await door.read(0, 100, 512);
    const snap = core.statsSnapshot();
    expect(snap.luns[0]).toMatchObject({ commands: 3, reads: 2, writes: 1, readBytes: 512, writtenBytes: 1024, errors: 1 });
    expect(snap.luns[0].checkConditions).toEqual({ ILLEGAL_REQUEST: 1 });
    expect(snap.nexuses[0]).toMatchObject({ commands: 3, reads: 2, writes: 1 });
  });

  it('geometry reflects caps and the LU; a closed nexus gets ABORTED', async () => {
    const { core, door } = setup({ canFua: false });
    const geo = door.geometry(0);
    expect(geo).toMatchObject({ size: 1 << 20, blockSize: 512, thin: true, unmapReadsZero: true, writeProtected: false, writeCache: true });
    expect(typeof geo !== 'string' && geo.caps.canFua).toBe(false);
    core.closeNexus(door.nexus);
    expect(await door.read(0, 0, 512)).toBe('ABORTED');
    expect(door.geometry(0)).toBe('ABORTED');
  });
});
