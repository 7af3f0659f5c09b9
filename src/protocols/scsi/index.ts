export * from './opcodes.js';
export * from './cdb.js';
export * from './block-cdbs.js';
export * from './status.js';
