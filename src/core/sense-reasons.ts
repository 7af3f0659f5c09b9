// The one table of SCSI outcomes a handler may report (STYLE.md §7, LIO's
// sense_detail_table). Each reason maps to a sense key and ASC/ASCQ
// (SPC-4 §4.5.6 table 28 / Annex D). sense.ts turns a reason into wire bytes.

/** Sense keys (SPC-4 §4.5.6 table 27). */
export const SenseKey = {
  NO_SENSE: 0x0,
  RECOVERED_ERROR: 0x1,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  BLANK_CHECK: 0x8,
  VENDOR_SPECIFIC: 0x9,
  COPY_ABORTED: 0xa,
  ABORTED_COMMAND: 0xb,
  VOLUME_OVERFLOW: 0xd,
  MISCOMPARE: 0xe,
  COMPLETED: 0xf,
} as const;

export interface SenseDetail {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
}

const K = SenseKey;

export const SenseReasons = {
  NO_SENSE: { key: K.NO_SENSE, asc: 0x00, ascq: 0x00 },

  // ILLEGAL REQUEST
  INVALID_OPCODE: { key: K.ILLEGAL_REQUEST, asc: 0x20, ascq: 0x00 },
  INVALID_FIELD_IN_CDB: { key: K.ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00 },
  INVALID_FIELD_IN_PARAMETER_LIST: { key: K.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x00 },
  PARAMETER_LIST_LENGTH_ERROR: { key: K.ILLEGAL_REQUEST, asc: 0x1a, ascq: 0x00 },
  PARAMETER_VALUE_INVALID: { key: K.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x02 },
  LBA_OUT_OF_RANGE: { key: K.ILLEGAL_REQUEST, asc: 0x21, ascq: 0x00 },
  LUN_NOT_SUPPORTED: { key: K.ILLEGAL_REQUEST, asc: 0x25, ascq: 0x00 },
  SAVING_PARAMETERS_NOT_SUPPORTED: { key: K.ILLEGAL_REQUEST, asc: 0x39, ascq: 0x00 },
  INSUFFICIENT_REGISTRATION_RESOURCES: { key: K.ILLEGAL_REQUEST, asc: 0x55, ascq: 0x04 },
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: { key: K.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x04 },
  MEDIUM_REMOVAL_PREVENTED: { key: K.ILLEGAL_REQUEST, asc: 0x53, ascq: 0x02 },
  INVALID_FIELD_IN_INFORMATION_UNIT: { key: K.ILLEGAL_REQUEST, asc: 0x0e, ascq: 0x03 },
  TOO_MANY_SEGMENT_DESCRIPTORS: { key: K.ILLEGAL_REQUEST, asc: 0x26, ascq: 0x08 },
  INVALID_ADDRESS_FOR_WRITE: { key: K.ILLEGAL_REQUEST, asc: 0x21, ascq: 0x02 },

  // DATA PROTECT
  WRITE_PROTECTED: { key: K.DATA_PROTECT, asc: 0x27, ascq: 0x00 },
  SPACE_ALLOCATION_FAILED: { key: K.DATA_PROTECT, asc: 0x27, ascq: 0x07 },

  // MEDIUM ERROR
  MEDIUM_ERROR_READ: { key: K.MEDIUM_ERROR, asc: 0x11, ascq: 0x00 },
  MEDIUM_ERROR_WRITE: { key: K.MEDIUM_ERROR, asc: 0x0c, ascq: 0x00 },
  MEDIUM_LOAD_OR_EJECT_FAILED: { key: K.MEDIUM_ERROR, asc: 0x53, ascq: 0x00 },

  // MISCOMPARE
  MISCOMPARE_DURING_VERIFY: { key: K.MISCOMPARE, asc: 0x1d, ascq: 0x00 },

  // HARDWARE ERROR
  INTERNAL_TARGET_FAILURE: { key: K.HARDWARE_ERROR, asc: 0x44, ascq: 0x00 },
  LOGICAL_UNIT_COMMUNICATION_FAILURE: { key: K.HARDWARE_ERROR, asc: 0x08, ascq: 0x00 },

  // NOT READY
  NOT_READY_CAUSE_NOT_REPORTABLE: { key: K.NOT_READY, asc: 0x04, ascq: 0x00 },
  NOT_READY_BECOMING_READY: { key: K.NOT_READY, asc: 0x04, ascq: 0x01 },
  NOT_READY_MANUAL_INTERVENTION: { key: K.NOT_READY, asc: 0x04, ascq: 0x03 },
  NOT_READY_STOPPED: { key: K.NOT_READY, asc: 0x04, ascq: 0x02 },
  MEDIUM_NOT_PRESENT: { key: K.NOT_READY, asc: 0x3a, ascq: 0x00 },

  // UNIT ATTENTION (SPC-4 §5.14 / annex D)
  UA_POWER_ON_RESET: { key: K.UNIT_ATTENTION, asc: 0x29, ascq: 0x00 },
  UA_POWER_ON_OCCURRED: { key: K.UNIT_ATTENTION, asc: 0x29, ascq: 0x01 },
  UA_BUS_DEVICE_RESET: { key: K.UNIT_ATTENTION, asc: 0x29, ascq: 0x03 },
  UA_IT_NEXUS_LOSS: { key: K.UNIT_ATTENTION, asc: 0x29, ascq: 0x07 },
  UA_PARAMETERS_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x00 },
  UA_MODE_PARAMETERS_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x01 },
  UA_RESERVATIONS_PREEMPTED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x03 },
  UA_RESERVATIONS_RELEASED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x04 },
  UA_REGISTRATIONS_PREEMPTED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x05 },
  UA_ASYMMETRIC_ACCESS_STATE_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x06 },
  UA_CAPACITY_DATA_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x2a, ascq: 0x09 },
  UA_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: { key: K.UNIT_ATTENTION, asc: 0x2f, ascq: 0x00 },
  UA_COMMANDS_CLEARED_BY_POWER_LOSS: { key: K.UNIT_ATTENTION, asc: 0x2f, ascq: 0x01 },
  UA_INQUIRY_DATA_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x3f, ascq: 0x03 },
  UA_REPORTED_LUNS_DATA_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x3f, ascq: 0x0e },
  UA_MEDIUM_MAY_HAVE_CHANGED: { key: K.UNIT_ATTENTION, asc: 0x28, ascq: 0x00 },

  // ABORTED COMMAND
  OVERLAPPED_COMMANDS: { key: K.ABORTED_COMMAND, asc: 0x4e, ascq: 0x00 },
  INITIATOR_DETECTED_ERROR: { key: K.ABORTED_COMMAND, asc: 0x48, ascq: 0x00 },
  DATA_PHASE_ERROR: { key: K.ABORTED_COMMAND, asc: 0x4b, ascq: 0x00 },
  COMMAND_ABORTED_NO_ASC: { key: K.ABORTED_COMMAND, asc: 0x00, ascq: 0x00 },

  // Logical unit failures
  LOGICAL_UNIT_FAILURE: { key: K.HARDWARE_ERROR, asc: 0x3e, ascq: 0x01 },
} as const satisfies Record<string, SenseDetail>;

export type SenseReason = keyof typeof SenseReasons;

/** All reasons, for tests and diagnostics. */
export const allSenseReasons = Object.keys(SenseReasons) as SenseReason[];

export function senseDetail(reason: SenseReason): SenseDetail {
  return SenseReasons[reason];
}

/** True for reasons that are unit attentions (sense key UNIT ATTENTION). */
export function isUnitAttention(reason: SenseReason): boolean {
  return SenseReasons[reason].key === K.UNIT_ATTENTION;
}
