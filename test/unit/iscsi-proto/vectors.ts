// Hand-written golden PDUs (RFC 7143 §11). Each header is typed out as hex,
// one 4-byte word per group, so the bytes are checked against the RFC figures
// and never derived from the production encoder.

import type { EncodablePdu } from '../../../src/protocols/iscsi/pdu.js';

/** Naive hex-to-bytes: whitespace and '|' separators ignored. */
export function hex(s: string): Buffer {
  const clean = s.replace(/[\s|]+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${s}`);
  return Buffer.from(clean, 'hex');
}

export interface Vector {
  name: string;
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
  /** Fields the decoded PDU must have (also the encoder's input). */
  pdu: EncodablePdu;
}

const Z8 = '00000000 00000000';
const Z12 = '00000000 00000000 00000000';
const Z16 = '00000000 00000000 00000000 00000000';

const SENSE = hex('0012 70000500 0000000a 00000000 24000000 0000');
const NOP_OUT_BHS = hex(`40800000 00000004 ${Z8} 12345678 ffffffff 00000009 0000000a ${Z16}`);

export const VECTORS: Vector[] = [
  {
    name: 'NOP-Out',
    bhs: NOP_OUT_BHS,
    ahs: Buffer.alloc(0),
    data: Buffer.from('ping'),
    pdu: { opcode: 0x00, immediate: true, final: true, lun: 0, itt: 0x12345678, targetTransferTag: 0xffffffff, cmdSN: 9, expStatSN: 10, data: Buffer.from('ping') },
  },
  {
    name: 'SCSI Command (WRITE(10), immediate data)',
    bhs: hex(`01a20000 00000200 00050000 00000000 0000002a 00000200 00000007 00000005 2a000000 00100000 01000000 00000000`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(512, 0xa5),
    pdu: {
      opcode: 0x01, immediate: false, final: true, read: false, write: true, attr: 2, lun: 5, itt: 42,
      expectedDataTransferLength: 512, cmdSN: 7, expStatSN: 5,
      cdb: hex('2a000000 00100000 01000000 00000000'), data: Buffer.alloc(512, 0xa5),
    },
  },
  {
    name: 'SCSI Command (32-byte CDB, Extended CDB and Bidi AHS)',
    // TotalAHSLength 7 words: Extended CDB AHS (AHSLength 0x0011, type 1,
    // reserved, 16 CDB bytes) + Bidirectional Read AHS (0x0005, type 2, reserved, length).
    bhs: hex(`01e10000 07000000 ${Z8} 00000001 00001000 00000001 00000000 7f000000 00000018 90000000 00000000`),
    ahs: hex('00110100 00112233 44556677 8899aabb ccddeeff 00050200 00000800'),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x01, immediate: false, final: true, read: true, write: true, attr: 1, lun: 0, itt: 1,
      expectedDataTransferLength: 0x1000, cmdSN: 1, expStatSN: 0,
      cdb: hex('7f000000 00000018 90000000 00000000 00112233 44556677 8899aabb ccddeeff'),
      bidiReadLength: 0x800,
    },
  },
  {
    name: 'Task Management Request (ABORT TASK)',
    bhs: hex(`42810000 00000000 00010000 00000000 00000063 0000002a 00000008 00000006 00000007 00000003 ${Z8}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x02, immediate: true, final: true, function: 1, lun: 1, itt: 0x63, referencedTaskTag: 42,
      cmdSN: 8, expStatSN: 6, refCmdSN: 7, expDataSN: 3,
    },
  },
  {
    name: 'Login Request (operational -> full feature, T=1)',
    bhs: hex(`43870000 00000010 80123456 789a0000 00000001 00020000 0000000b 0000000c ${Z16}`),
    ahs: Buffer.alloc(0),
    data: Buffer.from('HeaderDigest=No\0'),
    pdu: {
      opcode: 0x03, immediate: true, final: true, transit: true, continue: false, csg: 1, nsg: 3, versionMax: 0, versionMin: 0,
      isid: 0x80123456789a, tsih: 0, itt: 1, cid: 2, cmdSN: 11, expStatSN: 12, data: Buffer.from('HeaderDigest=No\0'),
    },
  },
  {
    name: 'Login Request (security, C=1, TSIH set)',
    bhs: hex(`43410201 00000000 00023d00 00000005 00000002 00010000 00000001 00000000 ${Z16}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x03, immediate: true, final: false, transit: false, continue: true, csg: 0, nsg: 1, versionMax: 2, versionMin: 1,
      isid: 0x00023d000000, tsih: 5, itt: 2, cid: 1, cmdSN: 1, expStatSN: 0,
    },
  },
  {
    name: 'Text Request (C=1, not final)',
    bhs: hex(`04400000 00000000 ${Z8} 00000005 ffffffff 0000000d 0000000e ${Z16}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: { opcode: 0x04, immediate: false, final: false, continue: true, lun: 0, itt: 5, targetTransferTag: 0xffffffff, cmdSN: 13, expStatSN: 14 },
  },
  {
    name: 'SCSI Data-Out',
    bhs: hex(`05800000 00000008 00020000 00000000 0000002a 00001001 00000000 00000006 00000000 00000003 00002000 00000000`),
    ahs: Buffer.alloc(0),
    data: hex('01020304 05060708'),
    pdu: {
      opcode: 0x05, immediate: false, final: true, lun: 2, itt: 42, targetTransferTag: 0x1001, expStatSN: 6, dataSN: 3,
      bufferOffset: 0x2000, data: hex('01020304 05060708'),
    },
  },
  {
    name: 'Logout Request (close connection)',
    bhs: hex(`46810000 00000000 ${Z8} 00000077 00030000 00000010 00000011 ${Z16}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: { opcode: 0x06, immediate: true, final: true, reasonCode: 1, itt: 0x77, cid: 3, cmdSN: 16, expStatSN: 17 },
  },
  {
    name: 'SNACK Request (status)',
    bhs: hex(`10810000 00000000 ${Z8} 0000002a ffffffff 00000000 00000012 ${Z8} 00000004 00000002`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x10, immediate: false, final: true, type: 1, lun: 0, itt: 42, targetTransferTag: 0xffffffff, expStatSN: 18,
      begRun: 4, runLength: 2,
    },
  },
  {
    name: 'NOP-In (target ping)',
    bhs: hex(`20800000 00000000 ${Z8} ffffffff 00000044 00000021 00000022 00000041 ${Z12}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: { opcode: 0x20, immediate: false, final: true, lun: 0, itt: 0xffffffff, targetTransferTag: 0x44, statSN: 0x21, expCmdSN: 0x22, maxCmdSN: 0x41 },
  },
  {
    name: 'SCSI Response (CHECK CONDITION, underflow, sense)',
    bhs: hex(`21820002 00000014 ${Z8} 0000002a 00000000 00000021 00000022 00000041 00000000 00000000 00000200`),
    ahs: Buffer.alloc(0),
    data: SENSE,
    pdu: {
      opcode: 0x21, immediate: false, final: true, bidiOverflow: false, bidiUnderflow: false, overflow: false, underflow: true,
      response: 0, status: 2, itt: 42, snackTag: 0, statSN: 0x21, expCmdSN: 0x22, maxCmdSN: 0x41, expDataSN: 0,
      bidiReadResidualCount: 0, residualCount: 512, data: SENSE,
    },
  },
  {
    name: 'SCSI Response (bidi overflow + underflow bits)',
    bhs: hex(`219c0100 00000000 ${Z8} 00000003 00000007 00000001 00000002 00000003 00000004 00000005 00000006`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x21, immediate: false, final: true, bidiOverflow: true, bidiUnderflow: true, overflow: true, underflow: false,
      response: 1, status: 0, itt: 3, snackTag: 7, statSN: 1, expCmdSN: 2, maxCmdSN: 3, expDataSN: 4,
      bidiReadResidualCount: 5, residualCount: 6,
    },
  },
  {
    name: 'Task Management Response',
    bhs: hex(`22800500 00000000 ${Z8} 00000063 00000000 00000022 00000023 00000042 ${Z12}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: { opcode: 0x22, immediate: false, final: true, response: 5, itt: 0x63, statSN: 0x22, expCmdSN: 0x23, maxCmdSN: 0x42 },
  },
  {
    name: 'Login Response (authentication failure)',
    bhs: hex(`23870000 00000000 80123456 789a0007 00000001 00000000 00000030 0000000b 0000002a 02010000 ${Z8}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x23, immediate: false, final: true, transit: true, continue: false, csg: 1, nsg: 3, versionMax: 0, versionActive: 0,
      isid: 0x80123456789a, tsih: 7, itt: 1, statSN: 0x30, expCmdSN: 11, maxCmdSN: 42, statusClass: 2, statusDetail: 1,
    },
  },
  {
    name: 'Text Response',
    bhs: hex(`24800000 00000000 ${Z8} 00000005 ffffffff 00000031 0000000e 0000002d ${Z12}`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x24, immediate: false, final: true, continue: false, lun: 0, itt: 5, targetTransferTag: 0xffffffff,
      statSN: 0x31, expCmdSN: 14, maxCmdSN: 45,
    },
  },
  {
    name: 'SCSI Data-In (final, status, underflow)',
    bhs: hex(`25830000 00000006 00030000 00000000 0000002a ffffffff 00000032 0000000f 0000002e 00000001 00001000 00000004`),
    ahs: Buffer.alloc(0),
    data: hex('deadbeef cafe'),
    pdu: {
      opcode: 0x25, immediate: false, final: true, acknowledge: false, overflow: false, underflow: true, statusPresent: true, status: 0,
      lun: 3, itt: 42, targetTransferTag: 0xffffffff, statSN: 0x32, expCmdSN: 15, maxCmdSN: 46, dataSN: 1, bufferOffset: 0x1000,
      residualCount: 4, data: hex('deadbeef cafe'),
    },
  },
  {
    name: 'SCSI Data-In (A bit, overflow, not final, flat LUN 300)',
    bhs: hex(`25440000 00000000 412c0000 00000000 00000009 00000100 00000000 00000001 00000002 00000000 00000000 00000010`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x25, immediate: false, final: false, acknowledge: true, overflow: true, underflow: false, statusPresent: false, status: 0,
      lun: 300, itt: 9, targetTransferTag: 0x100, statSN: 0, expCmdSN: 1, maxCmdSN: 2, dataSN: 0, bufferOffset: 0, residualCount: 16,
    },
  },
  {
    name: 'Logout Response',
    bhs: hex(`26800000 00000000 ${Z8} 00000077 00000000 00000033 00000011 00000030 00000000 00020014 00000000`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: { opcode: 0x26, immediate: false, final: true, response: 0, itt: 0x77, statSN: 0x33, expCmdSN: 0x11, maxCmdSN: 0x30, time2Wait: 2, time2Retain: 20 },
  },
  {
    name: 'R2T',
    bhs: hex(`31800000 00000000 00050000 00000000 0000002a 00001001 00000034 00000012 00000031 00000001 00002000 00040000`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x31, immediate: false, final: true, lun: 5, itt: 42, targetTransferTag: 0x1001, statSN: 0x34, expCmdSN: 0x12,
      maxCmdSN: 0x31, r2tSN: 1, bufferOffset: 0x2000, desiredDataTransferLength: 0x40000,
    },
  },
  {
    name: 'Asynchronous Message (logout request)',
    bhs: hex(`32800000 00000000 00010000 00000000 ffffffff 00000000 00000035 00000013 00000032 01090102 03040506 00000000`),
    ahs: Buffer.alloc(0),
    data: Buffer.alloc(0),
    pdu: {
      opcode: 0x32, immediate: false, final: true, lun: 1, itt: 0xffffffff, statSN: 0x35, expCmdSN: 0x13, maxCmdSN: 0x32,
      asyncEvent: 1, asyncVCode: 9, parameter1: 0x0102, parameter2: 0x0304, parameter3: 0x0506,
    },
  },
  {
    name: 'Reject (invalid PDU field, carries the rejected header)',
    bhs: hex(`3f800900 00000030 ${Z8} ffffffff 00000000 00000036 00000014 00000033 00000000 ${Z8}`),
    ahs: Buffer.alloc(0),
    data: NOP_OUT_BHS,
    pdu: {
      opcode: 0x3f, immediate: false, final: true, reason: 9, itt: 0xffffffff, statSN: 0x36, expCmdSN: 0x14, maxCmdSN: 0x33, dataSN: 0,
      data: NOP_OUT_BHS,
    },
  },
];
