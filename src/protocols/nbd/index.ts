// Public surface of the NBD wire layer, shared by server and client.
export * from '../errors.js';
export * from './constants.js';
export * from './handshake.js';
export * from './transmission.js';
export * from './framers.js';
export { NbdReader, encodeString } from './cursor.js';
