// Public surface of the iSCSI initiator library (issue 7). Imports only
// src/protocols; the CLI and attach layers use it.
export * from './errors.js';
export * from './url.js';
export * from './fault.js';
export { IscsiConnection, type ConnectOptions } from './connection.js';
export { login, randomIsid, operationalKeys, DEFAULT_INITIATOR_KEYS, type LoginOptions, type LoginKeyOptions, type LoginResult } from './login.js';
export { IscsiSession, defaultInitiatorName, type SessionOptions, type AsyncEventInfo, type SessionEvents } from './session.js';
export { pickLeastLoaded, type ConnectionInfo, type ConnectionState, type SessionInfo } from './connection-pool.js';
export { type RecoveryEvent } from './recovery.js';
export { SeqTracker, type SnRun } from './snack.js';
export { ScsiStatus, type ScsiRequest, type ScsiResult, type WriteLimits } from './task.js';
export * from './sense.js';
export * from './scsi.js';
export * from './discovery.js';
export { openUrl, type OpenUrlOptions } from './open.js';
