// Shared checks for backstore geometry. A bad geometry is EINVAL, the code
// every backstore throws for a request it cannot take (docs/errors.md).

import { LunkitError } from '../protocols/errors.js';

/** Size must be a positive multiple of the block size. */
export function checkGeometry(size: number, blockSize: number): void {
  if (blockSize !== 512 && blockSize !== 4096) {
    throw new LunkitError('EINVAL', `block size must be 512 or 4096, got ${blockSize}`);
  }
  if (!Number.isSafeInteger(size) || size <= 0 || size % blockSize !== 0) {
    throw new LunkitError('EINVAL', `size ${size} must be a positive multiple of the block size ${blockSize}`);
  }
}
