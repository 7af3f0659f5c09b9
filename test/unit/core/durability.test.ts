// The LU's guard over its backstore (core/io-guard.ts): a failed flush
// latches MEDIUM ERROR / WRITE ERROR (03/0C/00) on every later flush and FUA
// write, through the SCSI door and the block door alike, until cleared;
// in-flight backstore calls are counted for shutdown; a TMF does not wait
// past its bound for a task stuck in the backstore.
import { describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import { markSyncFailure } from '../../../src/core/errno.js';
import type { FabricOps, LunMapping, NexusIdentity, ScsiDeviceHandle } from '../../../src/core/types.js';
import { LoopbackFabric, MutableLunMap } from '../../../src/fabrics/loopback/index.js';
import { MemoryBackstore, TUR, errnoError, harness, read10, senseOf, write10 } from './helpers.js';

const SYNC_CACHE10 = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const tick = () => new Promise<void>((r) => setImmediate(r));

/** WRITE(10) with FUA (byte 1 bit 3). */
function write10Fua(lba: number, blocks: number): number[] {
  const cdb = write10(lba, blocks);
  cdb[1] |= 0x08;
  return cdb;
}

function blockIdentity(device: ScsiDeviceHandle): NexusIdentity {
  const mapping: LunMapping = { device, readOnly: false };
  return {
    initiatorName: 'blk',
    initiatorPortId: 'blk,i,0x1',
    targetName: 'tgt',
    targetPortId: 'tgt,t,0x1',
    relativeTargetPortId: 1,
    targetPortGroup: 0,
    protocolId: 0x0f,
    luns: { get: (l) => (l === 0 ? mapping : undefined), list: () => [0] },
  };
}

const fabric: FabricOps = { name: 'test' };

describe('a failed flush latches the LU (fsyncgate)', () => {
  it('SYNCHRONIZE CACHE and FUA writes fail with 03/0C/00 after one flush failed, on both doors, until cleared', async () => {
    const h = harness();
    const n = await h.connect();
    const door = h.core.openBlockNexus(blockIdentity(h.dev), fabric);
    expect((await n.command(0, SYNC_CACHE10)).status).toBe(0);
    expect(h.core.mediumError(h.dev)).toBeUndefined();

    h.store.failNext = errnoError('EIO');
    const failed = await n.command(0, SYNC_CACHE10);
    expect(failed.status).toBe(2);
    expect(senseOf(failed.sense)).toMatchObject({ key: 0x3, asc: 0x0c, ascq: 0x00 });
    expect(h.core.mediumError(h.dev)).toMatchObject({ code: 'EIO', op: 'flush' });

    // The store works again (the kernel would report success now): the LU must not.
    const flushesBefore = h.store.flushes;
    const again = await n.command(0, SYNC_CACHE10);
    expect(senseOf(again.sense)).toMatchObject({ key: 0x3, asc: 0x0c, ascq: 0x00 });
    expect(h.store.flushes).toBe(flushesBefore); // refused before reaching the store
    const fua = await n.command(0, write10Fua(0, 1), { dataOut: Buffer.alloc(512, 1) });
    expect(senseOf(fua.sense)).toMatchObject({ key: 0x3, asc: 0x0c, ascq: 0x00 });
    expect(await door.flush(0)).toBe('MEDIUM_ERROR_WRITE');
    expect(await door.write(0, 0, Buffer.alloc(512, 2), true)).toBe('MEDIUM_ERROR_WRITE');

    // Plain writes and reads promise nothing about durability: they go on.
    expect((await n.command(0, write10(1, 1), { dataOut: Buffer.alloc(512, 3) })).status).toBe(0);
    expect((await n.command(0, read10(1, 1), { expectedLength: 512 })).status).toBe(0);
    expect(await door.write(0, 1024, Buffer.alloc(512, 4))).toBeUndefined();

    const lun = h.core.statsSnapshot().luns[0];
    expect(lun.mediumError).toMatchObject({ code: 'EIO', op: 'flush', refused: 4 });

    expect(h.core.clearMediumError(h.dev)).toMatchObject({ code: 'EIO' });
    expect(h.core.mediumError(h.dev)).toBeUndefined();
    expect((await n.command(0, SYNC_CACHE10)).status).toBe(0);
    expect(await door.flush(0)).toBeUndefined();
    expect((await n.command(0, write10Fua(0, 1), { dataOut: Buffer.alloc(512, 5) })).status).toBe(0);
    expect(h.core.statsSnapshot().luns[0].mediumError).toBeUndefined();
  });

  it('a write whose own sync failed latches; a plain failed write does not', async () => {
    const h = harness();
    const n = await h.connect();
    h.store.failNext = errnoError('EIO');
    const plain = await n.command(0, write10(0, 1), { dataOut: Buffer.alloc(512) });
    expect(senseOf(plain.sense)).toMatchObject({ key: 0x3, asc: 0x0c });
    expect(h.core.mediumError(h.dev)).toBeUndefined();
    expect((await n.command(0, SYNC_CACHE10)).status).toBe(0);

    h.store.failNext = markSyncFailure(errnoError('EIO'));
    const synced = await n.command(0, write10Fua(0, 1), { dataOut: Buffer.alloc(512) });
    expect(senseOf(synced.sense)).toMatchObject({ key: 0x3, asc: 0x0c });
    expect(h.core.mediumError(h.dev)).toMatchObject({ op: 'write' });
    expect(senseOf((await n.command(0, SYNC_CACHE10)).sense)).toMatchObject({ key: 0x3, asc: 0x0c, ascq: 0 });
  });

  it('a new device over the same backstore inherits the latch (a config change does not clear it)', async () => {
    const h = harness();
    const n = await h.connect();
    h.store.failNext = errnoError('ENOSPC');
    await n.command(0, SYNC_CACHE10);
    const dev2 = h.core.createDevice(h.store, { name: 'mem0' });
    expect(h.core.mediumError(dev2)).toBeUndefined();
    h.core.inheritMediumError(dev2, h.dev);
    expect(h.core.mediumError(dev2)).toMatchObject({ code: 'ENOSPC' });
  });

  it('the final flush reports a latched LU as failed, never throws', async () => {
    const h = harness();
    const n = await h.connect();
    h.store.failNext = errnoError('EIO');
    await n.command(0, SYNC_CACHE10);
    const r = await h.core.flushAll(1000);
    expect(r.failed).toEqual([{ device: 'mem0', error: expect.stringContaining('clear-error') as unknown as string }]);
    expect(r.timedOut).toEqual([]);
  });
});

describe('in-flight backstore I/O', () => {
  it('quiesce waits for a held write and names a LU still busy when the time runs out', async () => {
    const h = harness();
    const n = await h.connect();
    const release = h.store.hold();
    const w = n.send(0, write10(0, 8), { dataOut: Buffer.alloc(4096, 9) });
    await tick();
    expect(await h.core.quiesce(20)).toEqual(['mem0']);
    const idle = h.core.quiesce(10_000);
    release();
    expect(await idle).toEqual([]);
    expect((await w.response).status).toBe(0);
    expect(h.store.data[0]).toBe(9);
    // A flush of a hung LU is bounded too.
    const release2 = h.store.hold();
    const r = await h.core.flushAll(20);
    expect(r.timedOut).toEqual(['mem0']);
    release2();
  });

  it('LUN RESET answers within its bound while the aborted task is stuck in the backstore; the write lock keeps a later write behind it', async () => {
    const core = new ScsiCore({ tmfTaskWaitMs: 50 });
    const fab = new LoopbackFabric(core);
    const store = new MemoryBackstore('hang', 1 << 20);
    const dev = core.createDevice(store, { name: 'hang' });
    const luns = new MutableLunMap().set(0, dev);
    const n = fab.connect({ luns });
    for (let i = 0; i < 10 && (await n.command(0, TUR)).status !== 0; i++);
    const release = store.hold();
    const stuck = n.send(0, write10(0, 1), { dataOut: Buffer.alloc(512, 0xaa) });
    await tick();
    expect(await n.tmf('lun-reset', 0)).toBe('function-complete');
    expect(store.data[0]).toBe(0); // the stuck write has not landed: the reset did not wait for it
    expect(await core.quiesce(0)).toEqual(['hang']);
    // UA after the reset, then a write to the same block.
    for (let i = 0; i < 10 && (await n.command(0, TUR)).status !== 0; i++);
    const later = n.send(0, write10(0, 1), { dataOut: Buffer.alloc(512, 0xbb) });
    release();
    expect((await stuck.response).aborted).toBe(true);
    expect((await later.response).status).toBe(0);
    expect(store.data[0]).toBe(0xbb);
  });
});
