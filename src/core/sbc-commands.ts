// The SBC-3 command table: every block command the device server implements.
// The engine merges it with the SPC table; REPORT SUPPORTED OPERATION CODES
// is built from the same specs.

import type { CommandSpec } from './command.js';
import { atomicCommands } from './sbc-atomic.js';
import { capacityCommands } from './sbc-capacity.js';
import { compareAndWriteCommands } from './sbc-compare-write.js';
import { lbaStatusCommands } from './sbc-lba-status.js';
import { miscCommands } from './sbc-misc.js';
import { rwCommands } from './sbc-rw.js';
import { unmapCommands } from './sbc-unmap.js';
import { verifyCommands } from './sbc-verify.js';
import { writeSameCommands } from './sbc-write-same.js';

export const sbcCommands: CommandSpec[] = [
  ...capacityCommands,
  ...rwCommands,
  ...atomicCommands,
  ...verifyCommands,
  ...compareAndWriteCommands,
  ...writeSameCommands,
  ...unmapCommands,
  ...lbaStatusCommands,
  ...miscCommands,
];

export { sbcBlockLimits, type SbcBlockLimits } from './sbc-common.js';
export {
  ANCHOR_SUPPORTED,
  LOGICAL_BLOCKS_PER_PHYSICAL_EXPONENT,
  MAX_ATOMIC_TRANSFER_BYTES,
  MAX_COMPARE_AND_WRITE_BLOCKS,
  MAX_TRANSFER_BYTES,
  MAX_UNMAP_DESCRIPTORS,
  MAX_UNMAP_LBA_COUNT,
  MAX_WRITE_SAME_BYTES,
  OPTIMAL_TRANSFER_BYTES,
  WRITE_SAME_NON_ZERO,
} from './sbc-common.js';
export { mediumRemovalPrevented, clearMediumRemovalPrevention } from './sbc-misc.js';
