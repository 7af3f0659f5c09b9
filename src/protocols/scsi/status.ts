// SCSI status codes and persistent reservation types: numbers both the
// target's core and the initiator speak.

/** SAM status codes (SAM-5 §5.3.1). */
export const ScsiStatus = {
  GOOD: 0x00,
  CHECK_CONDITION: 0x02,
  CONDITION_MET: 0x04,
  BUSY: 0x08,
  RESERVATION_CONFLICT: 0x18,
  TASK_SET_FULL: 0x28,
  ACA_ACTIVE: 0x30,
  TASK_ABORTED: 0x40,
} as const;
export type ScsiStatusCode = (typeof ScsiStatus)[keyof typeof ScsiStatus];

/** PERSISTENT RESERVE OUT TYPE codes (SPC-4 §6.16.3 table 172). */
export const PrType = {
  WRITE_EXCLUSIVE: 1,
  EXCLUSIVE_ACCESS: 3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 8,
} as const;
