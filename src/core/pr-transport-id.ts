// iSCSI TransportIDs (SPC-4 §7.6.4.6): how PERSISTENT RESERVE OUT with
// SPEC_I_PT names other initiator ports, and how READ FULL STATUS reports the
// initiator port of each registration.
//
//   byte 0     FORMAT CODE (bits 7:6) | PROTOCOL IDENTIFIER (bits 3:0, 5 = iSCSI)
//   byte 1     reserved
//   bytes 2-3  ADDITIONAL LENGTH (n - 3), a multiple of 4
//   bytes 4-n  format 00b: iSCSI name, NUL terminated, zero padded
//              format 01b: iSCSI name + ",i,0x" + ISID (hex), NUL terminated, zero padded

/** SCSI transport protocol identifier for iSCSI (SPC-4 table 444). */
export const PROTOCOL_ID_ISCSI = 5;

/** Suffix of an initiator port id that stands for every ISID of a name (TransportID format 00b). */
export const ANY_ISID_SUFFIX = ',i,*';

const SEPARATOR = ',i,0x';

export interface ParsedTransportId {
  protocolId: number;
  initiatorName: string;
  /** "<name>,i,0x<isid>" (format 01b) or "<name>,i,*" (format 00b: every port of that name). */
  initiatorPortId: string;
}

export type TransportIdResult =
  | { ok: true; tid: ParsedTransportId; length: number }
  | { ok: false; /** offset in buf of the offending byte */ at: number };

/** Parse the TransportID at buf[offset...]; returns its total length (4 + ADDITIONAL LENGTH). */
export function parseTransportId(buf: Buffer, offset: number): TransportIdResult {
  if (offset + 4 > buf.length) return { ok: false, at: offset };
  const format = buf[offset] >> 6;
  const protocolId = buf[offset] & 0x0f;
  if (protocolId !== PROTOCOL_ID_ISCSI || (buf[offset] & 0x30) !== 0) return { ok: false, at: offset };
  if (format !== 0 && format !== 1) return { ok: false, at: offset };
  const additional = buf.readUInt16BE(offset + 2);
  // SPC-4 §7.6.4.6: ADDITIONAL LENGTH is a multiple of four.
  if (additional === 0 || additional % 4 !== 0) return { ok: false, at: offset + 2 };
  const end = offset + 4 + additional;
  if (end > buf.length) return { ok: false, at: offset + 2 };
  const body = buf.subarray(offset + 4, end);
  const nul = body.indexOf(0);
  if (nul <= 0) return { ok: false, at: offset + 4 };
  const text = body.toString('utf8', 0, nul);
  if (format === 0) {
    if (text.includes(',')) return { ok: false, at: offset + 4 };
    return { ok: true, tid: { protocolId, initiatorName: text, initiatorPortId: text + ANY_ISID_SUFFIX }, length: 4 + additional };
  }
  const sep = text.toLowerCase().indexOf(SEPARATOR);
  if (sep <= 0) return { ok: false, at: offset + 4 };
  const isid = text.slice(sep + SEPARATOR.length);
  // The ISID is 6 bytes: 12 hex digits (shorter spellings are tolerated, no other text).
  if (!/^[0-9a-fA-F]{1,12}$/.test(isid)) return { ok: false, at: offset + 4 + sep };
  const initiatorName = text.slice(0, sep);
  return {
    ok: true,
    tid: { protocolId, initiatorName, initiatorPortId: `${initiatorName}${SEPARATOR}${isid}` },
    length: 4 + additional,
  };
}

/**
 * Encode the TransportID of an initiator port for READ FULL STATUS. A port id
 * ending in ",i,*" (every ISID) becomes format 00b, anything else format 01b.
 */
export function encodeTransportId(protocolId: number, initiatorPortId: string): Buffer {
  const anyIsid = initiatorPortId.endsWith(ANY_ISID_SUFFIX);
  const text = anyIsid ? initiatorPortId.slice(0, -ANY_ISID_SUFFIX.length) : initiatorPortId;
  const bytes = Buffer.from(text, 'utf8');
  // NUL terminator, padded to a multiple of 4, at least 20 bytes (SPC-4 §7.6.4.6).
  const padded = Math.max(20, Math.ceil((bytes.length + 1) / 4) * 4);
  const out = Buffer.alloc(4 + padded);
  out[0] = ((anyIsid ? 0 : 1) << 6) | (protocolId & 0x0f);
  out.writeUInt16BE(padded, 2);
  bytes.copy(out, 4);
  return out;
}
