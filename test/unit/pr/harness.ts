// A fake device for driving the reservation handlers without the engine:
// hand-built CDBs and parameter lists, two (or more) I_T nexuses, and the
// engine's order of work (conflicts() first, then the handler).

import type { CommandContext, CommandOutcome, CommandSpec, DeviceView } from '../../../src/core/command.js';
import type { BackstoreOps, NexusHandle, NexusIdentity } from '../../../src/core/types.js';
import type { SenseReason } from '../../../src/core/sense-reasons.js';
import { prCommands, ReservationState, type PrNexusTarget } from '../../../src/core/pr.js';

export const TARGET = 'iqn.2024-01.org.lunkit:t1';

export function nexus(id: number, name: string, isid: string, tpgt = 1): NexusHandle {
  const identity: NexusIdentity = {
    initiatorName: name,
    initiatorPortId: `${name},i,0x${isid}`,
    targetName: TARGET,
    targetPortId: `${TARGET},t,0x${tpgt.toString(16).padStart(4, '0')}`,
    relativeTargetPortId: tpgt,
    targetPortGroup: 1,
    protocolId: 5,
    luns: { get: () => undefined, list: () => [] },
  };
  return { id, identity };
}

// Hand-written CDBs (SPC-4 §6.15.1 / §6.16.1, SBC-3 READ(10)/WRITE(10)).
export function prinCdb(sa: number, alloc: number): Buffer {
  return Buffer.from([0x5e, sa, 0, 0, 0, 0, 0, alloc >> 8, alloc & 0xff, 0]);
}
export function proutCdb(sa: number, type: number, paramLen = 24, scope = 0): Buffer {
  return Buffer.from([0x5f, sa, (scope << 4) | type, 0, 0, paramLen >>> 24, (paramLen >> 16) & 0xff, (paramLen >> 8) & 0xff, paramLen & 0xff, 0]);
}
export function proutParams(key: bigint, sark: bigint, flags = 0): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64BE(key, 0);
  b.writeBigUInt64BE(sark, 8);
  b[20] = flags;
  return b;
}
export const READ10 = Buffer.from([0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
export const WRITE10 = Buffer.from([0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
export const MODE_SENSE6 = Buffer.from([0x1a, 0, 0x3f, 0, 255, 0]);
export const INQUIRY = Buffer.from([0x12, 0, 0, 0, 36, 0]);
export const TUR = Buffer.from([0, 0, 0, 0, 0, 0]);
export const RESERVE6 = Buffer.from([0x16, 0, 0, 0, 0, 0]);
export const RELEASE6 = Buffer.from([0x17, 0, 0, 0, 0, 0]);

export const SA = { REGISTER: 0, RESERVE: 1, RELEASE: 2, CLEAR: 3, PREEMPT: 4, PREEMPT_AND_ABORT: 5, REGISTER_IGNORE: 6 } as const;
export const TYPES = { WE: 1, EA: 3, WE_RO: 5, EA_RO: 6, WE_AR: 7, EA_AR: 8 } as const;

/** A spec for commands pr.ts does not own (READ, WRITE...): conflicts() only looks at the CDB. */
function foreignSpec(cdb: Buffer): CommandSpec {
  return {
    opcode: cdb[0],
    name: `op ${cdb[0]}`,
    cdbLength: cdb.length,
    usage: [],
    direction: 'none',
    transferLength: () => 0,
    handler: () => ({ kind: 'good' }),
  };
}

export interface Ua {
  target: PrNexusTarget;
  reason: SenseReason;
}

export class FakeLu {
  readonly uas: Ua[] = [];
  readonly aborted: string[][] = [];
  readonly st: ReservationState;
  readonly device: DeviceView;

  constructor() {
    this.st = new ReservationState({ unitAttention: (target, reason) => this.uas.push({ target, reason }) });
    this.st.onAbortNexusTasks = (ports) => this.aborted.push(ports);
    const backstore = { kind: 'fake', name: 'fake', size: 512 * 16, blockSize: 512 } as unknown as BackstoreOps;
    this.device = {
      name: 'lu0',
      backstore,
      blockSize: 512,
      blockCount: 16n,
      writeCacheEnabled: true,
      deviceWriteProtected: false,
      thin: false,
      lockRange: async () => () => undefined,
      reservations: this.st,
    };
  }

  /** What the engine does: RESERVATION CONFLICT if conflicts() says so, else the handler (or GOOD for foreign commands). */
  async run(n: NexusHandle, cdb: Buffer, dataOut: Buffer = Buffer.alloc(0)): Promise<CommandOutcome> {
    const spec = prCommands.find((s) => s.opcode === cdb[0] && (s.serviceAction === undefined || s.serviceAction === (cdb[1] & 0x1f)))
      ?? prCommands.find((s) => s.opcode === cdb[0]);
    const effective = spec ?? foreignSpec(cdb);
    if (this.st.conflicts(n, effective, cdb)) return { kind: 'reservation-conflict' };
    if (!spec) return { kind: 'good' };
    const ctx: CommandContext = {
      cmd: { nexus: n, lun: 0, cdb, tag: 1, attr: 'simple', expectedLength: dataOut.length, direction: dataOut.length ? 'write' : 'read', dataOut },
      cdb,
      nexus: n,
      lun: 0,
      mapping: { device: { name: 'lu0', serial: 'x' }, readOnly: false },
      device: this.device,
      dataOut,
      writeProtected: false,
    };
    return spec.handler(ctx);
  }

  prout(n: NexusHandle, sa: number, type: number, key: bigint, sark: bigint, flags = 0): Promise<CommandOutcome> {
    return this.run(n, proutCdb(sa, type), proutParams(key, sark, flags));
  }

  async prin(n: NexusHandle, sa: number, alloc = 16384): Promise<Buffer> {
    const out = await this.run(n, prinCdb(sa, alloc));
    if (out.kind !== 'good' || !out.data) throw new Error(`PRIN failed: ${JSON.stringify(out)}`);
    return out.data;
  }

  async keys(n: NexusHandle): Promise<{ gen: number; keys: bigint[] }> {
    const d = await this.prin(n, 0);
    const len = d.readUInt32BE(4);
    const keys: bigint[] = [];
    for (let off = 8; off < 8 + len; off += 8) keys.push(d.readBigUInt64BE(off));
    return { gen: d.readUInt32BE(0), keys };
  }

  async reservation(n: NexusHandle): Promise<{ key: bigint; type: number } | null> {
    const d = await this.prin(n, 1);
    if (d.readUInt32BE(4) === 0) return null;
    return { key: d.readBigUInt64BE(8), type: d[21] & 0x0f };
  }

  uaReasonsFor(n: NexusHandle): SenseReason[] {
    return this.uas
      .filter((u) => u.target.initiatorPortId === n.identity.initiatorPortId && (u.target.targetPortId === '*' || u.target.targetPortId === n.identity.targetPortId))
      .map((u) => u.reason);
  }
}

export const GOOD: CommandOutcome = { kind: 'good' };
export const CONFLICT: CommandOutcome = { kind: 'reservation-conflict' };
