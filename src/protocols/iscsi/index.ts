// Public surface of the iSCSI wire layer, shared by target and initiator.
export * from '../errors.js';
export * from './pdu-types.js';
export * from './constants.js';
export * from './seq.js';
export * from './lun.js';
export * from './crc32c.js';
export * from './pdu.js';
export * from './framer.js';
export * from './writer.js';
export * from './text.js';
export * from './keys.js';
export * from './chap.js';
