// Sense data for failures the iSCSI layer detects itself (a broken Data-Out
// sequence, a data digest error, a LUN removed under a command), as opposed
// to the core's outcomes, which come as sense reasons from core/sense.ts.

/** Fixed-format sense (SPC-4 §4.5.3) for failures the iSCSI layer detects itself. */
export function fabricSense(key: number, asc: number, ascq: number): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = key & 0x0f;
  s[7] = 10;
  s[12] = asc;
  s[13] = ascq;
  return s;
}

/** ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED: the LUN went away under the command. */
export const SENSE_LUN_NOT_SUPPORTED = fabricSense(0x05, 0x25, 0x00);

/** ABORTED COMMAND / DATA PHASE ERROR: a broken Data-Out sequence. */
export const SENSE_DATA_PHASE_ERROR = fabricSense(0x0b, 0x4b, 0x00);

/** ABORTED COMMAND / PROTOCOL SERVICE CRC ERROR: a data digest error (RFC 7143 §7.8). */
export const SENSE_CRC_ERROR = fabricSense(0x0b, 0x47, 0x05);
