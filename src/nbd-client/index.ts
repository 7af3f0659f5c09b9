// lunkit's NBD client library (public API). A Node program can attach to any
// NBD server (nbdkit, qemu-nbd, nbd-server, lunkit) over TCP or a Unix
// socket:
//
//   import { NbdClient } from 'lunkit/nbd-client';
//   const c = await NbdClient.connect('nbd://127.0.0.1:10809/disk');
//   const data = await c.read(0, 4096);
//   await c.write(data, 4096, { fua: c.canFua });
//   await c.disconnect();
//
// Imports only src/protocols and src/util (dependency-cruiser rule
// nbd-client-protocols-only). docs/nbd-client.md documents the API and the
// error codes.

export { NbdClient } from './client.js';
export type {
  NbdClientOptions,
  NbdReconnectOptions,
  NbdBlockStatusExtent,
  NbdClientState,
  NbdClientEvents,
} from './client.js';
export { NbdMultiClient, NBD_MAX_CONNECTIONS } from './multi.js';
export type { NbdMultiClientOptions, NbdMultiClientEvents } from './multi.js';
export type { NbdExportInfo } from './negotiate.js';
export { NbdClientError, isNbdClientError, nbdErrnoToNodeCode } from './errors.js';
export type { NbdClientErrorCode } from './errors.js';
export { parseNbdUrl, formatNbdUrl } from './url.js';
export type { NbdAddress } from './url.js';
export type { ExportListEntry, BlockSizeConstraints } from '../protocols/nbd/handshake.js';
export { NbdTransmissionFlag, NbdErrno, NbdState, BASE_ALLOCATION } from '../protocols/nbd/constants.js';
