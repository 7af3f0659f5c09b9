// Public surface of the NBD server fabric.
export { NbdServer, type DeleteExportOptions, type NbdExportConfig, type NbdListen, type NbdListenAddress, type NbdUnixAddress, type NbdLogger, type NbdServerOptions, type NbdServerStats, type NbdTlsOptions } from './server.js';
export type { NbdConnectionInfo, NbdLimitEvent } from './connection.js';
export { DEFAULT_NBD_LIMITS, nbdLimits, type NbdLimits } from './limits.js';
export { NBD_PROTOCOL_ID, type NbdCore } from './ports.js';
export { NBD_MAX_BLOCK, findExport, type ResolvedExport, type TransmissionMode, type NbdTlsMode } from './negotiation.js';
export { deriveTransmissionFlags, type TransmissionFlagOptions } from './transmission-flags.js';
