export * from './opcodes.js';
export * from './cdb.js';
