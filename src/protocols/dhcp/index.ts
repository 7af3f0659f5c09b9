// Public surface of the DHCP wire layer (boot lab proxy DHCP, test clients).
export * from './options.js';
export * from './packet.js';
