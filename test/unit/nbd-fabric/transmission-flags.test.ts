import { describe, expect, it } from 'vitest';
import type { BackstoreCaps, BlockGeometry } from '../../../src/core/index.js';
import { findExport } from '../../../src/fabrics/nbd/negotiation.js';
import { deriveTransmissionFlags } from '../../../src/fabrics/nbd/transmission-flags.js';

const caps: BackstoreCaps = {
  canWrite: true,
  canFlush: true,
  canFua: true,
  canUnmap: false,
  canWriteZeroes: false,
  canExtents: false,
  unmapReadsZero: false,
  thin: false,
  rotationRate: 1,
  canMultiConn: true,
};

describe('deriveTransmissionFlags', () => {
  const thick: BlockGeometry = {
    blockSize: 512,
    size: 1 << 20,
    caps,
    thin: false,
    unmapReadsZero: false,
    writeProtected: false,
    writeCache: true,
    maxTransferBytes: 32 << 20,
  };
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
  it('FLUSH, FUA and CAN_MULTI_CONN follow the caps', () => {
    const plain = { ...thick, caps: { ...caps, canFlush: false, canFua: false, canMultiConn: false } };
    expect(deriveTransmissionFlags(plain, false)).toBe(0x1 | 0x40 | 0x400 | 0x800);
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
