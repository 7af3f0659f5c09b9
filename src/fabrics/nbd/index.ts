// Public surface of the NBD server fabric.
export { NbdServer, type DeleteExportOptions, type NbdExportConfig, type NbdListen, type NbdListenAddress, type NbdUnixAddress, type NbdLogger, type NbdServerOptions, type NbdTlsOptions } from './server.js';
export type { NbdConnectionInfo } from './connection.js';
export { NBD_PROTOCOL_ID, type NbdCore } from './ports.js';
export { NBD_MAX_BLOCK, findExport, type ResolvedExport, type TransmissionMode, type NbdTlsMode } from './negotiation.js';
export { deriveTransmissionFlags, type TransmissionFlagOptions } from './transmission-flags.js';
