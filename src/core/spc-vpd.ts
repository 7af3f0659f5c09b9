// Vital product data pages (SPC-4 §7.8, SBC-3 §6.5). Each builder returns the
// whole page; the engine cuts it to the allocation length.

import { VpdPage, PeripheralDeviceType, ScsiOpcode } from '../protocols/scsi/opcodes.js';
import { asciiField } from '../protocols/scsi/cdb.js';
import type { NexusIdentity } from './types.js';
import type { ScsiDevice } from './device.js';
import { sbcBlockLimits } from './sbc-common.js';

/** Supported VPD pages, ascending (SPC-4 §7.8.13 requires ascending order). */
export const SUPPORTED_VPD_PAGES: readonly number[] = [
  VpdPage.SUPPORTED_PAGES,
  VpdPage.UNIT_SERIAL_NUMBER,
  VpdPage.DEVICE_IDENTIFICATION,
  VpdPage.EXTENDED_INQUIRY_DATA,
  VpdPage.BLOCK_LIMITS,
  VpdPage.BLOCK_DEVICE_CHARACTERISTICS,
  VpdPage.LOGICAL_BLOCK_PROVISIONING,
];

const PDT = PeripheralDeviceType.DIRECT_ACCESS;
const WRITE_ATOMIC_16 = ScsiOpcode.WRITE_ATOMIC_16;

function page(code: number, body: Buffer | number): Buffer {
  const len = typeof body === 'number' ? body : body.length;
  const out = Buffer.alloc(4 + len);
  out[0] = PDT;
  out[1] = code;
  out.writeUInt16BE(len, 2);
  if (typeof body !== 'number') body.copy(out, 4);
  return out;
}

function supportedPages(): Buffer {
  return page(VpdPage.SUPPORTED_PAGES, Buffer.from(SUPPORTED_VPD_PAGES));
}

function unitSerial(dev: ScsiDevice): Buffer {
  return page(VpdPage.UNIT_SERIAL_NUMBER, Buffer.from(dev.serial, 'latin1'));
}

// Designation descriptor header (SPC-4 §7.8.6.1 table 459).
const CODESET_BINARY = 1;
const CODESET_ASCII = 2;
const CODESET_UTF8 = 3;
const ASSOC_LU = 0;
const ASSOC_TARGET_PORT = 1;
const ASSOC_TARGET_DEVICE = 2;
const TYPE_T10_VENDOR = 1;
const TYPE_NAA = 3;
const TYPE_RELATIVE_PORT = 4;
const TYPE_TPG = 5;
const TYPE_SCSI_NAME = 8;

function designator(protocolId: number, codeSet: number, piv: boolean, assoc: number, type: number, body: Buffer): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out[0] = ((protocolId & 0x0f) << 4) | codeSet;
  out[1] = (piv ? 0x80 : 0) | (assoc << 4) | type;
  out[3] = body.length;
  body.copy(out, 4);
  return out;
}

/** SCSI name string: UTF-8, null terminated, padded with nulls to a multiple of 4 (§7.8.6.11). */
function scsiNameString(name: string): Buffer {
  const raw = Buffer.from(name, 'utf8');
  const len = Math.min(252, (raw.length + 4) & ~3);
  const out = Buffer.alloc(len);
  raw.copy(out, 0, 0, Math.min(raw.length, len - 1));
  return out;
}

/** Device Identification (SPC-4 §7.8.6). */
function deviceIdentification(dev: ScsiDevice, id: NexusIdentity | undefined, vendor: string): Buffer {
  const parts: Buffer[] = [];
  parts.push(designator(0, CODESET_BINARY, false, ASSOC_LU, TYPE_NAA, dev.naa));
  const t10 = Buffer.concat([asciiField(vendor, 8), Buffer.from(`${dev.name}:${dev.serial}`.slice(0, 200), 'latin1')]);
  parts.push(designator(0, CODESET_ASCII, false, ASSOC_LU, TYPE_T10_VENDOR, t10));
  if (id) {
    const pid = id.protocolId;
    const rtpi = Buffer.alloc(4);
    rtpi.writeUInt16BE(id.relativeTargetPortId & 0xffff, 2);
    parts.push(designator(pid, CODESET_BINARY, true, ASSOC_TARGET_PORT, TYPE_RELATIVE_PORT, rtpi));
    const tpg = Buffer.alloc(4);
    tpg.writeUInt16BE(id.targetPortGroup & 0xffff, 2);
    parts.push(designator(pid, CODESET_BINARY, true, ASSOC_TARGET_PORT, TYPE_TPG, tpg));
    parts.push(designator(pid, CODESET_UTF8, true, ASSOC_TARGET_PORT, TYPE_SCSI_NAME, scsiNameString(id.targetPortId)));
    parts.push(designator(pid, CODESET_UTF8, true, ASSOC_TARGET_DEVICE, TYPE_SCSI_NAME, scsiNameString(id.targetName)));
  }
  return page(VpdPage.DEVICE_IDENTIFICATION, Buffer.concat(parts));
}

/** Extended INQUIRY Data (SPC-4 §7.8.7). */
function extendedInquiry(dev: ScsiDevice): Buffer {
  const p = page(VpdPage.EXTENDED_INQUIRY_DATA, 0x3c);
  // HEADSUP | ORDSUP | SIMPSUP: all three task attributes are honoured.
  p[5] = 0x07;
  // V_SUP: a volatile cache exists when the backstore can flush.
  p[6] = dev.backstore.caps.canFlush ? 0x01 : 0x00;
  return p;
}

/** Block Limits (SBC-3 §6.5.3). */
function blockLimits(dev: ScsiDevice): Buffer {
  const l = sbcBlockLimits(dev.blockSize);
  const p = page(VpdPage.BLOCK_LIMITS, 0x3c);
  p[4] = l.wsnz ? 0x01 : 0x00;
  p[5] = l.maxCompareAndWriteLength & 0xff;
  p.writeUInt16BE(l.optimalTransferGranularity & 0xffff, 6);
  p.writeUInt32BE(l.maxTransferLength >>> 0, 8);
  p.writeUInt32BE(l.optimalTransferLength >>> 0, 12);
  p.writeUInt32BE(l.maxTransferLength >>> 0, 16); // MAXIMUM PREFETCH LENGTH
  if (dev.canUnmap) {
    p.writeUInt32BE(l.maxUnmapLbaCount >>> 0, 20);
    p.writeUInt32BE(l.maxUnmapDescriptorCount >>> 0, 24);
    p.writeUInt32BE(l.optimalUnmapGranularity >>> 0, 28);
    p.writeUInt32BE((0x80000000 | l.unmapGranularityAlignment) >>> 0, 32); // UGAVALID
  }
  p.writeBigUInt64BE(BigInt(l.maxWriteSameLength), 36);
  if (dev.info.commands.some((c) => c.opcode === WRITE_ATOMIC_16)) {
    // SBC-4 §6.6.4 atomic fields, all zero when the dispatch table has no
    // WRITE ATOMIC(16) (libiscsi's WriteAtomic16.VPD checks both ways).
    p.writeUInt32BE(l.maxAtomicTransferLength >>> 0, 44);
    p.writeUInt32BE(l.atomicAlignment >>> 0, 48);
    p.writeUInt32BE(l.atomicTransferLengthGranularity >>> 0, 52);
    p.writeUInt32BE(l.maxAtomicTransferLengthWithBoundary >>> 0, 56);
    p.writeUInt32BE(l.maxAtomicBoundarySize >>> 0, 60);
  }
  return p;
}

/** Block Device Characteristics (SBC-3 §6.5.2). */
function blockDeviceCharacteristics(dev: ScsiDevice): Buffer {
  const p = page(VpdPage.BLOCK_DEVICE_CHARACTERISTICS, 0x3c);
  p.writeUInt16BE(dev.backstore.caps.rotationRate & 0xffff, 4);
  return p;
}

/** Logical Block Provisioning (SBC-3 §6.5.4): every bit is derived from the backstore's caps. */
function logicalBlockProvisioning(dev: ScsiDevice): Buffer {
  const p = page(VpdPage.LOGICAL_BLOCK_PROVISIONING, 4);
  const unmap = dev.canUnmap;
  let flags = 0;
  if (unmap) flags |= 0x80 | 0x40 | 0x20; // LBPU, LBPWS, LBPWS10
  if (dev.thin && dev.backstore.caps.unmapReadsZero) flags |= 0x04; // LBPRZ
  if (unmap && sbcBlockLimits(dev.blockSize).ancSup) flags |= 0x02; // ANC_SUP
  p[5] = flags;
  // PROVISIONING TYPE: 010b thin, 000b full.
  p[6] = dev.thin ? 0x02 : 0x00;
  return p;
}

/** Build a VPD page, or undefined when the page is not supported. */
export function buildVpdPage(code: number, dev: ScsiDevice, id: NexusIdentity | undefined): Buffer | undefined {
  switch (code) {
    case VpdPage.SUPPORTED_PAGES:
      return supportedPages();
    case VpdPage.UNIT_SERIAL_NUMBER:
      return unitSerial(dev);
    case VpdPage.DEVICE_IDENTIFICATION:
      return deviceIdentification(dev, id, dev.info.vendor);
    case VpdPage.EXTENDED_INQUIRY_DATA:
      return extendedInquiry(dev);
    case VpdPage.BLOCK_LIMITS:
      return blockLimits(dev);
    case VpdPage.BLOCK_DEVICE_CHARACTERISTICS:
      return blockDeviceCharacteristics(dev);
    case VpdPage.LOGICAL_BLOCK_PROVISIONING:
      return logicalBlockProvisioning(dev);
    default:
      return undefined;
  }
}
