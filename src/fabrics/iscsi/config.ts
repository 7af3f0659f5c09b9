// Configuration of the iSCSI target fabric, as plain data plus core handles.
// The daemon builds these from its JSON config (LIO's configfs tree as data:
// target IQN -> TPGs -> portals, LUNs, ACLs, attributes, parameters).

import type {
  LunMap,
  NexusHandle,
  NexusIdentity,
  FabricOps,
  ScsiCommand,
  ScsiCommandHeader,
  ScsiResponse,
  TmfRequest,
  TmfResponse,
  ScsiDeviceHandle,
} from '../../core/types.js';
import type { PrepareResult } from '../../core/index.js';
import type { IscsiLimits } from './limits.js';

export interface PortalConfig {
  host: string;
  /** 0 picks a free port; IscsiTargetServer.addresses() tells which. */
  port: number;
}

export interface TpgLunConfig {
  lun: number;
  device: ScsiDeviceHandle;
}

export interface MappedLunConfig {
  /** LUN number the initiator sees. */
  mappedLun: number;
  /** LUN number in the TPG. */
  tpgLun: number;
  readOnly: boolean;
}

export interface ChapCredentials {
  userid: string;
  password: string;
}

export interface AclConfig {
  /** Initiator iSCSI name. */
  initiator: string;
  mappedLuns: MappedLunConfig[];
  /** One-way CHAP: what the initiator must prove. */
  chap?: ChapCredentials | undefined;
  /** Mutual CHAP: what the target proves to the initiator. */
  mutualChap?: ChapCredentials | undefined;
}

export interface TpgAttributes {
  /** Require CHAP on normal sessions of this TPG. */
  authentication: boolean;
  /** Demo mode: any initiator logs in and sees every LUN of the TPG. */
  generateNodeAcls: boolean;
  /** In demo mode, LUNs are mapped read-only. */
  demoModeWriteProtect: boolean;
  cacheDynamicAcls?: boolean | undefined;
  /** CmdSN window depth (MaxCmdSN - ExpCmdSN + 1 with nothing in flight). */
  defaultCmdsnDepth: number;
  /** Seconds a connection may spend in the login phase. */
  loginTimeout: number;
  /** Seconds between target-initiated NOP-In pings; 0 disables them. */
  nopInInterval: number;
  /** Seconds without a ping answer before the connection is dropped. */
  nopInTimeout: number;
}

export interface TpgConfig {
  /** Target portal group tag, 1..65535. */
  tag: number;
  enabled: boolean;
  portals: PortalConfig[];
  luns: TpgLunConfig[];
  acls: AclConfig[];
  attributes: TpgAttributes;
  /** Login key overrides (RFC 7143 §13), e.g. { MaxBurstLength: '1048576' }. */
  parameters: Record<string, string>;
}

export interface IscsiTargetConfig {
  iqn: string;
  alias?: string | undefined;
  tpgs: TpgConfig[];
}

export interface DiscoveryAuth {
  enabled: boolean;
  userid?: string | undefined;
  password?: string | undefined;
  mutualUserid?: string | undefined;
  mutualPassword?: string | undefined;
}

export const DEFAULT_TPG_ATTRIBUTES: TpgAttributes = {
  authentication: false,
  generateNodeAcls: false,
  demoModeWriteProtect: false,
  cacheDynamicAcls: false,
  defaultCmdsnDepth: 64,
  loginTimeout: 15,
  nopInInterval: 15,
  nopInTimeout: 30,
};

/** What the fabric needs of the SCSI core (ScsiCore satisfies it). */
export interface IscsiCore {
  openNexus(identity: NexusIdentity, fabric: FabricOps): NexusHandle;
  closeNexus(nexus: NexusHandle): void;
  submit(cmd: ScsiCommand): Promise<ScsiResponse>;
  /**
   * LIO's write_pending: before a write's Data-Out is collected, refuse it
   * (`respond`) or say how many bytes of it the command uses (`collect`).
   */
  prepare(cmd: ScsiCommandHeader): PrepareResult;
  taskManagement(req: TmfRequest): Promise<TmfResponse>;
  /** Queue REPORTED LUNS DATA HAS CHANGED on these nexuses (live LUN changes). */
  lunsChanged?(nexuses: Iterable<NexusHandle>): void;
  /** Abort the tasks of these nexuses on a device (a LUN removed live). */
  abortTasksOf?(device: ScsiDeviceHandle, nexusIds: Set<number>): void;
}

export interface IscsiLogger {
  debug?(msg: string, fields?: Record<string, unknown>): void;
  info?(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
  error?(msg: string, fields?: Record<string, unknown>): void;
}

export interface IscsiServerOptions {
  discoveryAuth?: DiscoveryAuth | undefined;
  logger?: IscsiLogger | undefined;
  /**
   * How long a live change waits for the commands of a removed LUN to finish
   * before aborting them in the core (ms, default 2000).
   */
  drainMs?: number | undefined;
  /** Budgets (limits.ts); absent fields keep the defaults. */
  limits?: Partial<IscsiLimits> | undefined;
}

export type { LunMap };
