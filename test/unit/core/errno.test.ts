import { describe, expect, it } from 'vitest';
import { BackstoreIoError, Errno, errnoToSense, reasonForSense, reasonToErrno, type BlockFailure } from '../../../src/core/errno.js';
import { allSenseReasons, SenseKey, SenseReasons } from '../../../src/core/sense-reasons.js';
import { NbdErrno, nbdErrnoOf } from '../../../src/protocols/nbd/constants.js';

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

  it('keeps the reason an error already names', () => {
    expect(errnoToSense(new BackstoreIoError('EIO', 'remote', 'NOT_READY_BECOMING_READY'), 'read')).toBe('NOT_READY_BECOMING_READY');
  });

  it('every reason it returns exists in the sense table with the SPC-4 codes', () => {
    expect(SenseReasons.SPACE_ALLOCATION_FAILED).toEqual({ key: 0x7, asc: 0x27, ascq: 0x07 });
    expect(SenseReasons.WRITE_PROTECTED).toEqual({ key: 0x7, asc: 0x27, ascq: 0x00 });
    expect(SenseReasons.MEDIUM_ERROR_READ).toEqual({ key: 0x3, asc: 0x11, ascq: 0x00 });
  });
});

describe('reasonToErrno', () => {
  it('gives an errno for every entry of the table, in the family of its sense key', () => {
    for (const r of allSenseReasons) {
      const w = reasonToErrno(r, true);
      const rd = reasonToErrno(r, false);
      const key = SenseReasons[r].key;
      if (key === SenseKey.DATA_PROTECT) expect([Errno.EROFS, Errno.ENOSPC], r).toContain(w);
      else if (key === SenseKey.ILLEGAL_REQUEST) expect([Errno.EINVAL, Errno.ENOSPC], r).toContain(w);
      else expect(w, r).toBe(Errno.EIO);
      expect(rd, r).toBeGreaterThan(0);
    }
  });

  it('names the errnos block fabrics rely on', () => {
    const cases: Array<[BlockFailure, boolean, number]> = [
      ['WRITE_PROTECTED', true, Errno.EROFS],
      ['SPACE_ALLOCATION_FAILED', true, Errno.ENOSPC],
      ['LBA_OUT_OF_RANGE', true, Errno.ENOSPC],
      ['LBA_OUT_OF_RANGE', false, Errno.EINVAL],
      ['INVALID_FIELD_IN_CDB', false, Errno.EINVAL],
      ['MEDIUM_ERROR_READ', false, Errno.EIO],
      ['MEDIUM_NOT_PRESENT', false, Errno.EIO],
      ['RESERVATION_CONFLICT', true, Errno.EACCES],
      ['BUSY', false, Errno.EAGAIN],
      ['TASK_SET_FULL', false, Errno.EAGAIN],
      ['ABORTED', false, Errno.EIO],
    ];
    for (const [f, w, errno] of cases) expect(reasonToErrno(f, w), f).toBe(errno);
  });

  it('narrows to the NBD wire set', () => {
    expect(nbdErrnoOf(reasonToErrno('WRITE_PROTECTED', true))).toBe(NbdErrno.EPERM);
    expect(nbdErrnoOf(reasonToErrno('RESERVATION_CONFLICT', true))).toBe(NbdErrno.EPERM);
    expect(nbdErrnoOf(reasonToErrno('SPACE_ALLOCATION_FAILED', true))).toBe(NbdErrno.ENOSPC);
    expect(nbdErrnoOf(reasonToErrno('BUSY', true))).toBe(NbdErrno.EIO);
    expect(nbdErrnoOf(Errno.EOPNOTSUPP)).toBe(NbdErrno.ENOTSUP);
    expect(nbdErrnoOf(0)).toBe(0);
  });
});

describe('reasonForSense', () => {
  it('finds every entry of the table from its own codes', () => {
    for (const r of allSenseReasons) {
      const d = SenseReasons[r];
      const back = reasonForSense(d.key, d.asc, d.ascq, 'read');
      expect(SenseReasons[back], r).toEqual(d);
    }
  });

  it('falls back by sense key for codes we do not list', () => {
    expect(reasonForSense(0x3, 0x31, 0x00, 'read')).toBe('MEDIUM_ERROR_READ');
    expect(reasonForSense(0x3, 0x31, 0x00, 'write')).toBe('MEDIUM_ERROR_WRITE');
    expect(reasonForSense(0x7, 0x27, 0x05, 'write')).toBe('WRITE_PROTECTED');
    expect(reasonForSense(0x5, 0x99, 0x00, 'read')).toBe('INVALID_FIELD_IN_CDB');
    expect(reasonForSense(0x2, 0x04, 0x0a, 'read')).toBe('NOT_READY_CAUSE_NOT_REPORTABLE');
  });
});
