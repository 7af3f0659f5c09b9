// Local attach and mount (docs/fuse.md): the library behind `lunkit attach`,
// `detach`, `mount` and `umount`.
export { AttachError, requireRoot, type AttachErrorCode } from './errors.js';
export { parseSource, describeSource, defaultFileName, openSource, withIscsiOptions, type AttachSource, type IscsiSourceOptions } from './source.js';
export { attachDaemonLun, detachDaemonLun, daemonLunsDir, type DaemonLunOptions } from './daemon-lun.js';
export { redactIscsiUrl } from './redact.js';
export { planAttach, type HolderPlan } from './plan.js';
export { runHolder, type Holder } from './holder.js';
export { startDetached, findAttach, detach, holderMainPath, type DetachOptions } from './attach.js';
export { mountImage, umountImage, type MountOptions } from './mount.js';
export { runDir, listAttach, listMounts, loadMount, listHeldSessions, type AttachState, type MountState, type HeldSession, type InitiatorSessionInfo, type InitiatorConnectionInfo } from './state.js';
export type { MkfsType } from './system.js';
