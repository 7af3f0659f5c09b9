// Loopback fabric (LIO's tcm_loop): CDB in, status/sense/data out, no
// sockets. The default harness for core tests and a way for in-process code
// (FUSE, tools) to talk SCSI to a LU.

import type { ScsiCore } from '../../core/engine.js';
import type {
  DataDirection,
  FabricOps,
  LunMap,
  LunMapping,
  NexusHandle,
  NexusIdentity,
  ScsiDeviceHandle,
  ScsiResponse,
  TaskAttr,
  TmfFunction,
  TmfResponse,
} from '../../core/types.js';

/** A LunMap the owner can change at any time. */
export class MutableLunMap implements LunMap {
  private readonly map = new Map<number, LunMapping>();

  get(lun: number): LunMapping | undefined {
    return this.map.get(lun);
  }

  list(): number[] {
    return [...this.map.keys()].sort((a, b) => a - b);
  }

  set(lun: number, device: ScsiDeviceHandle, readOnly = false): this {
    this.map.set(lun, { device, readOnly });
    return this;
  }

  delete(lun: number): boolean {
    return this.map.delete(lun);
  }
}

export interface LoopbackNexusOptions {
  initiatorName?: string;
  /** ISID-like suffix making the initiator port id unique. */
  isid?: string;
  targetName?: string;
  tpgt?: number;
  relativeTargetPortId?: number;
  targetPortGroup?: number;
  luns?: MutableLunMap;
}

export interface LoopbackCommandOptions {
  dataOut?: Buffer;
  /** Default: the data-out length for writes, else 65536. */
  expectedLength?: number;
  attr?: TaskAttr;
  direction?: DataDirection;
  tag?: number;
}

export interface LoopbackResponse extends ScsiResponse {
  tag: number;
}

/** One I_T nexus over the loopback fabric. */
export class LoopbackNexus {
  readonly handle: NexusHandle;
  readonly luns: MutableLunMap;
  /** LUNs the core announced a unit attention for (FabricOps.notifyUnitAttention). */
  readonly uaNotices: number[] = [];
  private nextTag = 1;
  closedByCore: string | undefined;

  constructor(
    private readonly core: ScsiCore,
    readonly fabric: LoopbackFabric,
    identity: NexusIdentity,
  ) {
    this.luns = identity.luns as MutableLunMap;
    this.handle = core.openNexus(identity, fabric);
  }

  /** Issue a command; resolves with the core's response (never rejects). */
  command(lun: number, cdb: Buffer | number[], opts: LoopbackCommandOptions = {}): Promise<LoopbackResponse> {
    return this.send(lun, cdb, opts).response;
  }

  /** Issue a command and return its tag at once (for ABORT TASK / QUERY TASK tests). */
  send(lun: number, cdb: Buffer | number[], opts: LoopbackCommandOptions = {}): { tag: number; response: Promise<LoopbackResponse> } {
    const tag = opts.tag ?? this.nextTag++;
    const cdbBuf = Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb);
    const dataOut = opts.dataOut;
    const direction: DataDirection = opts.direction ?? (dataOut ? 'write' : 'read');
    const expectedLength = opts.expectedLength ?? (dataOut ? dataOut.length : 65536);
    const response = this.core
      .submit({
        nexus: this.handle,
        lun,
        cdb: cdbBuf,
        tag,
        attr: opts.attr ?? 'simple',
        expectedLength,
        direction,
        dataOut,
      })
      .then((r) => ({ ...r, tag }));
    return { tag, response };
  }

  tmf(fn: TmfFunction, lun = 0, refTag?: number): Promise<TmfResponse> {
    return this.core.taskManagement({ nexus: this.handle, fn, lun, refTag });
  }

  close(): void {
    this.core.closeNexus(this.handle);
  }
}

let nextIsid = 1;

export class LoopbackFabric implements FabricOps {
  readonly name = 'loopback';
  private readonly byId = new Map<number, LoopbackNexus>();

  constructor(readonly core: ScsiCore) {}

  connect(opts: LoopbackNexusOptions = {}): LoopbackNexus {
    const initiatorName = opts.initiatorName ?? 'loop:initiator';
    const isid = opts.isid ?? (nextIsid++).toString(16).padStart(12, '0');
    const targetName = opts.targetName ?? 'loop:target';
    const tpgt = opts.tpgt ?? 1;
    const identity: NexusIdentity = {
      initiatorName,
      initiatorPortId: `${initiatorName},i,0x${isid}`,
      targetName,
      targetPortId: `${targetName},t,0x${tpgt.toString(16).padStart(4, '0')}`,
      relativeTargetPortId: opts.relativeTargetPortId ?? 1,
      targetPortGroup: opts.targetPortGroup ?? 0,
      protocolId: 0x0f, // SPC-4 table 444: no specific protocol
      luns: opts.luns ?? new MutableLunMap(),
    };
    const nexus = new LoopbackNexus(this.core, this, identity);
    this.byId.set(nexus.handle.id, nexus);
    return nexus;
  }

  notifyUnitAttention(nexus: NexusHandle, lun: number): void {
    this.byId.get(nexus.id)?.uaNotices.push(lun);
  }

  closeNexus(nexus: NexusHandle, reason: string): void {
    const n = this.byId.get(nexus.id);
    if (n) n.closedByCore = reason;
    this.core.closeNexus(nexus);
  }
}
