// Filters in front of the real core: injected errno values come out as the
// sense (SCSI door) and failure reasons (block door) the one errno map
// gives, and a readonly filter makes the LU write-protected.

import { describe, expect, it } from 'vitest';
import { ScsiCore } from '../../../src/core/engine.js';
import { reasonToErrno, Errno } from '../../../src/core/errno.js';
import type { BackstoreOps, NexusIdentity } from '../../../src/core/types.js';
import { LoopbackFabric, MutableLunMap, type LoopbackNexus } from '../../../src/fabrics/loopback/index.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';
import { applyFilters, filterOf, type FilterConfigInput } from '../../../src/backstores/filters/index.js';

const B = 512;

function read10(lba: number, blocks: number): number[] {
  return [0x28, 0, (lba >>> 24) & 0xff, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0];
}
function write10(lba: number, blocks: number): number[] {
  return [0x2a, 0, (lba >>> 24) & 0xff, (lba >> 16) & 0xff, (lba >> 8) & 0xff, lba & 0xff, 0, blocks >> 8, blocks & 0xff, 0];
}
const SYNC10 = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const MODE_SENSE6_ALL = [0x1a, 0, 0x3f, 0, 255, 0];

/** key/ASC/ASCQ of fixed or descriptor sense, read naively. */
function senseOf(sense: Buffer | undefined): string {
  if (!sense) return 'none';
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  if ((sense[0] & 0x7f) === 0x72) return `${hex(sense[1] & 0x0f)}/${hex(sense[2])}/${hex(sense[3])}`;
  return `${hex(sense[2] & 0x0f)}/${hex(sense[12])}/${hex(sense[13])}`;
}

async function setup(filters: FilterConfigInput[]): Promise<{ core: ScsiCore; top: BackstoreOps; nexus: LoopbackNexus; luns: MutableLunMap }> {
  const rd = new RamdiskBackstore({ name: 'rd', size: 1 << 20, blockSize: B });
  const top = applyFilters(rd, filters);
  const core = new ScsiCore();
  const fabric = new LoopbackFabric(core);
  const dev = core.createDevice(top, { name: 'rd' });
  const luns = new MutableLunMap().set(0, dev);
  const nexus = fabric.connect({ luns });
  for (let i = 0; i < 10; i++) if ((await nexus.command(0, [0, 0, 0, 0, 0, 0])).status === 0) break;
  return { core, top, nexus, luns };
}

/** "good" or the sense as key/asc/ascq. */
async function outcome(nexus: LoopbackNexus, cdb: number[], dataOut?: Buffer): Promise<string> {
  const r = await nexus.command(0, cdb, dataOut ? { dataOut } : {});
  return r.status === 0 ? 'good' : senseOf(r.sense);
}

describe('filters in front of the core', () => {
  it('error: MEDIUM ERROR / SPACE ALLOCATION FAILED / WRITE PROTECTED for injected operations, GOOD for the rest', async () => {
    const { top, nexus } = await setup([
      {
        type: 'error',
        rules: [
          { error: 'EIO', ops: ['read'], lba: { start: 100, count: 10 } },
          { error: 'EIO', ops: ['write'], lba: { start: 200, count: 1 } },
          { error: 'ENOSPC', ops: ['write'], lba: { start: 300, count: 1 } },
          { error: 'EROFS', ops: ['write'], lba: { start: 400, count: 1 } },
        ],
      },
    ]);
    const data = Buffer.alloc(B, 1);
    expect(await outcome(nexus, read10(99, 1))).toBe('good');
    expect(await outcome(nexus, read10(99, 2))).toBe('03/11/00');
    expect(await outcome(nexus, read10(110, 1))).toBe('good');
    expect(await outcome(nexus, write10(100, 1), data)).toBe('good');
    expect(await outcome(nexus, write10(200, 1), data)).toBe('03/0c/00');
    expect(await outcome(nexus, write10(300, 1), data)).toBe('07/27/07');
    expect(await outcome(nexus, write10(400, 1), data)).toBe('07/27/00');
    expect(await outcome(nexus, SYNC10)).toBe('good');

    // Disarmed at run time: everything is GOOD again.
    filterOf(top, 'error')!.enabled = false;
    expect(await outcome(nexus, read10(100, 1))).toBe('good');
    expect(await outcome(nexus, write10(300, 1), data)).toBe('good');
  });

  it('error: the block door gets the same reasons, and the errno map turns them back into EIO/ENOSPC/EROFS', async () => {
    const { core, top, luns } = await setup([{ type: 'error', enabled: false, rules: [] }]);
    const identity: NexusIdentity = {
      initiatorName: 'nbd:test',
      initiatorPortId: 'nbd:test,i,0x1',
      targetName: 'loop:target',
      targetPortId: 'loop:target,t,0x0001',
      relativeTargetPortId: 1,
      targetPortGroup: 0,
      protocolId: 0x0f,
      luns,
    };
    const bn = core.openBlockNexus(identity, { name: 'test' });
    // Like a client's first request: let the power-on unit attention go by.
    for (let i = 0; i < 3 && typeof (await bn.read(0, 0, B)) === 'string'; i++);
    const f = filterOf(top, 'error')!;
    f.enabled = true;
    const cases: Array<[string, 'read' | 'write', string, number]> = [
      ['EIO', 'read', 'MEDIUM_ERROR_READ', Errno.EIO],
      ['EIO', 'write', 'MEDIUM_ERROR_WRITE', Errno.EIO],
      ['ENOSPC', 'write', 'SPACE_ALLOCATION_FAILED', Errno.ENOSPC],
      ['EROFS', 'write', 'WRITE_PROTECTED', Errno.EROFS],
    ];
    for (const [error, op, reason, errno] of cases) {
      f.configure([{ error: error as 'EIO', ops: [op] }]);
      const got = op === 'read' ? await bn.read(0, 0, B) : await bn.write(0, 0, Buffer.alloc(B));
      expect(got).toBe(reason);
      expect(reasonToErrno(got as 'WRITE_PROTECTED', op === 'write')).toBe(errno);
    }
  });

  it('readonly: the LU is write-protected (MODE SENSE WP) and writes get DATA PROTECT / WRITE PROTECTED', async () => {
    const { nexus, top } = await setup([{ type: 'readonly' }]);
    const ms = await nexus.command(0, MODE_SENSE6_ALL);
    expect(ms.status).toBe(0);
    expect(ms.dataIn![2] & 0x80).toBe(0x80);
    expect(await outcome(nexus, write10(0, 1), Buffer.alloc(B, 1))).toBe('07/27/00');
    expect(await outcome(nexus, read10(0, 1))).toBe('good');
    expect(await outcome(nexus, SYNC10)).toBe('good');
    expect(top.caps.canWrite).toBe(false);
  });
});
