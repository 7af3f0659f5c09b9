// One NBD client's nexus into the core: the export's device as LUN 0 behind
// the core's block door (core/block-nexus.ts), so reservations, write
// protection, the task set and statistics apply exactly as over iSCSI. The
// export's geometry is read from the door, never probed with CDBs.

import type { BlockGeometry, BlockNexus, FabricOps, LunMap, LunMapping, NexusIdentity, ScsiDeviceHandle } from '../../core/index.js';
import { LunkitError } from '../../protocols/errors.js';
import { NBD_PROTOCOL_ID, type NbdCore, type PeerInfo } from './ports.js';

/** An NBD export is always LUN 0 of its nexus. */
export const EXPORT_LUN = 0;

class SingleLunMap implements LunMap {
  constructor(private readonly mapping: LunMapping) {}
  get(lun: number): LunMapping | undefined {
    return lun === EXPORT_LUN ? this.mapping : undefined;
  }
  list(): number[] {
    return [EXPORT_LUN];
  }
}

export class ExportNexus {
  private closed = false;

  private constructor(
    private readonly core: NbdCore,
    readonly blocks: BlockNexus,
  ) {}

  /** Opens the nexus; fails (and closes it again) when the LU has no geometry to offer. */
  static open(core: NbdCore, fabric: FabricOps, peer: PeerInfo, exportName: string, device: ScsiDeviceHandle, readOnly: boolean): ExportNexus {
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
    const blocks = core.openBlockNexus(identity, fabric);
    const geo = blocks.geometry(EXPORT_LUN);
    if (typeof geo === 'string') {
      core.closeNexus(blocks.nexus);
      throw new LunkitError('ERR_NBD_EXPORT_UNAVAILABLE', `export "${exportName}" (${device.name}) is not available: ${geo}`);
    }
    return new ExportNexus(core, blocks);
  }

  get nexusId(): number {
    return this.blocks.nexus.id;
  }

  /** The LU as it is now (size and protection are read live; no unit attention needed). */
  get geometry(): BlockGeometry {
    const geo = this.blocks.geometry(EXPORT_LUN);
    if (typeof geo === 'string') throw new LunkitError('ERR_NBD_EXPORT_UNAVAILABLE', `export is not available: ${geo}`);
    return geo;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.core.closeNexus(this.blocks.nexus);
  }
}
