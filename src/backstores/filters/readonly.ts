// The readonly filter: the inner store becomes a write-protected medium
// (nbdkit-readonly-filter; LIO's write_protect at the backstore). caps say
// canWrite=false, from which the core derives the LU's write protection
// (MODE SENSE WP, NBD_FLAG_READ_ONLY); any write, trim or zeroes that still
// reaches the filter fails with EROFS, which the core reports as DATA
// PROTECT / WRITE PROTECTED (07/27/00).

import type { BackstoreCaps } from '../../core/types.js';
import { BackstoreIoError } from '../../core/errno.js';
import { BackstoreFilter, type FilterOpKind } from './filter.js';
import type { FilterConfigInput } from './schema.js';

export class ReadonlyFilter extends BackstoreFilter {
  readonly type = 'readonly';

  toConfig(): FilterConfigInput {
    return { type: 'readonly' };
  }

  /** Nothing that changes the medium; flush, extents and the description of the medium stay. */
  protected override narrowCaps(caps: BackstoreCaps): BackstoreCaps {
    return { ...caps, canWrite: false, canFua: false, canUnmap: false, canWriteZeroes: false };
  }

  protected override gate(kind: FilterOpKind, offset: number, length: number): undefined {
    if (kind === 'write' || kind === 'trim' || kind === 'zeroes') {
      throw new BackstoreIoError('EROFS', `${this.name}: ${kind} [${offset}, +${length}) refused: write-protected (readonly filter)`, 'WRITE_PROTECTED');
    }
    return undefined;
  }
}
