// What the NBD fabric needs from the outside, in one module that imports
// nothing of the fabric itself (so server.ts and connection.ts do not import
// each other): the core's block door, the export table's entries, a logger,
// and who a connection's peer is.

import type { BlockNexus, FabricOps, NexusHandle, NexusIdentity, ScsiDeviceHandle } from '../../core/index.js';

/** What the fabric needs of the SCSI core (ScsiCore satisfies it). */
export interface NbdCore {
  openBlockNexus(identity: NexusIdentity, fabric: FabricOps): BlockNexus;
  closeNexus(nexus: NexusHandle): void;
}

/** SPC-4 table 444: 0x0f is "no specific protocol", NBD has no identifier of its own. */
export const NBD_PROTOCOL_ID = 0x0f;

export interface NbdExportConfig {
  device: ScsiDeviceHandle;
  /** Refuse writes on this export even if the LU is writable. */
  readOnly?: boolean;
  /** Shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION. */
  description?: string;
}

export interface NbdLogger {
  debug?(msg: string, fields?: Record<string, unknown>): void;
  info?(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
  error?(msg: string, fields?: Record<string, unknown>): void;
}

export interface PeerInfo {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** Distinguishes nexuses of the same peer address and port over time. */
  connectionId: number;
}
