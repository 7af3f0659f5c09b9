import { describe, expect, it } from 'vitest';
import { Errno, isCapacityChanged, isRetryable, outcomeToErrno, parseCapacity, rw16, synchronizeCache16 } from '../../../src/fabrics/fuse/scsi.js';
import type { ScsiResponse } from '../../../src/core/types.js';

// Hand-written fixed-format sense (SPC-4 §4.5.3): byte 2 key, 12 ASC, 13 ASCQ.
function fixed(key: number, asc: number, ascq: number): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70;
  b[2] = key;
  b[7] = 10;
  b[12] = asc;
  b[13] = ascq;
  return b;
}
// Descriptor format (SPC-4 §4.5.2): byte 1 key, 2 ASC, 3 ASCQ.
function desc(key: number, asc: number, ascq: number): Buffer {
  return Buffer.from([0x72, key, asc, ascq, 0, 0, 0, 0]);
}
const cc = (sense: Buffer): ScsiResponse => ({ status: 0x02, sense, residualKind: 'none', residualCount: 0 });
const st = (status: 0x00 | 0x08 | 0x18 | 0x28): ScsiResponse => ({ status, residualKind: 'none', residualCount: 0 });

describe('outcomeToErrno', () => {
  const table: Array<[string, ScsiResponse, boolean, number]> = [
    ['GOOD', st(0x00), false, 0],
    ['RESERVATION CONFLICT', st(0x18), true, Errno.EACCES],
    ['BUSY', st(0x08), false, Errno.EAGAIN],
    ['TASK SET FULL', st(0x28), false, Errno.EAGAIN],
    ['WRITE PROTECTED 07/27/00', cc(fixed(0x7, 0x27, 0x00)), true, Errno.EROFS],
    ['WRITE PROTECTED descriptor', cc(desc(0x7, 0x27, 0x00)), true, Errno.EROFS],
    ['SPACE ALLOCATION FAILED 07/27/07', cc(fixed(0x7, 0x27, 0x07)), true, Errno.ENOSPC],
    ['LBA OUT OF RANGE on write', cc(fixed(0x5, 0x21, 0x00)), true, Errno.ENOSPC],
    ['LBA OUT OF RANGE on read', cc(fixed(0x5, 0x21, 0x00)), false, Errno.EINVAL],
    ['INVALID FIELD IN CDB', cc(fixed(0x5, 0x24, 0x00)), false, Errno.EINVAL],
    ['MEDIUM ERROR read', cc(fixed(0x3, 0x11, 0x00)), false, Errno.EIO],
    ['HARDWARE ERROR', cc(fixed(0x4, 0x44, 0x00)), false, Errno.EIO],
    ['NOT READY', cc(fixed(0x2, 0x3a, 0x00)), false, Errno.EIO],
    ['ABORTED COMMAND', cc(fixed(0xb, 0x00, 0x00)), false, Errno.EIO],
    ['unreadable sense', cc(Buffer.from([0x00, 0x01])), false, Errno.EIO],
  ];
  for (const [name, res, write, errno] of table) {
    it(`${name} -> ${errno}`, () => expect(outcomeToErrno(res, write)).toBe(errno));
  }
  it('an aborted task is EIO', () => expect(outcomeToErrno({ ...st(0x00), aborted: true }, false)).toBe(Errno.EIO));
});

describe('retry classification', () => {
  it('unit attentions and BUSY are retried, other errors not', () => {
    expect(isRetryable(cc(fixed(0x6, 0x29, 0x00)))).toBe(true);
    expect(isRetryable(st(0x08))).toBe(true);
    expect(isRetryable(cc(fixed(0x3, 0x11, 0x00)))).toBe(false);
    expect(isRetryable(st(0x18))).toBe(false);
  });
  it('CAPACITY DATA HAS CHANGED is recognised', () => {
    expect(isCapacityChanged(cc(fixed(0x6, 0x2a, 0x09)))).toBe(true);
    expect(isCapacityChanged(cc(fixed(0x6, 0x29, 0x00)))).toBe(false);
  });
});

describe('CDBs', () => {
  it('READ(16) and WRITE(16) match hand-written bytes', () => {
    expect(rw16(false, 0x0102030405, 0x100)).toEqual(Buffer.from([0x88, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05, 0, 0, 0x01, 0x00, 0, 0]));
    expect(rw16(true, 8, 1)).toEqual(Buffer.from([0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0]));
  });
  it('SYNCHRONIZE CACHE(16) covers the whole LU', () => {
    expect(synchronizeCache16()).toEqual(Buffer.from([0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  });
  it('READ CAPACITY(16) data gives size and block size', () => {
    const d = Buffer.from([0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x02, 0, 0, 0, 0, 0, ...new Array(16).fill(0)]);
    expect(parseCapacity(d)).toEqual({ size: 512 * 512, blockSize: 512 });
  });
});
