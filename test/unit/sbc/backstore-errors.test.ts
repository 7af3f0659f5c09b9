import { describe, expect, it } from 'vitest';
import { errnoToNbd, errnoToSense } from '../../../src/core/backstore-errors.js';
import { SenseReasons } from '../../../src/core/sense-reasons.js';

const e = (code: string): Error => Object.assign(new Error(code), { code });

describe('errnoToSense', () => {
  it('maps each errno class to its reason', () => {
    expect(errnoToSense(e('EIO'), 'read')).toBe('MEDIUM_ERROR_READ');
    expect(errnoToSense(e('EIO'), 'write')).toBe('MEDIUM_ERROR_WRITE');
    expect(errnoToSense(e('EIO'), 'flush')).toBe('MEDIUM_ERROR_WRITE');
    expect(errnoToSense(e('ENOSPC'), 'write')).toBe('SPACE_ALLOCATION_FAILED');
    expect(errnoToSense(e('EDQUOT'), 'unmap')).toBe('SPACE_ALLOCATION_FAILED');
    for (const c of ['EROFS', 'EPERM', 'EACCES']) expect(errnoToSense(e(c), 'write')).toBe('WRITE_PROTECTED');
    expect(errnoToSense(e('EBADF'), 'read')).toBe('INTERNAL_TARGET_FAILURE');
    expect(errnoToSense(new Error('no code'), 'read')).toBe('INTERNAL_TARGET_FAILURE');
    expect(errnoToSense('string', 'read')).toBe('INTERNAL_TARGET_FAILURE');
  });

  it('every reason it returns exists in the sense table with the SPC-4 codes', () => {
    expect(SenseReasons.SPACE_ALLOCATION_FAILED).toEqual({ key: 0x7, asc: 0x27, ascq: 0x07 });
    expect(SenseReasons.WRITE_PROTECTED).toEqual({ key: 0x7, asc: 0x27, ascq: 0x00 });
    expect(SenseReasons.MEDIUM_ERROR_READ).toEqual({ key: 0x3, asc: 0x11, ascq: 0x00 });
  });

  it('errnoToNbd gives the protocol errnos', () => {
    expect(errnoToNbd(e('ENOSPC'))).toBe(28);
    expect(errnoToNbd(e('EROFS'))).toBe(1);
    expect(errnoToNbd(e('EOPNOTSUPP'))).toBe(95);
    expect(errnoToNbd(e('EWHATEVER'))).toBe(5);
  });
});
