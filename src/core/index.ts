// Public surface of the SCSI core.
export * from './types.js';
export type {
  CommandContext,
  CommandHandler,
  CommandOutcome,
  CommandSpec,
  DeviceView,
  FieldPointer,
  ReservationHooks,
} from './command.js';
export { ScsiCore, spcCommands, type CoreOptions, type DeviceOptions, type PrepareResult } from './engine.js';
export { ScsiDevice, scsiDeviceOf, type CoreInfo, type ModeState } from './device.js';
export { SenseReasons, SenseKey, allSenseReasons, senseDetail, isUnitAttention, type SenseDetail } from './sense-reasons.js';
export { buildSense, buildFixedSense, buildDescriptorSense, parseSense, FIXED_SENSE_LENGTH, type ParsedSense, type SenseOptions } from './sense.js';
export { UnitAttentionQueue, DeviceUnitAttentions } from './ua.js';
export { Task, TaskSet } from './task-set.js';
export * from './stats.js';
export { SUPPORTED_VPD_PAGES } from './spc-vpd.js';
export { SUPPORTED_MODE_PAGES } from './spc-mode.js';
export { STANDARD_INQUIRY_LENGTH } from './spc-inquiry.js';
export { MAX_TRANSFER_BYTES } from './sbc-common.js';
export { Errno, errnoName, errnoToSense, reasonToErrno, reasonForSense, BackstoreIoError, type BlockFailure, type BackstoreOp } from './errno.js';
export { BlockNexus, EXTENTS_WINDOW_BYTES, type BlockGeometry, type ZeroOptions } from './block-nexus.js';
