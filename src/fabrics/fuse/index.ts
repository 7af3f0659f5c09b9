// Public surface of the FUSE fabric (docs/fuse.md).
export { FuseFabric, DEFAULT_MAX_WRITE, type FuseFabricOptions } from './fabric.js';
export { FuseVolume, FUSE_PROTOCOL_ID, validateExportName, type ExportInfo, type ExportOptions, type FuseCore, type FuseBlockDoor, type FuseStats } from './volume.js';
export { prepareMountpoint, forceUnmount, mountsAt, parseMountInfo, isFuseType, loopDevicesUnder, type LoopDevice, type MountInfoEntry, type PrepareResult } from './mountpoint.js';
export { Errno } from '../../core/index.js';
