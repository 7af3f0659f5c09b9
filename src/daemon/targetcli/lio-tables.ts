// What lunkit knows about LIO's configfs names, as rtslib-fb writes them in
// saveconfig.json (rtslib/tcm.py, rtslib/target.py, rtslib/fabric.py dump()).
//
// A saveconfig.json written by `targetcli saveconfig` carries every writable
// configfs attribute, most at the kernel's default. Those defaults describe
// behaviour lunkit has anyway (or tuning that has no meaning in userspace), so
// an attribute at its LIO default is dropped with a note; the same attribute at
// any other value is reported as unsupported, because the user asked for
// something lunkit will not do. Defaults are the kernel's (drivers/target:
// target_core_base.h DA_*, iscsi_target_core.h TA_* and NA_*).

import { KEYS } from '../../protocols/iscsi/keys.js';

/** configfs names of rtslib plugins (rtslib so_mapping: "iblock" is "block", "rd_mcp" is "ramdisk"). */
const PLUGIN_ALIASES: Readonly<Record<string, string>> = {
  iblock: 'block',
  rd_mcp: 'ramdisk',
};

/** The rtslib plugin name for a plugin as written (a configfs alias resolved); which backstore type imports it is the registry's business. */
export function canonicalPlugin(plugin: string): string {
  return Object.hasOwn(PLUGIN_ALIASES, plugin) ? PLUGIN_ALIASES[plugin] : plugin;
}

/**
 * Storage object attributes (configfs core/<hba>/<so>/attrib) that lunkit has
 * no setting for, with LIO's default. block_size, emulate_write_cache,
 * emulate_tpu and emulate_tpws are mapped, not listed here.
 */
export const SO_ATTRIBUTE_DEFAULTS: Readonly<Record<string, number | string>> = {
  emulate_3pc: 1,
  emulate_caw: 1,
  emulate_dpo: 1,
  emulate_fua_read: 1,
  emulate_fua_write: 1,
  emulate_model_alias: 1,
  emulate_pr: 1,
  emulate_rest_reord: 0,
  emulate_rsoc: 1,
  emulate_tas: 1,
  emulate_ua_intlck_ctrl: 0,
  enforce_pr_isids: 1,
  force_pr_aptpl: 0,
  is_nonrot: 0,
  max_unmap_block_desc_count: 1,
  max_unmap_lba_count: 8192,
  max_write_same_len: 4096,
  optimal_sectors: 16384,
  pi_prot_format: 0,
  pi_prot_type: 0,
  pi_prot_verify: 0,
  queue_depth: 128,
  unmap_granularity: 1,
  unmap_granularity_alignment: 0,
  unmap_zeroes_data: 0,
  alua_support: 1,
  pgr_support: 1,
  submit_type: 0,
  complete_type: 0,
};

/** Read-only or hardware-derived storage object attributes: never settable, never reported. */
export const SO_ATTRIBUTE_INFORMATIONAL = new Set(['hw_block_size', 'hw_max_sectors', 'hw_pi_prot_type', 'hw_queue_depth', 'max_sectors']);

/**
 * iSCSI TPG attributes (iscsi/<wwn>/tpgt_N/attrib) lunkit maps, LIO name ->
 * lunkit attributes field. Values are 0/1 or numbers in the file.
 */
export const TPG_ATTRIBUTE_MAP = {
  authentication: 'authentication',
  generate_node_acls: 'generateNodeAcls',
  demo_mode_write_protect: 'demoModeWriteProtect',
  default_cmdsn_depth: 'defaultCmdsnDepth',
  login_timeout: 'loginTimeout',
} as const;

export type LioTpgAttribute = keyof typeof TPG_ATTRIBUTE_MAP;
export const BOOLEAN_TPG_ATTRIBUTES: ReadonlySet<string> = new Set(['authentication', 'generate_node_acls', 'demo_mode_write_protect']);

/** iSCSI TPG attributes without a lunkit setting, with the kernel default (TA_*). */
export const TPG_ATTRIBUTE_DEFAULTS: Readonly<Record<string, number>> = {
  netif_timeout: 2,
  prod_mode_write_protect: 0,
  demo_mode_discovery: 1,
  default_erl: 0,
  t10_pi: 0,
  fabric_prot_type: 0,
  tpg_enabled_sendtargets: 1,
  login_keys_workaround: 1,
};

/**
 * Node ACL attributes (acls/<initiator>/attrib). LIO sets the NOP-In timers
 * per ACL; lunkit per TPG, so they map when every ACL of the TPG agrees.
 */
export const ACL_ATTRIBUTE_MAP = {
  nopin_timeout: 'nopInInterval',
  nopin_response_timeout: 'nopInTimeout',
} as const;

export type LioAclAttribute = keyof typeof ACL_ATTRIBUTE_MAP;

/** Node ACL attributes without a lunkit setting, with the kernel default (NA_*). */
export const ACL_ATTRIBUTE_DEFAULTS: Readonly<Record<string, number>> = {
  dataout_timeout: 3,
  dataout_timeout_retries: 5,
  default_erl: 0,
  random_datain_pdu_offsets: 0,
  random_datain_seq_offsets: 0,
  random_r2t_offsets: 0,
};

/** LIO's login parameters lunkit's negotiator has no key for, with the kernel default. */
export const PARAMETER_DEFAULTS: Readonly<Record<string, string>> = {
  MaxXmitDataSegmentLength: '262144',
  IFMarkInt: 'Reject',
  OFMarkInt: 'Reject',
};

/** Keys the negotiator handles that make sense as a TPG override (not names or declarations made per login). */
export function isNegotiatedKey(name: string): boolean {
  const def = KEYS.get(name);
  if (!def) return false;
  return def.kind !== 'declarative' || name === 'MaxRecvDataSegmentLength';
}

/** Login keys lunkit currently fixes whatever the configuration says (fabrics/iscsi/login.ts), with the fixed value. */
export const FORCED_PARAMETERS: Readonly<Record<string, string>> = {
  ErrorRecoveryLevel: '0',
  MaxConnections: '1',
};

/** LIO's default ALUA target port group: every LUN is in it unless moved. */
export const DEFAULT_ALUA_GROUP = 'default_tg_pt_gp';

/** A LIO wwn (unit serial) in the UUID form rtslib generates. */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Longest unit serial lunkit reports (core/device.ts keeps VPD 0x80 at 32 characters). */
export const MAX_SERIAL_LENGTH = 32;

/** lunkit backstore names (config-schema.ts). */
export const BACKSTORE_NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
