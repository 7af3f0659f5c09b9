// Shared checks for backstore geometry.

/** Size must be a positive multiple of the block size. */
export function checkGeometry(size: number, blockSize: number): void {
  if (blockSize !== 512 && blockSize !== 4096) {
    throw new RangeError(`block size must be 512 or 4096, got ${blockSize}`);
  }
  if (!Number.isSafeInteger(size) || size <= 0 || size % blockSize !== 0) {
    throw new RangeError(`size ${size} must be a positive multiple of the block size ${blockSize}`);
  }
}
