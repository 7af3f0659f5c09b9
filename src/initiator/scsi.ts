// SCSI helpers on top of an initiator session: build the CDB, run it, decode
// the parameter data. A CHECK CONDITION (or any non-GOOD status) is a result
// value with decoded sense, never an exception; transport failures reject
// (SPC-4, SBC-3 section numbers at each command).

import { decodeLun } from '../protocols/iscsi/lun.js';
import { parseReadCapacity16, readCapacity16 as readCapacity16Cdb, rw16, synchronizeCache16 as syncCache16Cdb, type Capacity16 } from '../protocols/scsi/block-cdbs.js';
import { IscsiInitiatorError } from './errors.js';
import type { SenseData } from './sense.js';
import { ScsiStatus, type ScsiRequest, type ScsiResult } from './task.js';

/** What the helpers need: anything that runs a SCSI command (a session, later an MC/S session). */
export interface ScsiExecutor {
  execute(req: ScsiRequest): Promise<ScsiResult>;
}

/** A helper's answer: the decoded value on GOOD, the status and sense otherwise. */
export type ScsiReply<T> =
  | { ok: true; status: 0; value: T; result: ScsiResult }
  | { ok: false; status: number; sense: SenseData | undefined; result: ScsiResult };

function reply<T>(r: ScsiResult, decode: (data: Buffer) => T): ScsiReply<T> {
  if (r.status !== ScsiStatus.GOOD) return { ok: false, status: r.status, sense: r.sense, result: r };
  return { ok: true, status: 0, value: decode(r.data), result: r };
}

/** Signal for every helper. */
export interface HelperOptions {
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------
// INQUIRY (SPC-4 §6.6)

export interface StandardInquiry {
  peripheralQualifier: number;
  deviceType: number;
  removable: boolean;
  version: number;
  responseDataFormat: number;
  hiSup: boolean;
  /** TPGS field (ALUA support). */
  tpgs: number;
  protect: boolean;
  cmdQue: boolean;
  vendor: string;
  product: string;
  revision: string;
  /** Version descriptors (bytes 58..73). */
  versionDescriptors: number[];
}

export interface DeviceDesignator {
  codeSet: number;
  protocolIdentifier: number;
  piv: boolean;
  association: number;
  designatorType: number;
  /** Raw designator bytes. */
  designator: Buffer;
  /** The designator as text: ASCII/UTF-8 code sets as is, binary as hex. */
  text: string;
}

export interface BlockLimits {
  maxCompareAndWriteLength: number;
  optimalTransferLengthGranularity: number;
  maxTransferLength: number;
  optimalTransferLength: number;
  maxPrefetchLength: number;
  maxUnmapLbaCount: number;
  maxUnmapBlockDescriptorCount: number;
  optimalUnmapGranularity: number;
  unmapGranularityAlignment: number | undefined;
  maxWriteSameLength: bigint;
}

function inquiryCdb(evpd: boolean, page: number, alloc: number): Buffer {
  const cdb = Buffer.alloc(6);
  cdb[0] = 0x12;
  cdb[1] = evpd ? 1 : 0;
  cdb[2] = page;
  cdb.writeUInt16BE(alloc, 3);
  return cdb;
}

const ascii = (b: Buffer, from: number, to: number): string => b.toString('latin1', from, Math.min(to, b.length)).trimEnd();

export function parseStandardInquiry(d: Buffer): StandardInquiry {
  const versionDescriptors: number[] = [];
  for (let off = 58; off + 2 <= Math.min(d.length, 74); off += 2) {
    const v = d.readUInt16BE(off);
    if (v !== 0) versionDescriptors.push(v);
  }
  return {
    peripheralQualifier: d[0] >> 5,
    deviceType: d[0] & 0x1f,
    removable: (d[1] & 0x80) !== 0,
    version: d[2] ?? 0,
    responseDataFormat: (d[3] ?? 0) & 0x0f,
    hiSup: ((d[3] ?? 0) & 0x10) !== 0,
    tpgs: ((d[5] ?? 0) >> 4) & 3,
    protect: ((d[5] ?? 0) & 1) !== 0,
    cmdQue: ((d[7] ?? 0) & 2) !== 0,
    vendor: ascii(d, 8, 16),
    product: ascii(d, 16, 32),
    revision: ascii(d, 32, 36),
    versionDescriptors,
  };
}

export function parseSupportedVpdPages(d: Buffer): number[] {
  const len = d.length >= 4 ? d.readUInt16BE(2) : 0;
  return [...d.subarray(4, 4 + len)];
}

export function parseUnitSerialNumber(d: Buffer): string {
  const len = d.length >= 4 ? d.readUInt16BE(2) : 0;
  return ascii(d, 4, 4 + len).trim();
}

/** VPD 83h (SPC-4 §7.8.6). */
export function parseDeviceIdentification(d: Buffer): DeviceDesignator[] {
  const out: DeviceDesignator[] = [];
  const end = Math.min(d.length, 4 + (d.length >= 4 ? d.readUInt16BE(2) : 0));
  let off = 4;
  while (off + 4 <= end) {
    const len = d[off + 3];
    if (off + 4 + len > end) break;
    const codeSet = d[off] & 0x0f;
    const designator = Buffer.from(d.subarray(off + 4, off + 4 + len));
    out.push({
      codeSet,
      protocolIdentifier: d[off] >> 4,
      piv: (d[off + 1] & 0x80) !== 0,
      association: (d[off + 1] >> 4) & 3,
      designatorType: d[off + 1] & 0x0f,
      designator,
      text: codeSet === 2 || codeSet === 3 ? designator.toString(codeSet === 3 ? 'utf8' : 'latin1').replace(/\0+$/, '') : designator.toString('hex'),
    });
    off += 4 + len;
  }
  return out;
}

/** VPD B0h (SBC-3 §6.5.3). */
export function parseBlockLimits(d: Buffer): BlockLimits {
  const u32 = (o: number): number => (d.length >= o + 4 ? d.readUInt32BE(o) : 0);
  const ugavalid = d.length >= 32 && (d[32] & 0x80) !== 0;
  return {
    maxCompareAndWriteLength: d[5] ?? 0,
    optimalTransferLengthGranularity: d.length >= 8 ? d.readUInt16BE(6) : 0,
    maxTransferLength: u32(8),
    optimalTransferLength: u32(12),
    maxPrefetchLength: u32(16),
    maxUnmapLbaCount: u32(20),
    maxUnmapBlockDescriptorCount: u32(24),
    optimalUnmapGranularity: u32(28),
    unmapGranularityAlignment: ugavalid ? u32(32) & 0x7fffffff : undefined,
    maxWriteSameLength: d.length >= 44 ? d.readBigUInt64BE(36) : 0n,
  };
}

export async function inquiry(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<StandardInquiry>> {
  return reply(await s.execute({ lun, cdb: inquiryCdb(false, 0, 255), dataIn: 255, signal: o.signal }), parseStandardInquiry);
}

/** Any VPD page, raw (the page header included). */
export async function inquiryVpd(s: ScsiExecutor, lun: number, page: number, o: HelperOptions = {}): Promise<ScsiReply<Buffer>> {
  return reply(await s.execute({ lun, cdb: inquiryCdb(true, page, 0xfffc), dataIn: 0xfffc, signal: o.signal }), (d) => d);
}

export async function supportedVpdPages(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<number[]>> {
  return mapReply(await inquiryVpd(s, lun, 0x00, o), parseSupportedVpdPages);
}

export async function unitSerialNumber(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<string>> {
  return mapReply(await inquiryVpd(s, lun, 0x80, o), parseUnitSerialNumber);
}

export async function deviceIdentification(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<DeviceDesignator[]>> {
  return mapReply(await inquiryVpd(s, lun, 0x83, o), parseDeviceIdentification);
}

export async function blockLimits(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<BlockLimits>> {
  return mapReply(await inquiryVpd(s, lun, 0xb0, o), parseBlockLimits);
}

function mapReply<A, B>(r: ScsiReply<A>, f: (a: A) => B): ScsiReply<B> {
  return r.ok ? { ...r, value: f(r.value) } : r;
}

// ---------------------------------------------------------------------------
// Block commands (SBC-3)

export async function readCapacity16(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<Capacity16>> {
  return reply(await s.execute({ lun, cdb: readCapacity16Cdb(), dataIn: 32, signal: o.signal }), parseReadCapacity16);
}

export interface BlockIoOptions extends HelperOptions {
  blockSize: number;
  fua?: boolean;
}

/** READ(16) of `blocks` blocks at `lba` (SBC-3 §5.14); reads into `o.into` if given. */
export async function read16(s: ScsiExecutor, lun: number, lba: bigint | number, blocks: number, o: BlockIoOptions & { into?: Buffer }): Promise<ScsiReply<Buffer>> {
  const len = blocks * o.blockSize;
  const dataIn = o.into !== undefined ? o.into.subarray(0, len) : len;
  return reply(await s.execute({ lun, cdb: rw16(false, lba, blocks, o.fua), dataIn, signal: o.signal }), (d) => d);
}

/** WRITE(16) of `data` at `lba` (SBC-3 §5.36); `data` must be whole blocks. */
export async function write16(s: ScsiExecutor, lun: number, lba: bigint | number, data: Buffer, o: BlockIoOptions): Promise<ScsiReply<void>> {
  if (data.length % o.blockSize !== 0) {
    throw new IscsiInitiatorError('ERR_ISCSI_INVALID_ARGUMENT', `write of ${data.length} bytes is not a multiple of the ${o.blockSize}-byte block`);
  }
  return reply(await s.execute({ lun, cdb: rw16(true, lba, data.length / o.blockSize, o.fua), dataOut: data, signal: o.signal }), () => undefined);
}

export async function synchronizeCache16(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<void>> {
  return reply(await s.execute({ lun, cdb: syncCache16Cdb(), signal: o.signal }), () => undefined);
}

export async function testUnitReady(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<void>> {
  return reply(await s.execute({ lun, cdb: Buffer.alloc(6), signal: o.signal }), () => undefined);
}

export interface UnmapRange {
  lba: bigint | number;
  blocks: number;
}

/** UNMAP (SBC-3 §5.28): an 8-byte header and 16-byte block descriptors. */
export function unmapParameterList(ranges: readonly UnmapRange[]): Buffer {
  const p = Buffer.alloc(8 + 16 * ranges.length);
  p.writeUInt16BE(6 + 16 * ranges.length, 0);
  p.writeUInt16BE(16 * ranges.length, 2);
  ranges.forEach((r, i) => {
    p.writeBigUInt64BE(BigInt(r.lba), 8 + 16 * i);
    p.writeUInt32BE(r.blocks, 16 + 16 * i);
  });
  return p;
}

export async function unmap(s: ScsiExecutor, lun: number, ranges: readonly UnmapRange[], o: HelperOptions = {}): Promise<ScsiReply<void>> {
  const param = unmapParameterList(ranges);
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x42;
  cdb.writeUInt16BE(param.length, 7);
  return reply(await s.execute({ lun, cdb, dataOut: param, signal: o.signal }), () => undefined);
}

// ---------------------------------------------------------------------------
// REPORT LUNS (SPC-4 §6.33)

export function parseReportLuns(d: Buffer): number[] {
  const len = d.length >= 4 ? d.readUInt32BE(0) : 0;
  const out: number[] = [];
  for (let off = 8; off + 8 <= Math.min(d.length, 8 + len); off += 8) out.push(decodeLun(d.subarray(off, off + 8)));
  return out;
}

export async function reportLuns(s: ScsiExecutor, o: HelperOptions = {}): Promise<ScsiReply<number[]>> {
  const alloc = 8 + 8 * 1024;
  const cdb = Buffer.alloc(12);
  cdb[0] = 0xa0;
  cdb.writeUInt32BE(alloc, 6);
  // REPORT LUNS is addressed to LUN 0 (the well-known W-LUN would do as well).
  return reply(await s.execute({ lun: 0, cdb, dataIn: alloc, signal: o.signal }), parseReportLuns);
}

// ---------------------------------------------------------------------------
// PERSISTENT RESERVE IN/OUT (SPC-4 §6.15, §6.16)

export { PrType } from '../protocols/scsi/status.js';

export interface PrKeys {
  generation: number;
  keys: bigint[];
}

export interface PrReservation {
  generation: number;
  reservation: { key: bigint; scope: number; type: number } | undefined;
}

function prInCdb(action: number, alloc: number): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5e;
  cdb[1] = action;
  cdb.writeUInt16BE(alloc, 7);
  return cdb;
}

export function parsePrKeys(d: Buffer): PrKeys {
  const len = d.readUInt32BE(4);
  const keys: bigint[] = [];
  for (let off = 8; off + 8 <= Math.min(d.length, 8 + len); off += 8) keys.push(d.readBigUInt64BE(off));
  return { generation: d.readUInt32BE(0), keys };
}

export function parsePrReservation(d: Buffer): PrReservation {
  const len = d.readUInt32BE(4);
  if (len < 16 || d.length < 24) return { generation: d.readUInt32BE(0), reservation: undefined };
  return { generation: d.readUInt32BE(0), reservation: { key: d.readBigUInt64BE(8), scope: d[21] >> 4, type: d[21] & 0x0f } };
}

export async function prReadKeys(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<PrKeys>> {
  return reply(await s.execute({ lun, cdb: prInCdb(0, 8192), dataIn: 8192, signal: o.signal }), parsePrKeys);
}

export async function prReadReservation(s: ScsiExecutor, lun: number, o: HelperOptions = {}): Promise<ScsiReply<PrReservation>> {
  return reply(await s.execute({ lun, cdb: prInCdb(1, 8192), dataIn: 8192, signal: o.signal }), parsePrReservation);
}

/** PERSISTENT RESERVE OUT with the basic 24-byte parameter list (SPC-4 §6.16.3). */
export function prOutCdbAndParams(action: number, type: number, key: bigint, serviceActionKey: bigint): { cdb: Buffer; params: Buffer } {
  const cdb = Buffer.alloc(10);
  cdb[0] = 0x5f;
  cdb[1] = action;
  cdb[2] = type & 0x0f; // scope 0 = LU_SCOPE
  cdb.writeUInt32BE(24, 5);
  const params = Buffer.alloc(24);
  params.writeBigUInt64BE(key, 0);
  params.writeBigUInt64BE(serviceActionKey, 8);
  return { cdb, params };
}

async function prOut(s: ScsiExecutor, lun: number, action: number, type: number, key: bigint, sak: bigint, o: HelperOptions): Promise<ScsiReply<void>> {
  const { cdb, params } = prOutCdbAndParams(action, type, key, sak);
  return reply(await s.execute({ lun, cdb, dataOut: params, signal: o.signal }), () => undefined);
}

/** REGISTER (action 0): register `newKey` (or unregister with 0n), `key` being the current registration. */
export const prRegister = (s: ScsiExecutor, lun: number, key: bigint, newKey: bigint, o: HelperOptions = {}): Promise<ScsiReply<void>> =>
  prOut(s, lun, 0, 0, key, newKey, o);
export const prReserve = (s: ScsiExecutor, lun: number, key: bigint, type: number, o: HelperOptions = {}): Promise<ScsiReply<void>> =>
  prOut(s, lun, 1, type, key, 0n, o);
export const prRelease = (s: ScsiExecutor, lun: number, key: bigint, type: number, o: HelperOptions = {}): Promise<ScsiReply<void>> =>
  prOut(s, lun, 2, type, key, 0n, o);
export const prClear = (s: ScsiExecutor, lun: number, key: bigint, o: HelperOptions = {}): Promise<ScsiReply<void>> =>
  prOut(s, lun, 3, 0, key, 0n, o);

