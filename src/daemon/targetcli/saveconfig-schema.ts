// The shape of the saveconfig.json that rtslib-fb writes (RTSRoot.dump(): the
// keys of StorageObject/Target/TPG/LUN/NetworkPortal/NodeACL/MappedLUN and
// FabricModule dump(), and the saveconfig.json(5) man page). Objects are
// "loose": keys we do not know survive validation so the importer can list
// them instead of dropping them. Types are checked here, once; the importer
// then reads typed data. rtslib restores with Python truthiness, so 0/1 are
// accepted where a boolean is meant.

import { z } from 'zod';

import { LunkitError } from '../../protocols/errors.js';
import { jsonPath } from '../errors.js';

export class TargetcliError extends LunkitError {
  constructor(
    readonly problems: string[],
    source = '',
  ) {
    super('ERR_TARGETCLI_INVALID', `invalid targetcli configuration${source ? ` in ${source}` : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'TargetcliError';
  }
}

const flag = z.union([z.boolean(), z.literal(0), z.literal(1)]).transform((v) => v === true || v === 1);
const index = z.number().int().min(0);
const attrValue = z.union([z.number(), z.string(), z.boolean()]);
const attributes = z.record(z.string(), attrValue);
const parameters = z.record(z.string(), z.union([z.string(), z.number()]).transform(String));
const optString = z.string().nullish();

export const StorageObjectSchema = z.looseObject({
  name: z.string().min(1),
  plugin: z.string().min(1),
  dev: optString,
  size: z.number().int().min(0).nullish(),
  wwn: optString,
  write_back: flag.optional(),
  readonly: flag.optional(),
  nullio: flag.optional(),
  attributes: attributes.optional(),
  alua_tpgs: z.array(z.looseObject({ name: z.string() })).optional(),
});

export const MappedLunSchema = z.looseObject({
  index,
  tpg_lun: index,
  write_protect: flag.optional(),
  alias: optString,
});

export const NodeAclSchema = z.looseObject({
  node_wwn: z.string().min(1),
  mapped_luns: z.array(MappedLunSchema).optional(),
  attributes: attributes.optional(),
  chap_userid: optString,
  chap_password: optString,
  chap_mutual_userid: optString,
  chap_mutual_password: optString,
});

export const LunSchema = z.looseObject({
  index,
  storage_object: z.string().regex(/^\/backstores\/[^/]+\/[^/]+$/, 'expected "/backstores/<plugin>/<name>"'),
  alias: optString,
  alua_tg_pt_gp_name: optString,
});

export const PortalSchema = z.looseObject({
  ip_address: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  iser: flag.optional(),
  offload: flag.optional(),
});

export const TpgSchema = z.looseObject({
  tag: z.number().int().min(1).max(65535),
  enable: flag.optional(),
  luns: z.array(LunSchema).optional(),
  portals: z.array(PortalSchema).optional(),
  node_acls: z.array(NodeAclSchema).optional(),
  attributes: attributes.optional(),
  parameters: parameters.optional(),
  chap_userid: optString,
  chap_password: optString,
  chap_mutual_userid: optString,
  chap_mutual_password: optString,
});

export const TargetSchema = z.looseObject({
  wwn: z.string().min(1),
  fabric: z.string().min(1),
  tpgs: z.array(TpgSchema).optional(),
});

export const FabricModuleSchema = z.looseObject({
  name: z.string().min(1),
  discovery_enable_auth: flag.optional(),
  discovery_userid: optString,
  discovery_password: optString,
  discovery_mutual_userid: optString,
  discovery_mutual_password: optString,
});

export const SaveconfigSchema = z.looseObject({
  storage_objects: z.array(StorageObjectSchema).optional(),
  targets: z.array(TargetSchema).optional(),
  fabric_modules: z.array(FabricModuleSchema).optional(),
});

export type Saveconfig = z.output<typeof SaveconfigSchema>;
export type StorageObject = z.output<typeof StorageObjectSchema>;
export type TargetDoc = z.output<typeof TargetSchema>;
export type TpgDoc = z.output<typeof TpgSchema>;
export type NodeAclDoc = z.output<typeof NodeAclSchema>;
export type FabricModuleDoc = z.output<typeof FabricModuleSchema>;

/**
 * Checks the types of a parsed saveconfig.json (or its text); throws
 * TargetcliError naming the path of every problem, e.g.
 * `targets[0].tpgs[0].luns[1].index: expected number, received string`.
 */
export function parseSaveconfig(input: unknown, source = ''): Saveconfig {
  let doc = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input) as unknown;
    } catch (e) {
      throw new TargetcliError([`not valid JSON: ${(e as Error).message}`], source);
    }
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new TargetcliError(['(top level): expected an object with storage_objects, targets and fabric_modules'], source);
  }
  const res = SaveconfigSchema.safeParse(doc);
  if (!res.success) {
    throw new TargetcliError(
      res.error.issues.map((i) => `${jsonPath(...i.path.map((p) => (typeof p === 'number' ? p : String(p)))) || '(top level)'}: ${i.message}`),
      source,
    );
  }
  return res.data;
}
