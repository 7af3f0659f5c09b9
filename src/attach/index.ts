// Local attach and mount (docs/fuse.md): the library behind `lunkit attach`,
// `detach`, `mount` and `umount`.
export { AttachError, requireRoot, type AttachErrorCode } from './errors.js';
export { parseSource, describeSource, defaultFileName, openSource, type AttachSource } from './source.js';
export { planAttach, type HolderPlan } from './plan.js';
export { runHolder, type Holder } from './holder.js';
export { startDetached, findAttach, detach, holderMainPath, type DetachOptions } from './attach.js';
export { mountImage, umountImage, type MountOptions } from './mount.js';
export { runDir, listAttach, listMounts, loadMount, type AttachState, type MountState } from './state.js';
export type { MkfsType } from './system.js';
