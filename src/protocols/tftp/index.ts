// Public surface of the TFTP wire layer (RFC 1350, 2347, 2348, 2349, 7440),
// shared by the boot-lab server and the test clients.
export * from './constants.js';
export * from './codec.js';
export * from './options.js';
