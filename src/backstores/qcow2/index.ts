// The qcow2 backstore engine (descriptor.ts, the registry line, is separate).
export { Qcow2Backstore, type Qcow2OpenOptions, type BackingLink } from './qcow2.js';
export { createQcow2, type Qcow2CreateOptions } from './create.js';
export { LiveQcow2, type LiveCommitResult } from './live.js';
