// What the initiator tests import: the library's public surface and the PDU opcodes.
export * from '../../../src/initiator/index.js';
export { Opcode } from '../../../src/protocols/iscsi/pdu-types.js';
