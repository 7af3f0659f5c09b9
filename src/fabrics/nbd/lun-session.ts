// One NBD client's nexus into the core: the export's device as LUN 0, every
// request a CDB through ScsiCore.submit(), exactly like an iSCSI session
// (ARCHITECTURE.md "One door into the core"). Also probes the LU's geometry
// with ordinary SCSI commands, so the fabric never looks inside a backstore.

import type {
  FabricOps,
  LunMap,
  LunMapping,
  NexusHandle,
  NexusIdentity,
  ScsiCommand,
  ScsiDeviceHandle,
  ScsiResponse,
  TmfRequest,
  TmfResponse,
} from '../../core/types.js';
import { ScsiStatus } from '../../core/types.js';
import { modeSense6, parseReadCapacity16, readCapacity16, senseCodes, testUnitReady, type ExportGeometry } from './commands.js';

/** What the fabric needs of the SCSI core (ScsiCore satisfies it). */
export interface NbdCore {
  openNexus(identity: NexusIdentity, fabric: FabricOps): NexusHandle;
  closeNexus(nexus: NexusHandle): void;
  submit(cmd: ScsiCommand): Promise<ScsiResponse>;
  taskManagement(req: TmfRequest): Promise<TmfResponse>;
}

/** SPC-4 table 444: 0x0f is "no specific protocol", NBD has no identifier of its own. */
export const NBD_PROTOCOL_ID = 0x0f;

const SK_UNIT_ATTENTION = 0x6;
/** A UA reports an event, not a failure; resubmit a few times before giving up. */
const UA_RETRIES = 4;

export interface PeerInfo {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** Distinguishes nexuses of the same peer address and port over time. */
  connectionId: number;
}

class SingleLunMap implements LunMap {
  constructor(private readonly mapping: LunMapping) {}
  get(lun: number): LunMapping | undefined {
    return lun === 0 ? this.mapping : undefined;
  }
  list(): number[] {
    return [0];
  }
}

export class LunSession {
  private nextTag = 1;
  private closed = false;

  private constructor(
    private readonly core: NbdCore,
    readonly nexus: NexusHandle,
    readonly geometry: ExportGeometry,
  ) {}

  /** Opens the nexus and reads the LU's geometry; closes the nexus again on failure. */
  static async open(
    core: NbdCore,
    fabric: FabricOps,
    peer: PeerInfo,
    exportName: string,
    device: ScsiDeviceHandle,
    readOnly: boolean,
  ): Promise<LunSession> {
    const identity: NexusIdentity = {
      initiatorName: `nbd:${peer.remoteAddress}`,
      initiatorPortId: `nbd:${peer.remoteAddress}:${peer.remotePort},c${peer.connectionId}`,
      targetName: `nbd:${exportName}`,
      targetPortId: `nbd:${peer.localAddress}:${peer.localPort}`,
      relativeTargetPortId: 1,
      targetPortGroup: 0,
      protocolId: NBD_PROTOCOL_ID,
      luns: new SingleLunMap({ device, readOnly }),
    };
    const nexus = core.openNexus(identity, fabric);
    try {
      const probe = new LunSession(core, nexus, {
        blockSize: 512,
        size: 0n,
        thin: false,
        unmapReadsZero: false,
        writeProtected: false,
      });
      // A new nexus starts with POWER ON/RESET pending (SAM-5 §5.14): consume it.
      await probe.run(testUnitReady(), 'none', 0);
      const cap = await probe.run(readCapacity16(), 'read', 32);
      if (cap.status !== ScsiStatus.GOOD || !cap.dataIn) throw new Error(`READ CAPACITY(16) failed on ${device.name}`);
      const rc = parseReadCapacity16(cap.dataIn);
      const ms = await probe.run(modeSense6(), 'read', 255);
      const wp = ms.status === ScsiStatus.GOOD && ms.dataIn !== undefined && ms.dataIn.length >= 3 && (ms.dataIn[2] & 0x80) !== 0;
      return new LunSession(core, nexus, {
        blockSize: rc.blockSize,
        size: rc.blocks * BigInt(rc.blockSize),
        thin: rc.thin,
        unmapReadsZero: rc.unmapReadsZero,
        writeProtected: wp,
      });
    } catch (e) {
      core.closeNexus(nexus);
      throw e;
    }
  }

  /**
   * Submits one CDB to LUN 0, resubmitting after unit attentions. A READ may
   * answer with a view of `dataInBuffer` (ScsiCommand.dataInBuffer).
   */
  async run(
    cdb: Buffer,
    direction: 'none' | 'read' | 'write',
    expectedLength: number,
    dataOut?: Buffer,
    dataInBuffer?: Buffer,
  ): Promise<ScsiResponse> {
    let res: ScsiResponse | undefined;
    for (let i = 0; i <= UA_RETRIES; i++) {
      res = await this.core.submit({
        nexus: this.nexus,
        lun: 0,
        cdb,
        tag: this.nextTag++ >>> 0,
        attr: 'simple',
        expectedLength,
        direction,
        dataOut,
        dataInBuffer,
      });
      if (res.status !== ScsiStatus.CHECK_CONDITION || senseCodes(res.sense)?.key !== SK_UNIT_ATTENTION) return res;
    }
    return res as ScsiResponse;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.core.closeNexus(this.nexus);
  }
}
