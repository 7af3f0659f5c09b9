// The two narrow contracts of the SCSI core (STYLE.md §2), plus the command and
// response values that cross the one door into the core.
//
// Every fabric (iSCSI, NBD, FUSE, loopback) builds a ScsiCommand and calls
// ScsiCore.submit(); every backstore implements BackstoreOps. The core never
// imports a fabric or a backstore implementation.

import type { SenseReason } from './sense-reasons.js';

/** SAM-5 task attributes. */
export type TaskAttr = 'simple' | 'ordered' | 'head-of-queue' | 'aca';

// SAM status codes (SAM-5 §5.3), shared with the initiator.
import type { ScsiStatusCode } from '../protocols/scsi/status.js';
export { ScsiStatus, type ScsiStatusCode } from '../protocols/scsi/status.js';

/**
 * An I_T nexus: one initiator port talking to one target port. Unit attentions,
 * reservations and task sets are kept per nexus (SAM-5 §4.6). A fabric creates
 * one per session (iSCSI), connection (NBD) or mount (FUSE) with
 * ScsiCore.openNexus() and closes it when the session ends.
 */
export interface NexusIdentity {
  /** Initiator name (iSCSI name, or a synthetic "nbd:..."/"fuse:..." name). */
  initiatorName: string;
  /**
   * Initiator port identifier: for iSCSI "<name>,i,0x<ISID hex>" (RFC 7143
   * §11.2 / SPC-4 TransportID format 01b); unique per nexus.
   */
  initiatorPortId: string;
  /** Target name (IQN for iSCSI). */
  targetName: string;
  /** Target port identifier: for iSCSI "<target>,t,0x<TPGT hex>". */
  targetPortId: string;
  /** Relative target port identifier (SPC-4 §7.8.6.6), 1-based. */
  relativeTargetPortId: number;
  /** Target port group (ALUA) this port belongs to. */
  targetPortGroup: number;
  /** SCSI transport protocol identifier (SPC-4 table 444): 5 = iSCSI. */
  protocolId: number;
  /** The LUNs this nexus sees: LUN number -> mapping. */
  luns: LunMap;
}

/** A LUN as one nexus sees it (an ACL's mapped LUN in LIO terms). */
export interface LunMapping {
  device: ScsiDeviceHandle;
  /** Mapped read-only for this initiator (LIO's write_protect on a mapped LUN). */
  readOnly: boolean;
}

/** Live view of the LUNs of a nexus; the fabric may change it at any time. */
export interface LunMap {
  get(lun: number): LunMapping | undefined;
  /** LUN numbers in ascending order. */
  list(): number[];
}

/** Opaque handle for a device created by ScsiCore.createDevice(). */
export interface ScsiDeviceHandle {
  readonly name: string;
  readonly serial: string;
}

export type DataDirection = 'none' | 'read' | 'write' | 'bidi';

/** One SCSI command as a fabric hands it to the core. */
export interface ScsiCommand {
  nexus: NexusHandle;
  /** LUN number (flat, 0..16383, decoded by the fabric from the 8-byte LUN). */
  lun: number;
  cdb: Buffer;
  /** Fabric task tag (iSCSI ITT); ABORT TASK and QUERY TASK refer to it. */
  tag: number;
  attr: TaskAttr;
  /**
   * Expected data transfer length announced by the transport (iSCSI EDTL,
   * NBD request length). Residuals are computed against it.
   */
  expectedLength: number;
  /** What the transport says the direction is (iSCSI R/W bits). */
  direction: DataDirection;
  /**
   * Write data as received, at most expectedLength bytes. The fabric collects
   * all of it before submit (unsolicited + solicited Data-Out).
   */
  dataOut?: Buffer | undefined;
  /**
   * Memory the fabric offers for Data-In. A READ whose data fits reads into it
   * and answers with a view of it (same ArrayBuffer), so a fabric can keep a
   * pool instead of the core allocating per command; the fabric must not reuse
   * it until the response has been sent. Too small, or a command that builds
   * its own data: ignored. Never touched once submit() has resolved.
   */
  dataInBuffer?: Buffer | undefined;
}

/** A command as prepare() sees it: everything but the data. */
export type ScsiCommandHeader = Omit<ScsiCommand, 'dataOut' | 'dataInBuffer'>;

export type ResidualKind = 'none' | 'underflow' | 'overflow';

/** What the core answers for one command. */
export interface ScsiResponse {
  status: ScsiStatusCode;
  /** Sense data (fixed or descriptor per the LUN's D_SENSE), when status is CHECK CONDITION. */
  sense?: Buffer | undefined;
  /** Data-In, already cut to min(allocation length, expectedLength). */
  dataIn?: Buffer | undefined;
  residualKind: ResidualKind;
  residualCount: number;
  /**
   * True when the task was aborted by task management: per SAM-5 the fabric
   * sends no response for it (iSCSI: none at all).
   */
  aborted?: boolean | undefined;
}

/** SAM-5 §7 task management functions. */
export type TmfFunction =
  | 'abort-task'
  | 'abort-task-set'
  | 'clear-task-set'
  | 'clear-aca'
  | 'lun-reset'
  | 'it-nexus-reset'
  | 'target-warm-reset'
  | 'target-cold-reset'
  | 'query-task'
  | 'query-task-set'
  | 'query-async-event';

export interface TmfRequest {
  nexus: NexusHandle;
  fn: TmfFunction;
  lun: number;
  /** Referenced task tag (ABORT TASK / QUERY TASK). */
  refTag?: number | undefined;
}

/** SAM-5 §7.11 service responses. */
export type TmfResponse =
  | 'function-complete'
  | 'function-succeeded'
  | 'function-rejected'
  | 'incorrect-lun'
  | 'task-does-not-exist'
  | 'not-supported';

/** Opaque per-nexus handle returned by ScsiCore.openNexus(). */
export interface NexusHandle {
  readonly id: number;
  readonly identity: NexusIdentity;
}

// ---------------------------------------------------------------------------
// BackstoreOps: the only thing a backstore implements (STYLE.md §2, §3).

/** Capabilities are declared once; VPD pages and NBD flags derive from them. */
export interface BackstoreCaps {
  /** Writes are possible at all (false: read-only medium). */
  canWrite: boolean;
  canFlush: boolean;
  /** Forced unit access is honoured (write + data sync). */
  canFua: boolean;
  /** Deallocation (UNMAP, WRITE SAME with UNMAP, NBD TRIM). */
  canUnmap: boolean;
  /** Efficient zeroing without writing data. */
  canWriteZeroes: boolean;
  /** extents() reports real allocation. */
  canExtents: boolean;
  /** Deallocated blocks read back as zeroes (SBC-3 LBPRZ). */
  unmapReadsZero: boolean;
  /** Thin-provisioned: logical blocks may be unmapped (SBC-3 LBPME). */
  thin: boolean;
  /** Rotation rate for VPD 0xB1: 1 = non-rotating. */
  rotationRate: number;
  /**
   * Several nexuses (NBD connections) may write and flush at once: every
   * write the backstore accepted is visible to every later read, and flush
   * (and FUA) covers all of them, whichever nexus sent them (NBD
   * CAN_MULTI_CONN). True for one object in one process; false for a
   * backstore whose flush covers only part of its writes.
   */
  canMultiConn: boolean;
}

export interface Extent {
  offset: number;
  length: number;
  /** true: deallocated (hole), reads as zeroes when unmapReadsZero. */
  hole: boolean;
}

/**
 * Byte-addressed block I/O. Offsets and lengths are multiples of blockSize and
 * inside [0, size); the core checks before calling. Errors are thrown as Node
 * errors with a `code` (EIO, ENOSPC, EROFS, ...); the core maps them to sense.
 */
export interface BackstoreOps {
  readonly kind: string;
  readonly name: string;
  readonly size: number;
  readonly blockSize: 512 | 4096;
  readonly caps: BackstoreCaps;
  /** Read into buf (buf.length bytes) from offset. */
  read(buf: Buffer, offset: number): Promise<void>;
  write(buf: Buffer, offset: number, opts?: { fua?: boolean }): Promise<void>;
  flush(): Promise<void>;
  unmap?(offset: number, length: number): Promise<void>;
  writeZeroes?(offset: number, length: number, opts?: { mayUnmap?: boolean; fua?: boolean }): Promise<void>;
  /** Extents covering [offset, offset+length), in order, merged. */
  extents?(offset: number, length: number): Promise<Extent[]>;
  /** Change the size (grow or shrink); optional. */
  resize?(size: number): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// FabricOps: how the core calls back into a fabric, outside of the
// request/response of submit() (LIO target_core_fabric_ops, reduced).

export interface FabricOps {
  /** Fabric name for diagnostics: "iscsi", "nbd", "fuse", "loopback". */
  readonly name: string;
  /**
   * A unit attention was queued for this nexus or LUN data changed; iSCSI may
   * send an AsyncEvent. Optional.
   */
  notifyUnitAttention?(nexus: NexusHandle, lun: number): void;
  /** The core asks to end a nexus (e.g. I_T NEXUS RESET, PR preempt-and-abort). */
  closeNexus?(nexus: NexusHandle, reason: string): void;
}

export type { SenseReason };
