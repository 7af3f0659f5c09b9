// INQUIRY (SPC-4 §6.4): standard data and the VPD pages of spc-vpd.ts.

import { ScsiOpcode, VersionDescriptor, PeripheralDeviceType } from '../protocols/scsi/opcodes.js';
import { asciiField } from '../protocols/scsi/cdb.js';
import type { CommandContext, CommandOutcome, CommandSpec } from './command.js';
import { scsiDeviceOf, type CoreInfo } from './device.js';
import { buildVpdPage } from './spc-vpd.js';

/** Standard INQUIRY data length: through the eight version descriptors (bytes 58..73). */
export const STANDARD_INQUIRY_LENGTH = 74;

/**
 * Standard INQUIRY data (SPC-4 §6.4.2). `present` false gives peripheral
 * qualifier 011b / device type 1Fh for a LUN that is not mapped.
 */
export function standardInquiry(info: CoreInfo, present: boolean, protocolId: number, removable = false): Buffer {
  const d = Buffer.alloc(STANDARD_INQUIRY_LENGTH);
  d[0] = present ? PeripheralDeviceType.DIRECT_ACCESS : 0x60 | PeripheralDeviceType.UNKNOWN;
  d[1] = removable ? 0x80 : 0x00; // RMB
  d[2] = 0x06; // VERSION: SPC-4
  d[3] = 0x10 | 0x02; // HISUP, RESPONSE DATA FORMAT 2
  d[4] = STANDARD_INQUIRY_LENGTH - 5; // ADDITIONAL LENGTH (n - 4)
  d[5] = 0x00; // no ALUA (TPGS 00b), no 3PC, no PROTECT
  d[6] = 0x00;
  d[7] = 0x02; // CMDQUE
  asciiField(info.vendor, 8).copy(d, 8);
  asciiField(info.product, 16).copy(d, 16);
  asciiField(info.revision, 4).copy(d, 32);
  // Version descriptors (table 148): SAM-5, SPC-4, SBC-3, transport.
  let off = 58;
  for (const v of [VersionDescriptor.SAM_5, VersionDescriptor.SPC_4, VersionDescriptor.SBC_3]) {
    d.writeUInt16BE(v, off);
    off += 2;
  }
  if (protocolId === 5) d.writeUInt16BE(VersionDescriptor.ISCSI, off);
  return d;
}

function inquiry(ctx: CommandContext): CommandOutcome {
  const cdb = ctx.cdb;
  const dev = scsiDeviceOf(ctx.device);
  const evpd = (cdb[1] & 0x01) !== 0;
  const pageCode = cdb[2];
  if (!evpd) {
    // SPC-4 §6.4.1: PAGE CODE must be zero when EVPD is zero.
    if (pageCode !== 0) return { kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { inCdb: true, byte: 2 } };
    return { kind: 'good', data: standardInquiry(dev.info, true, ctx.nexus.identity.protocolId, dev.removable) };
  }
  const page = buildVpdPage(pageCode, dev, ctx.nexus.identity);
  if (!page) return { kind: 'check', reason: 'INVALID_FIELD_IN_CDB', field: { inCdb: true, byte: 2 } };
  return { kind: 'good', data: page };
}

export const inquirySpec: CommandSpec = {
  opcode: ScsiOpcode.INQUIRY,
  name: 'INQUIRY',
  cdbLength: 6,
  usage: [ScsiOpcode.INQUIRY, 0x01, 0xff, 0xff, 0xff, 0x00],
  direction: 'read',
  transferLength: (cdb) => cdb.readUInt16BE(3),
  allowedWithUnitAttention: true,
  reservationExempt: true,
  nominalTimeout: 1,
  handler: inquiry,
};
