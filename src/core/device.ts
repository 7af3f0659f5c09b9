// One logical unit of the SCSI core: a backstore plus the state SPC-4 keeps
// per LU (mode parameters, unit attentions, task set, reservations, the LBA
// range lock). The engine hands the device itself to handlers as their
// DeviceView, so no view object is built per command.

import { createHash } from 'node:crypto';
import { LunkitError } from '../protocols/errors.js';
import type { CommandSpec, DeviceView } from './command.js';
import type { BackstoreOps, NexusHandle, ScsiDeviceHandle } from './types.js';
import { LbaRangeLock } from './lba-lock.js';
import { ReservationState, prTargetMatches, type PrNexusTarget } from './pr.js';
import type { SenseReason } from './sense-reasons.js';
import { DeviceUnitAttentions } from './ua.js';
import { TaskSet } from './task-set.js';
import { CommandStats, CoreChannel, publishEvent, statsChannel } from './stats.js';
import { GuardedBackstore, type MediumErrorState } from './io-guard.js';

/** Identity strings shared by every device of one core (standard INQUIRY). */
export interface CoreInfo {
  vendor: string;
  product: string;
  revision: string;
  /** The whole dispatch table, for REPORT SUPPORTED OPERATION CODES. */
  commands: readonly CommandSpec[];
}

/** What a device needs from the core that owns it. */
export interface DeviceHost {
  /** All open nexuses (unit attentions from reservations pick theirs). */
  nexuses(): Iterable<NexusHandle>;
  /** A unit attention was queued for this nexus on this device. */
  notifyUnitAttention(nexus: NexusHandle, device: ScsiDevice): void;
  /** PREEMPT AND ABORT: abort the tasks of these nexuses on this device. */
  abortTasksOf(device: ScsiDevice, nexusIds: Set<number>): void;
}

/**
 * Mode parameters of the LU (one set for all nexuses, SPC-4 §7.5). Only the
 * changeable bits live here; the rest of every page is constant (spc-mode.ts).
 */
export interface ModeState {
  /** Caching page WCE. */
  wce: boolean;
  /** Control page D_SENSE: descriptor-format sense data. */
  dSense: boolean;
  /** Control page SWP: software write protect. */
  swp: boolean;
}

export interface ScsiDeviceConfig {
  name: string;
  serial?: string | undefined;
  naa?: string | undefined;
  writeCache?: boolean | undefined;
  readOnly?: boolean | undefined;
  thin?: boolean | undefined;
  removable?: boolean | undefined;
}

function stableHex(text: string, digits: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, digits);
}

/**
 * NAA designator bytes (SPC-4 §7.8.6.6). A given value of 16 or 32 hex
 * digits is used as is (NAA 5 or 6 in its first nibble); the default is a
 * locally assigned NAA 3 identifier derived from the name, which needs no
 * IEEE company id.
 */
export function naaBytes(naa: string | undefined, name: string): Buffer {
  if (naa !== undefined) {
    const clean = naa.replace(/^0x/i, '').replace(/[^0-9a-f]/gi, '');
    if (clean.length === 16 || clean.length === 32) return Buffer.from(clean, 'hex');
  }
  return Buffer.from('3' + stableHex(`naa:${name}`, 15), 'hex');
}

let nextDeviceId = 1;

const lunChangeChannel = statsChannel(CoreChannel.LUN_CHANGE);

export class ScsiDevice implements ScsiDeviceHandle, DeviceView {
  readonly id = nextDeviceId++;
  readonly name: string;
  readonly serial: string;
  readonly naa: Buffer;
  /**
   * The backstore behind the guard every call passes (io-guard.ts): flush
   * failures latch, calls in progress are counted.
   */
  readonly backstore: GuardedBackstore;
  readonly blockSize: number;
  readonly thin: boolean;
  /** The LU itself is read-only (backstore cannot write or configured so). */
  readonly readOnly: boolean;
  readonly mode: ModeState;
  /** Default values of the changeable mode parameters (MODE SENSE PC=10b). */
  readonly modeDefaults: Readonly<ModeState>;
  readonly ua = new DeviceUnitAttentions();
  readonly taskSet = new TaskSet();
  readonly reservations: ReservationState;
  private readonly lock = new LbaRangeLock();
  /** Removable medium (INQUIRY RMB): START STOP UNIT with LOEJ ejects and loads it. */
  readonly removable: boolean;
  /** The medium is loaded; false only after an eject of a removable LU. */
  mediumLoaded = true;
  /** Set by removeDevice: new commands get LOGICAL UNIT NOT SUPPORTED. */
  removed = false;
  /** Per-LU counters (stats.ts); the engine records every command here. */
  readonly stats = new CommandStats();
  readonly createdAt = Date.now();

  constructor(
    backstore: BackstoreOps,
    cfg: ScsiDeviceConfig,
    readonly info: CoreInfo,
    private readonly host: DeviceHost,
  ) {
    this.backstore = new GuardedBackstore(backstore, (state) =>
      publishEvent(
        lunChangeChannel,
        'error',
        () => `LU ${cfg.name}: ${state.op} failed (${state.code}); flushes and FUA writes fail until \`lunkit backstore clear-error\``,
        () => ({ change: 'medium-error', device: cfg.name, code: state.code, message: state.message }),
      ),
    );
    this.name = cfg.name;
    // Unit serial number: ASCII, at most 32 characters here (VPD 0x80 has no limit, but keep it short).
    this.serial = (cfg.serial ?? stableHex(`serial:${cfg.name}`, 16)).replace(/[^\x21-\x7e]/g, '_').slice(0, 32);
    this.naa = naaBytes(cfg.naa, cfg.name);
    this.blockSize = backstore.blockSize;
    this.readOnly = cfg.readOnly ?? !backstore.caps.canWrite;
    this.thin = cfg.thin ?? backstore.caps.thin;
    this.removable = cfg.removable ?? false;
    this.mode = { wce: cfg.writeCache ?? true, dSense: false, swp: false };
    this.modeDefaults = Object.freeze({ ...this.mode });
    this.reservations = new ReservationState({
      unitAttention: (target, reason) => this.reservationUnitAttention(target, reason),
    });
    this.reservations.onAbortNexusTasks = (ports) => this.preemptAbort(ports);
  }

  // -- DeviceView -------------------------------------------------------------

  get blockCount(): bigint {
    return BigInt(Math.floor(this.backstore.size / this.blockSize));
  }

  get writeCacheEnabled(): boolean {
    return this.mode.wce;
  }

  get deviceWriteProtected(): boolean {
    return this.readOnly || this.mode.swp;
  }

  lockRange(lba: bigint, blocks: number): Promise<() => void> {
    return this.lock.lock(lba, blocks);
  }

  // -- durability (io-guard.ts) ---------------------------------------------------

  /** Set after a flush failed: flushes and FUA writes fail until an operator clears it. */
  get mediumError(): Readonly<MediumErrorState> | undefined {
    return this.backstore.mediumError;
  }

  // -- capabilities derived once from the backstore (VPD 0xB2) ----------------

  /**
   * UNMAP and WRITE SAME with UNMAP are accepted (LBPU, LBPWS, LBPWS10): the
   * SBC handlers serve them on every thin LU, deallocating when the backstore
   * can and writing zeroes otherwise.
   */
  get canUnmap(): boolean {
    return this.thin;
  }

  // -- unit attentions ----------------------------------------------------------

  /** Queue a unit attention for one nexus and tell its fabric. */
  queueUnitAttention(nexus: NexusHandle, reason: SenseReason): void {
    this.ua.add(nexus.id, reason);
    this.host.notifyUnitAttention(nexus, this);
  }

  /** Queue for every open nexus except `except` (e.g. MODE PARAMETERS CHANGED). */
  queueUnitAttentionAll(reason: SenseReason, except?: NexusHandle): void {
    for (const nexus of this.host.nexuses()) {
      if (except && nexus.id === except.id) continue;
      // A nexus that has not used this LU yet will see POWER ON first, which covers it.
      if (!this.ua.knows(nexus.id)) continue;
      this.queueUnitAttention(nexus, reason);
    }
  }

  private reservationUnitAttention(target: PrNexusTarget, reason: SenseReason): void {
    for (const nexus of this.host.nexuses()) {
      if (this.ua.knows(nexus.id) && prTargetMatches(target, nexus.identity)) this.queueUnitAttention(nexus, reason);
    }
  }

  private preemptAbort(ports: string[]): void {
    const ids = new Set<number>();
    for (const nexus of this.host.nexuses()) {
      for (const p of ports) {
        if (prTargetMatches({ initiatorPortId: p, targetPortId: '*' }, nexus.identity)) ids.add(nexus.id);
      }
    }
    if (ids.size > 0) this.host.abortTasksOf(this, ids);
  }
}

/** The concrete device behind a handler's DeviceView (SPC handlers need mode state, identity). */
export function scsiDeviceOf(view: DeviceView): ScsiDevice {
  if (view instanceof ScsiDevice) return view;
  throw new LunkitError('ERR_INTERNAL', 'DeviceView is not a ScsiDevice');
}
