import { describe, expect, it } from 'vitest';
import {
  deriveTransmissionFlags,
  parseReadCapacity16,
  rw16,
  senseToErrno,
  unmap,
  writeSame16,
  type ExportGeometry,
} from '../../../src/fabrics/nbd/commands.js';
import { findExport } from '../../../src/fabrics/nbd/negotiation.js';

/** Fixed-format sense (SPC-4 §4.5.3): 0x70, key at byte 2, ASC/ASCQ at 12/13. */
function fixed(key: number, asc: number, ascq: number): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x70;
  b[2] = key;
  b[7] = 10;
  b[12] = asc;
  b[13] = ascq;
  return b;
}

/** Descriptor-format sense (SPC-4 §4.5.2): 0x72, key/ASC/ASCQ at 1/2/3. */
function descriptor(key: number, asc: number, ascq: number): Buffer {
  return Buffer.from([0x72, key, asc, ascq, 0, 0, 0, 0]);
}

describe('senseToErrno', () => {
  // Wire errno values from proto.md: EPERM 1, EIO 5, EINVAL 22, ENOSPC 28.
  const cases: Array<[string, Buffer, boolean, number]> = [
    ['LBA OUT OF RANGE on a read -> EINVAL', fixed(0x5, 0x21, 0x00), false, 22],
    ['LBA OUT OF RANGE on a write -> ENOSPC', fixed(0x5, 0x21, 0x00), true, 28],
    ['INVALID FIELD IN CDB -> EINVAL', fixed(0x5, 0x24, 0x00), true, 22],
    ['WRITE PROTECTED -> EPERM', fixed(0x7, 0x27, 0x00), true, 1],
    ['SPACE ALLOCATION FAILED WRITE PROTECT -> ENOSPC', fixed(0x7, 0x27, 0x07), true, 28],
    ['MEDIUM ERROR unrecovered read -> EIO', fixed(0x3, 0x11, 0x00), false, 5],
    ['HARDWARE ERROR -> EIO', fixed(0x4, 0x44, 0x00), true, 5],
    ['descriptor WRITE PROTECTED -> EPERM', descriptor(0x7, 0x27, 0x00), true, 1],
    ['descriptor LBA OUT OF RANGE write -> ENOSPC', descriptor(0x5, 0x21, 0x00), true, 28],
    ['descriptor MEDIUM ERROR -> EIO', descriptor(0x3, 0x0c, 0x00), true, 5],
    ['ABORTED COMMAND -> EIO', fixed(0xb, 0x47, 0x00), false, 5],
  ];
  for (const [name, sense, isWrite, errno] of cases) {
    it(name, () => expect(senseToErrno(sense, isWrite)).toBe(errno));
  }
  it('missing or garbage sense -> EIO', () => {
    expect(senseToErrno(undefined, false)).toBe(5);
    expect(senseToErrno(Buffer.from([0x00, 0x05, 0x21]), true)).toBe(5);
  });
});

describe('deriveTransmissionFlags', () => {
  const thick: ExportGeometry = { blockSize: 512, size: 1n << 20n, thin: false, unmapReadsZero: false, writeProtected: false };
  // HAS_FLAGS 0x1, READ_ONLY 0x2, SEND_FLUSH 0x4, SEND_FUA 0x8, SEND_TRIM 0x20, SEND_WRITE_ZEROES 0x40,
  // SEND_DF 0x80, CAN_MULTI_CONN 0x100, SEND_CACHE 0x400, SEND_FAST_ZERO 0x800.
  it('a writable thick LU: flush, FUA, multi-conn, cache, write zeroes and fast zero, no trim', () => {
    expect(deriveTransmissionFlags(thick, false)).toBe(0x1 | 0x4 | 0x8 | 0x40 | 0x100 | 0x400 | 0x800);
  });
  it('a writable thin LU adds trim', () => {
    expect(deriveTransmissionFlags({ ...thick, thin: true }, false)).toBe(0x1 | 0x4 | 0x8 | 0x20 | 0x40 | 0x100 | 0x400 | 0x800);
  });
  it('a read-only export offers no write-side commands', () => {
    expect(deriveTransmissionFlags({ ...thick, thin: true }, true)).toBe(0x1 | 0x2 | 0x4 | 0x100 | 0x400);
  });
  it('a write-protected LU is read-only even on a writable export', () => {
    expect(deriveTransmissionFlags({ ...thick, writeProtected: true }, false)).toBe(0x1 | 0x2 | 0x4 | 0x100 | 0x400);
  });
  it('SEND_DF only when structured replies were negotiated', () => {
    expect(deriveTransmissionFlags(thick, true, { structuredReplies: false }) & 0x80).toBe(0);
    expect(deriveTransmissionFlags(thick, true, { structuredReplies: true })).toBe(0x1 | 0x2 | 0x4 | 0x80 | 0x100 | 0x400);
  });
});

describe('CDB builders', () => {
  it('READ(16) and WRITE(16) with FUA', () => {
    expect(rw16(false, 0x0102030405060708n, 0x10, false).toString('hex')).toBe('88000102030405060708000000100000');
    expect(rw16(true, 8n, 1, true).toString('hex')).toBe('8a080000000000000008000000010000');
  });
  it('WRITE SAME(16) with NDOB, with and without UNMAP', () => {
    expect(writeSame16(2n, 3, true, true).toString('hex')).toBe('93090000000000000002000000030000');
    expect(writeSame16(2n, 3, false, true).toString('hex')).toBe('93010000000000000002000000030000');
  });
  it('UNMAP splits at 0x100000 blocks per descriptor', () => {
    const { cdb, param } = unmap(16n, 0x100001);
    expect(cdb.toString('hex')).toBe('42000000000000002800');
    expect(param.toString('hex')).toBe(
      '0026' + '0020' + '00000000' +
        '0000000000000010' + '00100000' + '00000000' +
        '0000000000100010' + '00000001' + '00000000',
    );
  });
  it('READ CAPACITY(16) data: last LBA + 1 blocks, block size, LBPME/LBPRZ', () => {
    const d = Buffer.from('00000000000003ff' + '00001000' + '00' + '00' + 'c000' + '00'.repeat(16), 'hex');
    expect(parseReadCapacity16(d)).toEqual({ blocks: 1024n, blockSize: 4096, thin: true, unmapReadsZero: true });
  });
});

describe('findExport', () => {
  const one = [{ name: 'a', readOnly: false, description: '' }];
  const two = [...one, { name: 'b', readOnly: true, description: '' }];
  it('matches names exactly', () => {
    expect(findExport(two, 'b')?.name).toBe('b');
    expect(findExport(two, 'c')).toBeUndefined();
  });
  it('"" is the only export when there is one, nothing otherwise', () => {
    expect(findExport(one, '')?.name).toBe('a');
    expect(findExport(two, '')).toBeUndefined();
  });
});
