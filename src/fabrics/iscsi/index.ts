// The iSCSI target fabric (RFC 7143: MC/S, error recovery levels 0-2).
export { IscsiTargetServer } from './server.js';
export type {
  IscsiTargetConfig,
  TpgConfig,
  TpgAttributes,
  AclConfig,
  MappedLunConfig,
  TpgLunConfig,
  PortalConfig,
  ChapCredentials,
  DiscoveryAuth,
  IscsiCore,
  IscsiLogger,
  IscsiServerOptions,
} from './config.js';
export { DEFAULT_TPG_ATTRIBUTES } from './config.js';
export type { SessionInfo } from './session.js';
export type { SessionParams } from './session-params.js';
export { CmdSnWindow } from './cmdsn.js';
