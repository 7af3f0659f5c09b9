// The iSCSI target fabric (RFC 7143, ERL 0).
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
export type { SessionInfo, SessionParams } from './session.js';
export { CmdSnWindow } from './cmdsn.js';
