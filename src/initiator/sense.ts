// Sense data decoding (SPC-4 §4.5): fixed format (70h/71h) and descriptor
// format (72h/73h), into one typed shape. The initiator's SCSI helpers hand
// this to callers with every CHECK CONDITION.

export interface SenseDescriptor {
  type: number;
  /** The descriptor's bytes after its 2-byte header. */
  body: Buffer;
}

export interface SenseData {
  format: 'fixed' | 'descriptor';
  /** False for 71h/73h (deferred errors). */
  current: boolean;
  key: number;
  keyName: string;
  asc: number;
  ascq: number;
  /** INFORMATION field (fixed: when VALID; descriptor: information descriptor 00h). */
  information: bigint | undefined;
  /** COMMAND-SPECIFIC INFORMATION (fixed bytes 8..11, descriptor 01h). */
  commandSpecific: bigint | undefined;
  /** SENSE KEY SPECIFIC bytes when SKSV is set (fixed bytes 15..17, descriptor 02h). */
  senseKeySpecific: Buffer | undefined;
  filemark: boolean;
  eom: boolean;
  ili: boolean;
  descriptors: SenseDescriptor[];
  raw: Buffer;
}

/** SPC-4 table 28: sense key names. */
export const SENSE_KEY_NAMES: readonly string[] = [
  'NO SENSE',
  'RECOVERED ERROR',
  'NOT READY',
  'MEDIUM ERROR',
  'HARDWARE ERROR',
  'ILLEGAL REQUEST',
  'UNIT ATTENTION',
  'DATA PROTECT',
  'BLANK CHECK',
  'VENDOR SPECIFIC',
  'COPY ABORTED',
  'ABORTED COMMAND',
  'RESERVED (0Ch)',
  'VOLUME OVERFLOW',
  'MISCOMPARE',
  'COMPLETED',
];

/** Decode sense data; undefined if it is too short or of an unknown response code. */
export function decodeSense(raw: Buffer): SenseData | undefined {
  if (raw.length < 2) return undefined;
  const code = raw[0] & 0x7f;
  if (code === 0x70 || code === 0x71) {
    if (raw.length < 3) return undefined;
    const key = raw[2] & 0x0f;
    const valid = (raw[0] & 0x80) !== 0;
    // ADDITIONAL SENSE LENGTH (byte 7) bounds the rest; read what is there.
    const end = raw.length >= 8 ? Math.min(raw.length, 8 + raw[7]) : raw.length;
    const sksv = end >= 18 && (raw[15] & 0x80) !== 0;
    return {
      format: 'fixed',
      current: code === 0x70,
      key,
      keyName: SENSE_KEY_NAMES[key],
      asc: end > 12 ? raw[12] : 0,
      ascq: end > 13 ? raw[13] : 0,
      information: valid && raw.length >= 7 ? BigInt(raw.readUInt32BE(3)) : undefined,
      commandSpecific: end >= 12 ? BigInt(raw.readUInt32BE(8)) : undefined,
      senseKeySpecific: sksv ? Buffer.from(raw.subarray(15, 18)) : undefined,
      filemark: (raw[2] & 0x80) !== 0,
      eom: (raw[2] & 0x40) !== 0,
      ili: (raw[2] & 0x20) !== 0,
      descriptors: [],
      raw,
    };
  }
  if (code === 0x72 || code === 0x73) {
    if (raw.length < 4) return undefined;
    const key = raw[1] & 0x0f;
    const descriptors: SenseDescriptor[] = [];
    const end = raw.length >= 8 ? Math.min(raw.length, 8 + raw[7]) : raw.length;
    let off = 8;
    while (off + 2 <= end) {
      const len = raw[off + 1];
      if (off + 2 + len > end) break;
      descriptors.push({ type: raw[off], body: raw.subarray(off + 2, off + 2 + len) });
      off += 2 + len;
    }
    let information: bigint | undefined;
    let commandSpecific: bigint | undefined;
    let senseKeySpecific: Buffer | undefined;
    let filemark = false;
    let eom = false;
    let ili = false;
    for (const d of descriptors) {
      // SPC-4 §4.5.2.2: information (00h) and command-specific (01h) carry an 8-byte value at body offset 2.
      if (d.type === 0x00 && d.body.length >= 10 && (d.body[0] & 0x80) !== 0) information = d.body.readBigUInt64BE(2);
      if (d.type === 0x01 && d.body.length >= 10) commandSpecific = d.body.readBigUInt64BE(2);
      // §4.5.2.4: sense key specific (02h), SKSV in bit 7 of body byte 2.
      if (d.type === 0x02 && d.body.length >= 5 && (d.body[2] & 0x80) !== 0) senseKeySpecific = Buffer.from(d.body.subarray(2, 5));
      // §4.5.2.6: stream commands (04h).
      if (d.type === 0x04 && d.body.length >= 2) {
        filemark = (d.body[1] & 0x80) !== 0;
        eom = (d.body[1] & 0x40) !== 0;
        ili = (d.body[1] & 0x20) !== 0;
      }
    }
    return {
      format: 'descriptor',
      current: code === 0x72,
      key,
      keyName: SENSE_KEY_NAMES[key],
      asc: raw[2],
      ascq: raw[3],
      information,
      commandSpecific,
      senseKeySpecific,
      filemark,
      eom,
      ili,
      descriptors,
      raw,
    };
  }
  return undefined;
}

/** "ILLEGAL REQUEST 24h/00h" style text for messages. */
export function formatSense(s: SenseData): string {
  const h = (n: number): string => n.toString(16).padStart(2, '0');
  return `${s.keyName} ${h(s.asc)}h/${h(s.ascq)}h`;
}
