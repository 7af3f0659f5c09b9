// A minimal CommandContext for calling SBC handlers directly, without the
// engine: a ramdisk (or any) backstore, a real LbaRangeLock, a fake nexus.

import type { CommandContext, CommandOutcome, CommandSpec, DeviceView } from '../../../src/core/command.js';
import type { BackstoreOps, NexusHandle, ScsiCommand } from '../../../src/core/types.js';
import { LbaRangeLock } from '../../../src/core/lba-lock.js';
import { sbcCommands } from '../../../src/core/sbc-commands.js';
import { RamdiskBackstore } from '../../../src/backstores/ramdisk/ramdisk.js';

export interface DeviceOpts {
  blockSize?: 512 | 4096;
  blocks?: number;
  thin?: boolean;
  writeCache?: boolean;
  backstore?: BackstoreOps;
}

export function makeDevice(opts: DeviceOpts = {}): DeviceView {
  const blockSize = opts.blockSize ?? 512;
  const blocks = opts.blocks ?? 2048;
  const backstore =
    opts.backstore ?? new RamdiskBackstore({ name: 'rd', size: blocks * blockSize, blockSize, chunkSize: 4096 });
  const lock = new LbaRangeLock();
  return {
    name: 'dev',
    backstore,
    blockSize: backstore.blockSize,
    blockCount: BigInt(backstore.size / backstore.blockSize),
    writeCacheEnabled: opts.writeCache ?? true,
    deviceWriteProtected: false,
    thin: opts.thin ?? true,
    lockRange: (lba, n) => lock.lock(lba, n),
    reservations: { conflicts: () => false, accessConflicts: () => false, nexusLost: () => undefined, reset: () => undefined },
  };
}

export interface CtxOpts {
  dataOut?: Buffer;
  expectedLength?: number;
  writeProtected?: boolean;
  nexusId?: number;
}

export function findSpec(cdb: Buffer): CommandSpec {
  const spec = sbcCommands.find(
    (s) => s.opcode === cdb[0] && (s.serviceAction === undefined || s.serviceAction === (cdb[1] & 0x1f)),
  );
  if (!spec) throw new Error(`no SBC spec for opcode 0x${cdb[0].toString(16)}`);
  return spec;
}

export function makeCtx(device: DeviceView, cdbBytes: number[] | Buffer, opts: CtxOpts = {}): CommandContext {
  const cdb = Buffer.from(cdbBytes);
  const spec = findSpec(cdb);
  const cdbLen = spec.transferLength(cdb, device.blockSize);
  const data = opts.dataOut ?? Buffer.alloc(0);
  const expectedLength = opts.expectedLength ?? (spec.direction === 'write' ? data.length : cdbLen);
  const nexus: NexusHandle = {
    id: opts.nexusId ?? 1,
    identity: {
      initiatorName: 'iqn.test:init',
      initiatorPortId: 'iqn.test:init,i,0x1',
      targetName: 'iqn.test:tgt',
      targetPortId: 'iqn.test:tgt,t,0x1',
      relativeTargetPortId: 1,
      targetPortGroup: 1,
      protocolId: 5,
      luns: { get: () => undefined, list: () => [] },
    },
  };
  const cmd: ScsiCommand = {
    nexus,
    lun: 0,
    cdb,
    tag: 1,
    attr: 'simple',
    expectedLength,
    direction: spec.direction,
    dataOut: data,
  };
  return {
    cmd,
    cdb,
    nexus,
    lun: 0,
    mapping: { device: { name: 'dev', serial: 's' }, readOnly: false },
    device,
    dataOut: data.subarray(0, Math.min(expectedLength, cdbLen)),
    writeProtected: opts.writeProtected ?? false,
  };
}

export async function run(device: DeviceView, cdb: number[] | Buffer, opts: CtxOpts = {}): Promise<CommandOutcome> {
  const ctx = makeCtx(device, cdb, opts);
  return findSpec(ctx.cdb).handler(ctx);
}

/** Reason of a check outcome, or the outcome kind. */
export function reasonOf(o: CommandOutcome): string {
  return o.kind === 'check' ? o.reason : o.kind;
}

export function dataOf(o: CommandOutcome): Buffer {
  if (o.kind !== 'good' || !o.data) throw new Error(`expected GOOD with data, got ${JSON.stringify(o)}`);
  return o.data;
}

// Hand-written CDB builders (deliberately naive: byte by byte).
export function be(value: bigint | number, bytes: number): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    out.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

export function cdb10(op: number, lba: bigint | number, len: number, byte1 = 0): number[] {
  return [op, byte1, ...be(lba, 4), 0, ...be(len, 2), 0];
}

export function cdb12(op: number, lba: bigint | number, len: number, byte1 = 0): number[] {
  return [op, byte1, ...be(lba, 4), ...be(len, 4), 0, 0];
}

export function cdb16(op: number, lba: bigint | number, len: number, byte1 = 0): number[] {
  return [op, byte1, ...be(lba, 8), ...be(len, 4), 0, 0];
}
