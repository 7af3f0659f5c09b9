// Encoding of iSCSI PDUs (RFC 7143 §11): typed PDU objects to a Basic Header
// Segment (+ AHS). Split from pdu.ts (decoding) to keep files readable.

import { LunkitError } from '../errors.js';
import { AhsType, BHS_LENGTH, MAX_DATA_SEGMENT_FIELD } from './constants.js';
import { encodeLun } from './lun.js';
import {
  Opcode,
  type Pdu,
} from './pdu-types.js';


const EMPTY: Buffer = Buffer.alloc(0);

// ---------------------------------------------------------------------------
// Encode

type Computed = 'totalAhsLength' | 'dataSegmentLength' | 'ahs' | 'data' | 'immediate' | 'final' | 'lun' | 'lunRaw';

/**
 * A PDU to encode: like PduInit<P> (pdu-types.ts), and in addition `lun` and
 * `lunRaw` are optional: `lunRaw` (8 bytes) wins if given, else `lun` is
 * encoded, else the LUN field is zero. Echoing a request's lunRaw is the usual
 * way a target fills the field.
 */
export type EncodablePdu<P extends Pdu = Pdu> = P extends Pdu
  ? Omit<P, Computed> & Partial<Pick<P, Extract<keyof P, Computed>>>
  : never;

/** Length of the AHS that encodeBhs() will emit for `pdu`. */
export function encodedAhsLength(pdu: EncodablePdu): number {
  if (pdu.ahs !== undefined && pdu.ahs.length > 0) return pdu.ahs.length;
  if (pdu.opcode !== Opcode.SCSI_COMMAND) return 0;
  let n = 0;
  if (pdu.cdb.length > 16) n += (4 + pdu.cdb.length - 16 + 3) & ~3;
  if (pdu.bidiReadLength !== undefined) n += 8;
  return n;
}

/**
 * Encode the BHS (+ AHS) of `pdu`. Returns a Buffer of 48 + AHS bytes: `out`
 * itself (or a view of its start) when given, so a connection can reuse one
 * header buffer. The data segment is not included; its length is taken from
 * pdu.data. For a SCSI Command, an explicit `ahs` is emitted verbatim;
 * otherwise a CDB longer than 16 bytes and `bidiReadLength` produce the
 * Extended CDB and Bidirectional Read AHS (RFC 7143 §11.3.5, §11.3.6).
 */
export function encodeBhs<P extends Pdu = Pdu>(pdu: EncodablePdu<P>, out?: Buffer): Buffer {
  const p = pdu as EncodablePdu;
  const ahsLen = encodedAhsLength(p);
  if (ahsLen & 3 || ahsLen > 255 * 4) {
    throw new LunkitError('ERR_PDU_MALFORMED', `AHS length ${ahsLen} is not a multiple of 4 up to 1020`);
  }
  const total = BHS_LENGTH + ahsLen;
  let b: Buffer;
  if (out === undefined) {
    b = Buffer.alloc(total);
  } else {
    if (out.length < total) throw new LunkitError('ERR_PDU_MALFORMED', `header buffer of ${out.length} bytes < ${total}`);
    b = out.length === total ? out : out.subarray(0, total);
    b.fill(0);
  }
  const dataLen = p.data?.length ?? 0;
  if (dataLen > MAX_DATA_SEGMENT_FIELD) {
    throw new LunkitError('ERR_PDU_TOO_LARGE', `data segment of ${dataLen} bytes exceeds the 24-bit field`);
  }
  b[0] = p.opcode | (p.immediate ? 0x40 : 0);
  b[4] = ahsLen >> 2;
  b[5] = dataLen >> 16;
  b[6] = (dataLen >> 8) & 0xff;
  b[7] = dataLen & 0xff;
  b.writeUInt32BE(p.itt >>> 0, 16);
  const fin = p.final ?? true;

  switch (p.opcode) {
    case Opcode.SCSI_COMMAND: {
      b[1] = (fin ? 0x80 : 0) | (p.read ? 0x40 : 0) | (p.write ? 0x20 : 0) | (p.attr & 0x07);
      writeLun(b, p);
      b.writeUInt32BE(p.expectedDataTransferLength >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      p.cdb.copy(b, 32, 0, Math.min(16, p.cdb.length));
      if (p.ahs !== undefined && p.ahs.length > 0) {
        p.ahs.copy(b, BHS_LENGTH);
      } else {
        let off = BHS_LENGTH;
        if (p.cdb.length > 16) {
          const extra = p.cdb.length - 16;
          b.writeUInt16BE(extra + 1, off);
          b[off + 2] = AhsType.EXTENDED_CDB;
          p.cdb.copy(b, off + 4, 16);
          off += (4 + extra + 3) & ~3;
        }
        if (p.bidiReadLength !== undefined) {
          b.writeUInt16BE(5, off);
          b[off + 2] = AhsType.BIDI_READ_LENGTH;
          b.writeUInt32BE(p.bidiReadLength >>> 0, off + 4);
        }
      }
      return b;
    }
    case Opcode.SCSI_RESPONSE:
      b[1] =
        0x80 | (p.bidiOverflow ? 0x10 : 0) | (p.bidiUnderflow ? 0x08 : 0) | (p.overflow ? 0x04 : 0) | (p.underflow ? 0x02 : 0);
      b[2] = p.response;
      b[3] = p.status;
      b.writeUInt32BE(p.snackTag >>> 0, 20);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b.writeUInt32BE(p.expDataSN >>> 0, 36);
      b.writeUInt32BE(p.bidiReadResidualCount >>> 0, 40);
      b.writeUInt32BE(p.residualCount >>> 0, 44);
      break;
    case Opcode.TASK_MGMT_REQUEST:
      b[1] = 0x80 | (p.function & 0x7f);
      writeLun(b, p);
      b.writeUInt32BE(p.referencedTaskTag >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      b.writeUInt32BE(p.refCmdSN >>> 0, 32);
      b.writeUInt32BE(p.expDataSN >>> 0, 36);
      break;
    case Opcode.TASK_MGMT_RESPONSE:
      b[1] = 0x80;
      b[2] = p.response;
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      break;
    case Opcode.DATA_OUT:
      b[1] = fin ? 0x80 : 0;
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      b.writeUInt32BE(p.dataSN >>> 0, 36);
      b.writeUInt32BE(p.bufferOffset >>> 0, 40);
      break;
    case Opcode.DATA_IN:
      b[1] =
        (fin ? 0x80 : 0) |
        (p.acknowledge ? 0x40 : 0) |
        (p.overflow ? 0x04 : 0) |
        (p.underflow ? 0x02 : 0) |
        (p.statusPresent ? 0x01 : 0);
      b[3] = p.status;
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b.writeUInt32BE(p.dataSN >>> 0, 36);
      b.writeUInt32BE(p.bufferOffset >>> 0, 40);
      b.writeUInt32BE(p.residualCount >>> 0, 44);
      break;
    case Opcode.R2T:
      b[1] = 0x80;
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b.writeUInt32BE(p.r2tSN >>> 0, 36);
      b.writeUInt32BE(p.bufferOffset >>> 0, 40);
      b.writeUInt32BE(p.desiredDataTransferLength >>> 0, 44);
      break;
    case Opcode.ASYNC_MESSAGE:
      b[1] = 0x80;
      writeLun(b, p);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b[36] = p.asyncEvent;
      b[37] = p.asyncVCode;
      b.writeUInt16BE(p.parameter1 & 0xffff, 38);
      b.writeUInt16BE(p.parameter2 & 0xffff, 40);
      b.writeUInt16BE(p.parameter3 & 0xffff, 42);
      break;
    case Opcode.TEXT_REQUEST:
      b[1] = (fin ? 0x80 : 0) | (p.continue ? 0x40 : 0);
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case Opcode.TEXT_RESPONSE:
      b[1] = (fin ? 0x80 : 0) | (p.continue ? 0x40 : 0);
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      break;
    case Opcode.LOGIN_REQUEST:
      // §11.12: the I bit is always 1 on a Login Request.
      b[0] = p.opcode | (p.immediate === false ? 0 : 0x40);
      b[1] = loginFlags(p.transit, p.continue, p.csg, p.nsg);
      b[2] = p.versionMax;
      b[3] = p.versionMin;
      b.writeUIntBE(p.isid, 8, 6);
      b.writeUInt16BE(p.tsih & 0xffff, 14);
      b.writeUInt16BE(p.cid & 0xffff, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case Opcode.LOGIN_RESPONSE:
      b[1] = loginFlags(p.transit, p.continue, p.csg, p.nsg);
      b[2] = p.versionMax;
      b[3] = p.versionActive;
      b.writeUIntBE(p.isid, 8, 6);
      b.writeUInt16BE(p.tsih & 0xffff, 14);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b[36] = p.statusClass;
      b[37] = p.statusDetail;
      break;
    case Opcode.LOGOUT_REQUEST:
      b[1] = 0x80 | (p.reasonCode & 0x7f);
      b.writeUInt16BE(p.cid & 0xffff, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case Opcode.LOGOUT_RESPONSE:
      b[1] = 0x80;
      b[2] = p.response;
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b.writeUInt16BE(p.time2Wait & 0xffff, 40);
      b.writeUInt16BE(p.time2Retain & 0xffff, 42);
      break;
    case Opcode.SNACK_REQUEST:
      b[1] = 0x80 | (p.type & 0x0f);
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      b.writeUInt32BE(p.begRun >>> 0, 40);
      b.writeUInt32BE(p.runLength >>> 0, 44);
      break;
    case Opcode.REJECT:
      b[1] = 0x80;
      b[2] = p.reason;
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      b.writeUInt32BE(p.dataSN >>> 0, 36);
      break;
    case Opcode.NOP_OUT:
      b[1] = 0x80;
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case Opcode.NOP_IN:
      b[1] = 0x80;
      writeLun(b, p);
      b.writeUInt32BE(p.targetTransferTag >>> 0, 20);
      b.writeUInt32BE(p.statSN >>> 0, 24);
      b.writeUInt32BE(p.expCmdSN >>> 0, 28);
      b.writeUInt32BE(p.maxCmdSN >>> 0, 32);
      break;
    default: {
      const never: never = p;
      throw new LunkitError('ERR_PDU_BAD_OPCODE', `cannot encode opcode ${String((never as { opcode: unknown }).opcode)}`);
    }
  }
  if (ahsLen > 0 && p.ahs !== undefined) p.ahs.copy(b, BHS_LENGTH);
  return b;
}

function loginFlags(transit: boolean, cont: boolean, csg: number, nsg: number): number {
  return (transit ? 0x80 : 0) | (cont ? 0x40 : 0) | ((csg & 3) << 2) | (nsg & 3);
}

function writeLun(b: Buffer, p: { lun?: number; lunRaw?: Buffer }): void {
  if (p.lunRaw !== undefined && p.lunRaw.length === 8) p.lunRaw.copy(b, 8);
  else if (p.lun !== undefined && p.lun >= 0) encodeLun(p.lun, b, 8);
}

// ---------------------------------------------------------------------------
// Sense data in a SCSI Response data segment (RFC 7143 §11.4.7)

/** The SCSI Response data segment for `sense`: 2-byte SenseLength + sense bytes. */
export function encodeSenseData(sense: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + sense.length);
  out.writeUInt16BE(sense.length, 0);
  sense.copy(out, 2);
  return out;
}

/**
 * The sense bytes carried in a SCSI Response data segment (a view), or an
 * empty Buffer if there are none. Any response data after the sense is ignored.
 */
export function decodeSenseData(data: Buffer): Buffer {
  if (data.length < 2) return EMPTY;
  const len = data.readUInt16BE(0);
  if (2 + len > data.length) throw new LunkitError('ERR_PDU_MALFORMED', `SenseLength ${len} exceeds the data segment`);
  return data.subarray(2, 2 + len);
}
