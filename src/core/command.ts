// The contract between the core's dispatcher (engine.ts) and the command
// handlers (spc-*.ts, sbc-*.ts, pr.ts ...). A handler gets a decoded context
// and returns an outcome value; it never throws for a SCSI condition
// (STYLE.md §7). Unexpected exceptions are caught by the engine and become
// HARDWARE ERROR / INTERNAL TARGET FAILURE.

import type { BackstoreOps, LunMapping, NexusHandle, ScsiCommand } from './types.js';
import type { SenseReason } from './sense-reasons.js';

/** Where in the CDB or parameter list an INVALID FIELD points (SPC-4 §4.5.2.4.2 sense-key specific). */
export interface FieldPointer {
  /** true: the field is in the CDB; false: in the parameter list (data-out). */
  inCdb: boolean;
  byte: number;
  /** Bit number 0..7, or undefined when the whole byte is meant. */
  bit?: number;
}

export type CommandOutcome =
  | { kind: 'good'; data?: Buffer; /** status CONDITION MET (PRE-FETCH) */ conditionMet?: boolean }
  | {
      kind: 'check';
      reason: SenseReason;
      /** INFORMATION field (e.g. the LBA of a miscompare or medium error). */
      info?: bigint | number;
      field?: FieldPointer;
      /** Data-In to return along with the check condition (rare). */
      data?: Buffer;
    }
  | { kind: 'reservation-conflict' }
  | { kind: 'busy' }
  | { kind: 'task-set-full' };

/** What an SBC/SPC handler can see of the logical unit. */
export interface DeviceView {
  readonly name: string;
  readonly backstore: BackstoreOps;
  readonly blockSize: number;
  /** Number of logical blocks (size / blockSize). */
  readonly blockCount: bigint;
  /** Write cache enabled (caching mode page WCE). */
  readonly writeCacheEnabled: boolean;
  /** Software write protect (control mode page SWP) or read-only device. */
  readonly deviceWriteProtected: boolean;
  /** Thin provisioning enabled (LBPME). */
  readonly thin: boolean;
  /**
   * Exclusive LBA range lock: COMPARE AND WRITE holds it across its read,
   * compare and write; every other write takes it for its range so a compare
   * and write is atomic against all writers. Returns a release function.
   */
  lockRange(lba: bigint, blocks: number): Promise<() => void>;
  /**
   * The LU's reservation state (persistent reservations and RESERVE(6)).
   * pr.ts owns the concrete class; handlers there downcast.
   */
  readonly reservations: ReservationHooks;
}

/** What the engine needs of the reservation state (SPC-4 §5.13). */
export interface ReservationHooks {
  /** true: this command from this nexus gets RESERVATION CONFLICT (SPC-4 table 54). */
  conflicts(nexus: NexusHandle, spec: CommandSpec, cdb: Buffer): boolean;
  /** The same for a block-nexus operation that reads or changes the medium. */
  accessConflicts(nexus: NexusHandle, access: 'read' | 'write'): boolean;
  /** The nexus is gone: release a RESERVE(6) reservation it held; PR registrations stay. */
  nexusLost(nexus: NexusHandle): void;
  /** LOGICAL UNIT RESET / target reset: release RESERVE(6) reservations; PR state stays. */
  reset(): void;
}

export interface CommandContext {
  readonly cmd: ScsiCommand;
  readonly cdb: Buffer;
  readonly nexus: NexusHandle;
  readonly lun: number;
  readonly mapping: LunMapping;
  readonly device: DeviceView;
  /**
   * Data-Out for this command, already trimmed to what the command may use:
   * min(expectedLength, the CDB's transfer length) bytes.
   */
  readonly dataOut: Buffer;
  /** Write-protected for this nexus: device protection or a read-only mapping. */
  readonly writeProtected: boolean;
}

export type CommandHandler = (ctx: CommandContext) => Promise<CommandOutcome> | CommandOutcome;

/** One supported command: the unit of the dispatch table and of REPORT SUPPORTED OPERATION CODES. */
export interface CommandSpec {
  opcode: number;
  /** Service action for opcodes that have one (0x9E, 0xA3, 0x5E, 0x5F, ...). */
  serviceAction?: number;
  name: string;
  /** CDB length in bytes. */
  cdbLength: number;
  /**
   * CDB usage map for REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35.3): byte i
   * has the bits a client may set in CDB byte i. Byte 0 is the opcode.
   */
  usage: number[];
  direction: 'none' | 'read' | 'write';
  /**
   * Transfer length in bytes implied by the CDB (blocks x block size for
   * READ/WRITE, the allocation length for SPC data-in commands, the parameter
   * list length for data-out). Residuals compare it with the transport's
   * expected length.
   */
  transferLength(cdb: Buffer, blockSize: number): number;
  /**
   * For data-out commands that carry whole blocks (WRITE, VERIFY BYTCHK=1...):
   * true means an overflow writes only the whole blocks that arrived.
   */
  blockData?: boolean;
  /** Allowed while the LU has a unit attention pending? (INQUIRY, REPORT LUNS, REQUEST SENSE) */
  allowedWithUnitAttention?: boolean;
  /** Command may run under a reservation held by another nexus (SPC-4 table 54/5.13). */
  reservationExempt?: boolean | ((cdb: Buffer) => boolean);
  /** Changes the medium: refused with WRITE PROTECTED when write-protected. */
  writes?: boolean;
  /** Timeout hint for RSOC's command timeouts descriptor, seconds. */
  nominalTimeout?: number;
  /**
   * Checks that need only the CDB and the device (LBA range, transfer length
   * against the limit), run by ScsiCore.prepare() before a fabric collects
   * Data-Out; the handler repeats them. Only data-out commands need one.
   */
  prepare?: (cdb: Buffer, device: DeviceView) => CommandOutcome | undefined;
  handler: CommandHandler;
}
