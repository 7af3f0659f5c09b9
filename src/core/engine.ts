// The SCSI core's one door (ARCHITECTURE.md "One door into the core"):
// every fabric submits commands here with its I_T nexus. The engine finds the
// LU, reports unit attentions, looks the CDB up in one dispatch table (SPC +
// SBC + PR specs), checks the CDB against the spec's usage map, reservations
// and write protection, orders the task in the LU's task set, runs the
// handler and turns its outcome into status, sense and residuals.

import { LunkitError } from '../protocols/errors.js';
import { CONTROL_NACA, findReservedBit } from '../protocols/scsi/cdb.js';
import { ScsiOpcode, serviceActionOf } from '../protocols/scsi/opcodes.js';
import type { CommandContext, CommandOutcome, CommandSpec, FieldPointer } from './command.js';
import {
  ScsiStatus,
  type BackstoreOps,
  type FabricOps,
  type LunMapping,
  type NexusHandle,
  type NexusIdentity,
  type ResidualKind,
  type ScsiCommand,
  type ScsiCommandHeader,
  type ScsiDeviceHandle,
  type ScsiResponse,
  type ScsiStatusCode,
  type TmfRequest,
  type TmfResponse,
} from './types.js';
import { ScsiDevice, type CoreInfo, type DeviceHost } from './device.js';
import { buildSense } from './sense.js';
import type { SenseReason } from './sense-reasons.js';
import { Task, allDoneWithin } from './task-set.js';
import type { MediumErrorState } from './io-guard.js';
import { runTmf, TMF_TASK_WAIT_MS, type TmfScope } from './tmr.js';
import { errnoToSense } from './errno.js';
import { checkCaps } from './block-ops.js';
import { BlockNexus, type BlockHost } from './block-nexus.js';
import { inquirySpec, standardInquiry } from './spc-inquiry.js';
import { modeCommands } from './spc-mode.js';
import { spcMiscCommands, reportLuns, requestSenseData } from './spc-misc.js';
import { sbcCommands, clearMediumRemovalPrevention, mediumRemovalPrevented } from './sbc-commands.js';
import { prCommands } from './pr.js';
import { CommandStats, CoreChannel, publishEvent, statsChannel, type CoreStatsSnapshot } from './stats.js';

const nexusOpenChannel = statsChannel(CoreChannel.NEXUS_OPEN);
const nexusCloseChannel = statsChannel(CoreChannel.NEXUS_CLOSE);
const tmfChannel = statsChannel(CoreChannel.TMF);
const lunChangeChannel = statsChannel(CoreChannel.LUN_CHANGE);

/** What ScsiCore.prepare() decides for a command before its Data-Out is collected. */
export type PrepareResult = { kind: 'respond'; response: ScsiResponse } | { kind: 'collect'; length: number };

export interface CoreOptions {
  /** T10 vendor identification, 8 ASCII characters (padded). */
  vendor?: string;
  /** Product identification, 16 ASCII characters (padded). */
  product?: string;
  /** Product revision level, 4 ASCII characters (padded). */
  revision?: string;
  /** How long a TMF (and removeDevice) waits for the tasks it aborted, ms (tmr.ts TMF_TASK_WAIT_MS). */
  tmfTaskWaitMs?: number;
}

/** What flushAll could not do. */
export interface FlushAllResult {
  /** LUs whose flush failed (or that are latched: io-guard.ts). */
  failed: Array<{ device: string; error: string }>;
  /** LUs whose flush had not finished when the time ran out. */
  timedOut: string[];
}

export interface DeviceOptions {
  /** Backstore/LU name: VPD 0x83 T10 vendor id, default serial and NAA. */
  name: string;
  /** Unit serial number (VPD 0x80); default derived from name. */
  serial?: string;
  /** 16 or 32 hex digits NAA identifier; default: locally assigned NAA 3 from name. */
  naa?: string;
  /** Initial WCE (default true). */
  writeCache?: boolean;
  /** Write protected LU (default: !backstore.caps.canWrite). */
  readOnly?: boolean;
  /** LBPME (default backstore.caps.thin). */
  thin?: boolean;
  /** INQUIRY RMB=1: START STOP UNIT LOEJ ejects/loads the medium (default false). */
  removable?: boolean;
}

/** SPC commands the core itself implements. */
export const spcCommands: readonly CommandSpec[] = [inquirySpec, ...modeCommands, ...spcMiscCommands];

class Nexus implements NexusHandle {
  closed = false;
  /** Per-nexus counters (stats.ts). */
  readonly stats = new CommandStats();
  readonly openedAt = Date.now();
  constructor(
    readonly id: number,
    readonly identity: NexusIdentity,
    readonly fabric: FabricOps,
  ) {}
}

const EMPTY = Buffer.alloc(0);
const ABORTED: ScsiResponse = Object.freeze({
  status: ScsiStatus.TASK_ABORTED,
  residualKind: 'none',
  residualCount: 0,
  aborted: true,
}) as ScsiResponse;

/**
 * Commands that do not touch the medium and so still work when a removable
 * medium is ejected; everything else gets NOT READY, MEDIUM NOT PRESENT.
 */
const MEDIUMLESS_OPCODES: ReadonlySet<number> = new Set([
  ScsiOpcode.INQUIRY,
  ScsiOpcode.REQUEST_SENSE,
  ScsiOpcode.REPORT_LUNS,
  ScsiOpcode.MODE_SENSE_6,
  ScsiOpcode.MODE_SENSE_10,
  ScsiOpcode.MODE_SELECT_6,
  ScsiOpcode.MODE_SELECT_10,
  ScsiOpcode.MAINTENANCE_IN,
  ScsiOpcode.MAINTENANCE_OUT,
  ScsiOpcode.PERSISTENT_RESERVE_IN,
  ScsiOpcode.PERSISTENT_RESERVE_OUT,
  ScsiOpcode.RESERVE_6,
  ScsiOpcode.RELEASE_6,
  ScsiOpcode.START_STOP_UNIT,
  ScsiOpcode.PREVENT_ALLOW_MEDIUM_REMOVAL,
]);

/** Dispatch key: the opcode, or opcode and service action for opcodes that have them. */
function saKey(opcode: number, sa: number): number {
  return 0x10000 + opcode * 0x10000 + sa;
}

interface Residual {
  kind: ResidualKind;
  count: number;
}

/** Residual of a transfer that moved `sent` of `expected` bytes when the CDB asked for `cdbLen`. */
function residualFor(expected: number, cdbLen: number, sent: number | undefined): Residual {
  if (sent !== undefined) {
    // Data-In: less than expected arrived -> underflow; the CDB asked more than expected -> overflow.
    if (sent < expected) return { kind: 'underflow', count: expected - sent };
    if (cdbLen > expected) return { kind: 'overflow', count: cdbLen - expected };
    return { kind: 'none', count: 0 };
  }
  if (cdbLen > expected) return { kind: 'overflow', count: cdbLen - expected };
  if (cdbLen < expected) return { kind: 'underflow', count: expected - cdbLen };
  return { kind: 'none', count: 0 };
}

/** The CDB's transfer length, 0 for a CDB too short to hold the field (refused later). */
function transferLengthOf(spec: CommandSpec, cdb: Buffer, blockSize: number): number {
  return cdb.length >= spec.cdbLength ? spec.transferLength(cdb, blockSize) : 0;
}

function nexusFields(n: Nexus): Record<string, string | number> {
  return {
    nexus: n.id,
    fabric: n.fabric.name,
    initiator: n.identity.initiatorName,
    initiatorPort: n.identity.initiatorPortId,
    target: n.identity.targetName,
  };
}

function checkOutcome(reason: SenseReason, field?: FieldPointer): CommandOutcome {
  return field ? { kind: 'check', reason, field } : { kind: 'check', reason };
}

export class ScsiCore implements DeviceHost, TmfScope {
  private readonly info: CoreInfo;
  /** Opcode (or saKey) -> spec. One Map lookup per command. */
  private readonly table = new Map<number, CommandSpec>();
  /** Opcodes whose specs are told apart by service action. */
  private readonly saOpcodes = new Set<number>();
  private readonly deviceSet = new Set<ScsiDevice>();
  private readonly nexusMap = new Map<number, Nexus>();
  private nextNexusId = 1;
  /** How long a TMF waits for its aborted tasks, ms; the daemon sets it from limits.tmfTaskWait. */
  tmfTaskWaitMs: number;

  constructor(opts: CoreOptions = {}) {
    this.tmfTaskWaitMs = opts.tmfTaskWaitMs ?? TMF_TASK_WAIT_MS;
    const commands = [...spcCommands, ...sbcCommands, ...prCommands];
    for (const spec of commands) if (spec.serviceAction !== undefined) this.saOpcodes.add(spec.opcode);
    for (const spec of commands) {
      const key = this.saOpcodes.has(spec.opcode) ? saKey(spec.opcode, spec.serviceAction ?? 0) : spec.opcode;
      if (this.table.has(key)) throw new LunkitError('ERR_INTERNAL', `duplicate command spec for ${spec.name}`);
      this.table.set(key, spec);
    }
    this.info = {
      vendor: opts.vendor ?? 'LUNKIT',
      product: opts.product ?? 'lunkit',
      revision: opts.revision ?? '0001',
      commands,
    };
  }

  /** The dispatch table's specs (REPORT SUPPORTED OPERATION CODES reports the same). */
  get commands(): readonly CommandSpec[] {
    return this.info.commands;
  }

  // -- devices and nexuses ------------------------------------------------------

  createDevice(backstore: BackstoreOps, opts: DeviceOptions): ScsiDeviceHandle {
    checkCaps(backstore);
    const dev = new ScsiDevice(backstore, opts, this.info, this);
    this.deviceSet.add(dev);
    publishEvent(
      lunChangeChannel,
      'info',
      () => `LU ${dev.name} created (${backstore.kind}, ${backstore.size} bytes)`,
      () => ({ change: 'created', device: dev.name, backstore: backstore.kind, sizeBytes: backstore.size }),
    );
    return dev;
  }

  async removeDevice(handle: ScsiDeviceHandle): Promise<void> {
    const dev = this.ownDevice(handle);
    if (!dev) return;
    dev.removed = true;
    // A task stuck in a hung backstore must not hang a configuration change; it ends aborted.
    await allDoneWithin(dev.taskSet.abortWhere(() => true), this.tmfTaskWaitMs);
    this.deviceSet.delete(dev);
    publishEvent(lunChangeChannel, 'info', () => `LU ${dev.name} removed`, () => ({ change: 'removed', device: dev.name }));
  }

  openNexus(identity: NexusIdentity, fabric: FabricOps): NexusHandle {
    const nexus = new Nexus(this.nextNexusId++, identity, fabric);
    this.nexusMap.set(nexus.id, nexus);
    publishEvent(
      nexusOpenChannel,
      'info',
      () => `${fabric.name} nexus ${nexus.id} opened: ${identity.initiatorPortId} -> ${identity.targetPortId}`,
      () => nexusFields(nexus),
    );
    // POWER ON/RESET is queued lazily: the first command of this nexus to each
    // LU finds no queue for it and starts one with that condition (ua.ts).
    return nexus;
  }

  /**
   * A nexus for a block fabric (NBD, FUSE): the same nexus as openNexus()
   * gives, with the block door on it (block-nexus.ts). Close it with
   * closeNexus(blockNexus.nexus).
   */
  openBlockNexus(identity: NexusIdentity, fabric: FabricOps): BlockNexus {
    return new BlockNexus(this.blockHost, this.openNexus(identity, fabric));
  }

  private readonly blockHost: BlockHost = {
    nexusStats: (handle) => this.nexusMap.get(handle.id)?.stats,
    deviceAt: (handle, lun) => this.deviceAt(handle, lun),
  };

  closeNexus(handle: NexusHandle): void {
    const nexus = this.nexusMap.get(handle.id);
    if (!nexus) return;
    nexus.closed = true;
    this.nexusMap.delete(nexus.id);
    for (const dev of this.deviceSet) {
      dev.taskSet.abortWhere((t) => t.nexusId === nexus.id);
      dev.reservations.nexusLost(nexus);
      clearMediumRemovalPrevention(dev.backstore, nexus.id);
      dev.ua.forget(nexus.id);
    }
    publishEvent(
      nexusCloseChannel,
      'info',
      () => `${nexus.fabric.name} nexus ${nexus.id} closed: ${nexus.identity.initiatorPortId} (${nexus.stats.commands} commands)`,
      () => ({ ...nexusFields(nexus), commands: nexus.stats.commands }),
    );
  }

  lunsChanged(nexuses?: Iterable<NexusHandle>): void {
    publishEvent(lunChangeChannel, 'info', () => 'LUN map changed', () => ({ change: 'luns-changed' }));
    for (const handle of nexuses ?? this.nexusMap.values()) {
      const nexus = this.nexusMap.get(handle.id);
      if (!nexus) continue;
      const luns = nexus.identity.luns;
      for (const lun of luns.list()) {
        const dev = this.ownDevice(luns.get(lun)?.device);
        // A LU this nexus has not used yet will report POWER ON first, which covers it.
        if (dev && dev.ua.knows(nexus.id)) dev.queueUnitAttention(nexus, 'UA_REPORTED_LUNS_DATA_CHANGED');
      }
    }
  }

  capacityChanged(handle: ScsiDeviceHandle): void {
    const dev = this.ownDevice(handle);
    if (!dev) return;
    dev.queueUnitAttentionAll('UA_CAPACITY_DATA_CHANGED');
    publishEvent(
      lunChangeChannel,
      'info',
      () => `LU ${dev.name} resized to ${dev.backstore.size} bytes`,
      () => ({ change: 'capacity-changed', device: dev.name, sizeBytes: dev.backstore.size }),
    );
  }

  /**
   * The LU's data was replaced under it (a qcow2 backstore reset to its
   * backing file): every nexus gets NOT READY TO READY CHANGE, MEDIUM MAY
   * HAVE CHANGED (ASC/ASCQ 28h/00h, the unit attention of a removable
   * medium that was swapped), so an initiator drops what it cached of the medium.
   */
  mediumChanged(handle: ScsiDeviceHandle): void {
    const dev = this.ownDevice(handle);
    if (!dev) return;
    dev.queueUnitAttentionAll('UA_MEDIUM_MAY_HAVE_CHANGED');
    publishEvent(
      lunChangeChannel,
      'info',
      () => `LU ${dev.name}: medium may have changed`,
      () => ({ change: 'medium-changed', device: dev.name, sizeBytes: dev.backstore.size }),
    );
  }

  /**
   * Waits until no backstore call of any LU is in progress (io-guard.ts), at
   * most `ms`: shutdown runs this after the fabrics aborted their tasks, so
   * the final flush covers writes still queued in libuv. Returns the LUs
   * still busy when the time ran out.
   */
  async quiesce(ms: number): Promise<string[]> {
    const devs = [...this.deviceSet];
    const idle = await Promise.all(devs.map((d) => d.backstore.whenIdle(ms)));
    return devs.filter((_, i) => !idle[i]).map((d) => d.name);
  }

  /**
   * Flushes every LU at once; each flush gets at most `ms` (default no
   * bound). Failures are returned, never thrown: a latched LU (io-guard.ts)
   * reports its latch.
   */
  async flushAll(ms?: number): Promise<FlushAllResult> {
    const out: FlushAllResult = { failed: [], timedOut: [] };
    const timers: NodeJS.Timeout[] = [];
    const flushes: Promise<void>[] = [];
    for (const dev of this.deviceSet) {
      if (!dev.backstore.caps.canFlush) continue;
      const flush = dev.backstore.flush().then(
        () => 'done' as const,
        (e: unknown) => {
          out.failed.push({ device: dev.name, error: e instanceof Error ? e.message : String(e) });
          return 'done' as const;
        },
      );
      const bounded =
        ms === undefined
          ? flush
          : Promise.race([flush, new Promise<'late'>((resolve) => timers.push(setTimeout(() => resolve('late'), ms)))]);
      flushes.push(bounded.then((r) => void (r === 'late' && out.timedOut.push(dev.name))));
    }
    await Promise.all(flushes);
    for (const t of timers) clearTimeout(t);
    return out;
  }

  /** The latch of a LU (io-guard.ts), or undefined. */
  mediumError(handle: ScsiDeviceHandle): Readonly<MediumErrorState> | undefined {
    return this.ownDevice(handle)?.mediumError;
  }

  /** An operator cleared a LU's latch: flushes and FUA writes are trusted again. Returns what was cleared. */
  clearMediumError(handle: ScsiDeviceHandle): MediumErrorState | undefined {
    const dev = this.ownDevice(handle);
    const was = dev?.backstore.clearMediumError();
    if (dev && was) {
      publishEvent(
        lunChangeChannel,
        'warn',
        () => `LU ${dev.name}: medium error cleared by the operator (was ${was.code} at ${new Date(was.at).toISOString()})`,
        () => ({ change: 'medium-error-cleared', device: dev.name, code: was.code }),
      );
    }
    return was;
  }

  /** A new device over the same backstore (a config change) keeps the old one's latch. */
  inheritMediumError(to: ScsiDeviceHandle, from: ScsiDeviceHandle): void {
    const a = this.ownDevice(to);
    const b = from instanceof ScsiDevice ? from : undefined;
    if (a && b) a.backstore.inheritMediumError(b.backstore);
  }

  // -- DeviceHost / TmfScope -----------------------------------------------------

  nexuses(): Iterable<NexusHandle> {
    return this.nexusMap.values();
  }

  devices(): Iterable<ScsiDevice> {
    return this.deviceSet;
  }

  deviceAt(nexus: NexusHandle, lun: number): ScsiDevice | undefined {
    return this.ownDevice(nexus.identity.luns.get(lun)?.device);
  }

  notifyUnitAttention(nexus: NexusHandle, device: ScsiDevice): void {
    const n = this.nexusMap.get(nexus.id);
    const notify = n?.fabric.notifyUnitAttention;
    if (!n || !notify) return;
    const luns = n.identity.luns;
    for (const lun of luns.list()) {
      if (luns.get(lun)?.device === device) notify.call(n.fabric, n, lun);
    }
  }

  targetOf(nexus: NexusHandle): { devices: ScsiDevice[]; nexuses: NexusHandle[] } {
    const id = nexus.identity;
    const nexuses: NexusHandle[] = [...this.nexusMap.values()].filter((n) => n.identity.protocolId === id.protocolId && n.identity.targetName === id.targetName);
    if (!nexuses.some((n) => n.id === nexus.id)) nexuses.push(nexus);
    const devices = new Set<ScsiDevice>();
    for (const n of nexuses) {
      for (const lun of n.identity.luns.list()) {
        const dev = this.ownDevice(n.identity.luns.get(lun)?.device);
        if (dev) devices.add(dev);
      }
    }
    return { devices: [...devices], nexuses };
  }

  endNexuses(except: NexusHandle, reason: string, which: Iterable<NexusHandle> = this.nexusMap.values()): void {
    for (const h of [...which]) {
      const n = this.nexusMap.get(h.id);
      if (!n || n.id === except.id) continue;
      // Only the fabric can drop its transport; it then calls closeNexus. A
      // fabric without closeNexus has no session to end.
      n.fabric.closeNexus?.(n, reason);
    }
  }

  abortTasksOf(device: ScsiDevice, nexusIds: Set<number>): void {
    device.taskSet.abortWhere((t) => nexusIds.has(t.nexusId));
  }

  private ownDevice(handle: ScsiDeviceHandle | undefined): ScsiDevice | undefined {
    if (!(handle instanceof ScsiDevice) || handle.removed || !this.deviceSet.has(handle)) return undefined;
    return handle;
  }

  // -- commands -----------------------------------------------------------------------

  /** Find the spec for a CDB: undefined for an unknown opcode, null for an unknown service action. */
  lookup(cdb: Buffer): CommandSpec | undefined | null {
    const op = cdb[0];
    if (this.saOpcodes.has(op)) return this.table.get(saKey(op, serviceActionOf(cdb))) ?? null;
    return this.table.get(op);
  }

  async submit(cmd: ScsiCommand): Promise<ScsiResponse> {
    const nexus = this.nexusMap.get(cmd.nexus.id);
    // A command racing its nexus's close: nobody is left to answer.
    if (!nexus) return ABORTED;
    // Statistics (stats.ts): counters on the device and nexus the command
    // already holds; no lookup, no allocation.
    const ns = nexus.stats;
    const t0 = performance.now();
    let dev: ScsiDevice | undefined;
    let res: ScsiResponse;
    try {
      if (cmd.cdb.length === 0) {
        res = this.respondCheck(cmd, 'INVALID_OPCODE', undefined, undefined, false, 0);
      } else {
        const mapping = nexus.identity.luns.get(cmd.lun);
        dev = this.ownDevice(mapping?.device);
        if (!mapping || !dev) {
          res = this.unmappedLun(cmd, nexus);
        } else {
          dev.stats.inFlight++;
          ns.inFlight++;
          try {
            res = await this.execute(cmd, nexus, mapping, dev);
          } finally {
            ns.inFlight--;
            dev.stats.inFlight--;
          }
        }
      }
    } catch {
      // The engine itself failed: never reject, answer HARDWARE ERROR.
      res = this.respondCheck(cmd, 'INTERNAL_TARGET_FAILURE', undefined, undefined, false, 0);
    }
    const us = (performance.now() - t0) * 1000;
    ns.record(cmd, res, us);
    dev?.stats.record(cmd, res, us);
    return res;
  }

  async taskManagement(req: TmfRequest): Promise<TmfResponse> {
    const nexus = this.nexusMap.get(req.nexus.id);
    if (!nexus) return 'function-rejected';
    nexus.stats.taskManagement(req.fn);
    this.deviceAt(nexus, req.lun)?.stats.taskManagement(req.fn);
    const r = await runTmf(this, req);
    publishEvent(
      tmfChannel,
      req.fn === 'abort-task' || req.fn.startsWith('query') ? 'info' : 'warn',
      () => `${req.fn} LUN ${req.lun} from ${nexus.identity.initiatorPortId}: ${r}`,
      () => ({ ...nexusFields(nexus), fn: req.fn, lun: req.lun, response: r }),
    );
    return r;
  }

  /** Counters of every LU and nexus, as plain JSON (stats.ts). */
  statsSnapshot(): CoreStatsSnapshot {
    const luns = [...this.deviceSet].map((dev) => ({
      id: dev.id,
      name: dev.name,
      backstore: dev.backstore.kind,
      sizeBytes: dev.backstore.size,
      blockSize: dev.blockSize,
      readOnly: dev.deviceWriteProtected,
      createdAt: dev.createdAt,
      ...(dev.mediumError ? { mediumError: { ...dev.mediumError } } : {}),
      ...dev.stats.snapshot(),
    }));
    const nexuses = [...this.nexusMap.values()].map((n) => ({
      id: n.id,
      fabric: n.fabric.name,
      initiatorName: n.identity.initiatorName,
      initiatorPortId: n.identity.initiatorPortId,
      targetName: n.identity.targetName,
      targetPortId: n.identity.targetPortId,
      openedAt: n.openedAt,
      luns: n.identity.luns.list(),
      ...n.stats.snapshot(),
    }));
    return { luns, nexuses };
  }

  /**
   * LIO's write_pending check, done before a fabric collects a command's
   * Data-Out (sends R2Ts, keeps unsolicited data): everything the core can
   * decide from the CDB alone. `respond`: the command's final response
   * (CHECK CONDITION, RESERVATION CONFLICT...), already counted in the
   * statistics; the fabric sends it, reads and drops any data the initiator
   * still sends, and does not call submit(). `collect`: gather Data-Out and
   * call submit(); only the first `length` bytes are used (min of the
   * expected length and the CDB's transfer length), so the fabric keeps only
   * those. submit() checks again, since state may change in between.
   */
  prepare(cmd: ScsiCommandHeader): PrepareResult {
    const nexus = this.nexusMap.get(cmd.nexus.id);
    if (!nexus) return { kind: 'respond', response: ABORTED };
    const t0 = performance.now();
    let dev: ScsiDevice | undefined;
    let res: ScsiResponse | undefined;
    let length = 0;
    if (cmd.cdb.length === 0) {
      res = this.respondCheck(cmd, 'INVALID_OPCODE', undefined, undefined, false, 0);
    } else {
      const mapping = nexus.identity.luns.get(cmd.lun);
      dev = this.ownDevice(mapping?.device);
      if (!mapping || !dev) {
        res = this.unmappedLun(cmd, nexus);
      } else {
        const spec = this.lookup(cmd.cdb);
        res = this.admit(cmd, nexus, mapping, dev, spec);
        if (!res && spec) {
          const cdbLen = transferLengthOf(spec, cmd.cdb, dev.blockSize);
          const early = spec.prepare?.(cmd.cdb, dev);
          if (early) res = this.respondOutcome(cmd, spec, dev, cdbLen, early);
          else length = spec.direction === 'write' ? Math.min(cmd.expectedLength, cdbLen) : 0;
        }
      }
    }
    if (!res) return { kind: 'collect', length };
    const us = (performance.now() - t0) * 1000;
    nexus.stats.record(cmd, res, us);
    dev?.stats.record(cmd, res, us);
    return { kind: 'respond', response: res };
  }

  /**
   * The checks every command passes before it enters the task set, in SPC-4's
   * order: unit attention, opcode, CDB fields, reservations, medium, write
   * protection. undefined: admitted.
   */
  private admit(
    cmd: ScsiCommandHeader,
    nexus: Nexus,
    mapping: LunMapping,
    dev: ScsiDevice,
    spec: CommandSpec | undefined | null,
  ): ScsiResponse | undefined {
    const cdb = cmd.cdb;
    // SPC-4 §5.14: a pending unit attention is reported by any command except
    // INQUIRY, REPORT LUNS and REQUEST SENSE, and cleared once reported.
    const uaq = dev.ua.queueFor(nexus.id);
    if (uaq.size > 0 && !spec?.allowedWithUnitAttention) {
      const reason = uaq.take() as SenseReason;
      return this.respondCheck(cmd, reason, undefined, undefined, dev.mode.dSense, spec ? transferLengthOf(spec, cdb, dev.blockSize) : 0);
    }
    if (spec === undefined) {
      return this.respondCheck(cmd, 'INVALID_OPCODE', { inCdb: true, byte: 0 }, undefined, dev.mode.dSense, 0);
    }
    if (spec === null) {
      // Known opcode, unknown service action (SPC-4 §4.2.5.2): INVALID FIELD IN CDB.
      return this.respondCheck(cmd, 'INVALID_FIELD_IN_CDB', { inCdb: true, byte: 1, bit: 4 }, undefined, dev.mode.dSense, 0);
    }
    const cdbLen = transferLengthOf(spec, cdb, dev.blockSize);
    const bad = this.validateCdb(cdb, spec);
    if (bad) return this.respondOutcome(cmd, spec, dev, cdbLen, bad);

    if (!this.exempt(spec, cdb) && dev.reservations.conflicts(nexus, spec, cdb)) {
      return this.respond(ScsiStatus.RESERVATION_CONFLICT, undefined, residualFor(cmd.expectedLength, cdbLen, undefined));
    }
    if (!dev.mediumLoaded && !MEDIUMLESS_OPCODES.has(cdb[0])) {
      return this.respondCheck(cmd, 'MEDIUM_NOT_PRESENT', undefined, undefined, dev.mode.dSense, cdbLen);
    }
    if (this.isLoadEject(dev, cdb) && mediumRemovalPrevented(dev.backstore)) {
      // SBC-3 §5.25: neither eject nor load while PREVENT ALLOW MEDIUM REMOVAL holds the medium.
      return this.respondCheck(cmd, 'MEDIUM_REMOVAL_PREVENTED', undefined, undefined, dev.mode.dSense, cdbLen);
    }
    if (spec.writes && (dev.deviceWriteProtected || mapping.readOnly)) {
      return this.respondCheck(cmd, 'WRITE_PROTECTED', undefined, undefined, dev.mode.dSense, cdbLen);
    }
    return undefined;
  }

  private isLoadEject(dev: ScsiDevice, cdb: Buffer): boolean {
    return dev.removable && cdb[0] === ScsiOpcode.START_STOP_UNIT && (cdb[4] & 0xf2) === 0x02;
  }

  private async execute(cmd: ScsiCommand, nexus: Nexus, mapping: LunMapping, dev: ScsiDevice): Promise<ScsiResponse> {
    const cdb = cmd.cdb;
    const spec = this.lookup(cdb);
    const refused = this.admit(cmd, nexus, mapping, dev, spec);
    if (refused || !spec) return refused ?? ABORTED;
    const cdbLen = transferLengthOf(spec, cdb, dev.blockSize);
    const loej = this.isLoadEject(dev, cdb);
    const writeProtected = dev.deviceWriteProtected || mapping.readOnly;

    const task = new Task(nexus.id, cmd.tag, cmd.lun, cmd.attr);
    const wait = dev.taskSet.enter(task);
    try {
      if (wait) await wait;
      if (task.aborted) return ABORTED;
      const ctx: CommandContext = {
        cmd,
        cdb,
        nexus,
        lun: cmd.lun,
        mapping,
        device: dev,
        dataOut: this.trimDataOut(cmd, spec, cdbLen, dev.blockSize),
        writeProtected,
      };
      let outcome: CommandOutcome;
      try {
        outcome = await spec.handler(ctx);
      } catch (err) {
        // Backstore failures arrive as Node errors; map them once (errno.ts).
        outcome = { kind: 'check', reason: errnoToSense(err, spec.direction === 'read' ? 'read' : 'write') };
      }
      if (task.aborted) return ABORTED;
      // START STOP UNIT with LOEJ and POWER CONDITION 0: START=0 ejects, START=1 loads (SBC-3 §5.25).
      if (loej && outcome.kind === 'good') dev.mediumLoaded = (cdb[4] & 0x01) !== 0;
      return this.respondOutcome(cmd, spec, dev, cdbLen, outcome);
    } finally {
      dev.taskSet.leave(task);
    }
  }

  /** CONTROL byte and usage map checks (SPC-4 §4.2.6, §6.35.3). */
  private validateCdb(cdb: Buffer, spec: CommandSpec): CommandOutcome | undefined {
    const n = spec.cdbLength;
    if (cdb.length < n) return checkOutcome('INVALID_FIELD_IN_CDB', { inCdb: true, byte: cdb.length > 0 ? cdb.length - 1 : 0 });
    // NACA=1 asks for ACA, which we do not implement (SAM-5 §5.9).
    if (cdb[n - 1] & CONTROL_NACA) return checkOutcome('INVALID_FIELD_IN_CDB', { inCdb: true, byte: n - 1, bit: 2 });
    const bad = findReservedBit(cdb, spec.usage, n);
    if (bad) return checkOutcome('INVALID_FIELD_IN_CDB', { inCdb: true, byte: bad.byte, bit: bad.bit });
    return undefined;
  }

  private exempt(spec: CommandSpec, cdb: Buffer): boolean {
    const e = spec.reservationExempt;
    return typeof e === 'function' ? e(cdb) : e === true;
  }

  /** Data-Out trimmed to min(expected, CDB length); whole blocks only for block data. */
  private trimDataOut(cmd: ScsiCommand, spec: CommandSpec, cdbLen: number, blockSize: number): Buffer {
    const data = cmd.dataOut;
    if (!data || spec.direction !== 'write') return EMPTY;
    let n = Math.min(data.length, cmd.expectedLength, cdbLen);
    if (spec.blockData) n -= n % blockSize;
    return n === data.length ? data : data.subarray(0, n);
  }

  // -- unmapped LUNs (SPC-4 §6.4.2, §6.33, §6.39) --------------------------------------

  private unmappedLun(cmd: ScsiCommandHeader, nexus: Nexus): ScsiResponse {
    const cdb = cmd.cdb;
    let outcome: CommandOutcome;
    let cdbLen = 0;
    switch (cdb[0]) {
      case ScsiOpcode.INQUIRY:
        cdbLen = cdb.length >= 5 ? cdb.readUInt16BE(3) : 0;
        outcome =
          cdb.length >= 6 && (cdb[1] & 0x01) === 0 && cdb[2] === 0
            ? { kind: 'good', data: standardInquiry(this.info, false, nexus.identity.protocolId) }
            : checkOutcome('LUN_NOT_SUPPORTED');
        break;
      case ScsiOpcode.REPORT_LUNS:
        if (cdb.length < 12) {
          outcome = checkOutcome('INVALID_FIELD_IN_CDB');
          break;
        }
        cdbLen = cdb.readUInt32BE(6);
        outcome = reportLuns(cdb, nexus.identity.luns);
        break;
      case ScsiOpcode.REQUEST_SENSE:
        // SPC-4 §6.39: GOOD status, sense data saying LOGICAL UNIT NOT SUPPORTED.
        cdbLen = cdb.length >= 5 ? cdb[4] : 0;
        outcome = { kind: 'good', data: requestSenseData(cdb, 'LUN_NOT_SUPPORTED') };
        break;
      default:
        outcome = checkOutcome('LUN_NOT_SUPPORTED');
    }
    if (outcome.kind === 'good') {
      const data = outcome.data ?? EMPTY;
      return this.respondData(cmd, ScsiStatus.GOOD, data, cdbLen);
    }
    if (outcome.kind === 'check') return this.respondCheck(cmd, outcome.reason, outcome.field, outcome.info, false, cdbLen);
    return this.respond(ScsiStatus.GOOD, undefined, residualFor(cmd.expectedLength, cdbLen, undefined));
  }

  // -- responses ------------------------------------------------------------------------

  private respondOutcome(cmd: ScsiCommandHeader, spec: CommandSpec, dev: ScsiDevice, cdbLen: number, outcome: CommandOutcome): ScsiResponse {
    switch (outcome.kind) {
      case 'good': {
        const status = outcome.conditionMet ? ScsiStatus.CONDITION_MET : ScsiStatus.GOOD;
        if (spec.direction === 'read') return this.respondData(cmd, status, outcome.data ?? EMPTY, cdbLen);
        return this.respond(status, undefined, residualFor(cmd.expectedLength, cdbLen, undefined));
      }
      case 'check': {
        const r = this.respondCheck(cmd, outcome.reason, outcome.field, outcome.info, dev.mode.dSense, cdbLen);
        if (outcome.data && outcome.data.length > 0) {
          const lim = Math.min(outcome.data.length, cdbLen, cmd.expectedLength);
          r.dataIn = outcome.data.subarray(0, lim);
        }
        return r;
      }
      case 'reservation-conflict':
        return this.respond(ScsiStatus.RESERVATION_CONFLICT, undefined, residualFor(cmd.expectedLength, cdbLen, undefined));
      case 'busy':
        return this.respond(ScsiStatus.BUSY, undefined, residualFor(cmd.expectedLength, cdbLen, undefined));
      case 'task-set-full':
        return this.respond(ScsiStatus.TASK_SET_FULL, undefined, residualFor(cmd.expectedLength, cdbLen, undefined));
    }
  }

  /** Data-In cut to min(data, allocation/transfer length, expected length). */
  private respondData(cmd: ScsiCommandHeader, status: ScsiStatusCode, data: Buffer, cdbLen: number): ScsiResponse {
    const sent = Math.min(data.length, cdbLen, cmd.expectedLength);
    const res = residualFor(cmd.expectedLength, cdbLen, sent);
    return {
      status,
      dataIn: sent === data.length ? data : data.subarray(0, sent),
      residualKind: res.kind,
      residualCount: res.count,
    };
  }

  private respondCheck(
    cmd: ScsiCommandHeader,
    reason: SenseReason,
    field: FieldPointer | undefined,
    info: bigint | number | undefined,
    descriptor: boolean,
    cdbLen: number,
  ): ScsiResponse {
    const sense = buildSense(reason, { descriptor, field, info });
    const res = residualFor(cmd.expectedLength, cdbLen, undefined);
    return { status: ScsiStatus.CHECK_CONDITION, sense, residualKind: res.kind, residualCount: res.count };
  }

  private respond(status: ScsiStatusCode, dataIn: Buffer | undefined, res: Residual): ScsiResponse {
    return { status, dataIn, residualKind: res.kind, residualCount: res.count };
  }
}
