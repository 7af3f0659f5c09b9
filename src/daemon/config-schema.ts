// The JSON configuration file of `lunkit serve --config FILE`: LIO's configfs
// tree as data (ARCHITECTURE.md "The object model"). Validation names the JSON
// path and the reason for anything wrong, e.g.
//   ✖ iSCSI names start with "iqn.", "eui." or "naa."  → at iscsi.targets["target1"]
// Keys that are iSCSI names are checked in config.ts (zod reports a bad record
// key without our reason). Maps are keyed by name (backstores by name, targets by IQN, TPGs by tag) so a
// path in an error is the same path a user edits.

import { z } from 'zod';
import { BackstoreConfigSchema } from '../backstores/registry.js';
import { BootlabsSchema } from '../bootlab/schema.js';
import { LimitsSchema } from './limits-schema.js';

export const CONFIG_VERSION = 1;

export const NameSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'names use A-Z a-z 0-9 _ . : - (1 to 64 characters)');

/**
 * A backstore: the discriminated union of the registered types' schemas
 * (src/backstores/registry.ts; each type's fragment lives in its folder).
 */
export const BackstoreSchema = BackstoreConfigSchema;

export const ChapSecretSchema = z.strictObject({
  userid: z.string().min(1).max(255),
  password: z.string().min(12, 'CHAP secrets are at least 12 characters (RFC 7143 §9.2.1)').max(255),
});

/** "host:port", "[v6]:port" or "host" (defaultPort); undefined if it is none of these. */
export function parseHostPort(v: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(v);
  const port = m?.[3] === undefined ? defaultPort : Number(m[3]);
  if (!m || port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

export const ISCSI_DEFAULT_PORT = 3260;

const portal = z.string().transform((v, ctx) => {
  const hp = parseHostPort(v, ISCSI_DEFAULT_PORT);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not host:port (e.g. 127.0.0.1:3260, [::1]:3260)` });
    return z.NEVER;
  }
  return hp;
});

export const AclSchema = z.strictObject({
  /** Mapped LUN number as the initiator sees it -> TPG LUN (and read-only flag). */
  mappedLuns: z
    .record(z.string().regex(/^\d+$/, 'mapped LUN numbers are integers'), z.union([
      z.number().int().min(0),
      z.strictObject({ tpgLun: z.number().int().min(0), readOnly: z.boolean().default(false) }),
    ]))
    .optional(),
  chap: ChapSecretSchema.optional(),
  mutualChap: ChapSecretSchema.optional(),
});

export const TpgSchema = z.strictObject({
  enabled: z.boolean().default(true),
  portals: z.array(portal).min(1, 'a TPG needs at least one portal'),
  /** TPG LUN number -> backstore name. */
  luns: z.record(z.string().regex(/^\d+$/, 'LUN numbers are integers 0..16383'), z.union([
    NameSchema,
    z.strictObject({ backstore: NameSchema }),
  ])).default({}),
  acls: z.record(z.string(), AclSchema).default({}),
  attributes: z
    .strictObject({
      authentication: z.boolean().default(false),
      /** Demo mode (LIO generate_node_acls): every initiator sees every LUN. */
      generateNodeAcls: z.boolean().default(false),
      demoModeWriteProtect: z.boolean().default(false),
      defaultCmdsnDepth: z.number().int().min(1).max(512).default(64),
      loginTimeout: z.number().int().min(1).max(600).default(15),
      nopInInterval: z.number().int().min(0).max(3600).default(15),
      nopInTimeout: z.number().int().min(1).max(3600).default(30),
    })
    .default({ authentication: false, generateNodeAcls: false, demoModeWriteProtect: false, defaultCmdsnDepth: 64, loginTimeout: 15, nopInInterval: 15, nopInTimeout: 30 }),
  /** Login key overrides (RFC 7143 §13), e.g. {"MaxRecvDataSegmentLength": "262144"}. */
  parameters: z.record(z.string(), z.string()).default({}),
});

export const TargetSchema = z.strictObject({
  alias: z.string().optional(),
  tpgs: z.record(z.string().regex(/^\d+$/, 'TPG tags are integers 1..65535'), TpgSchema),
});

const nbdListen = z.string().transform((v, ctx): { host: string; port: number } | { path: string } => {
  // "unix:/abs/path.sock" is a Unix socket listener.
  if (v.startsWith('unix:')) {
    const path = v.slice('unix:'.length);
    if (!path.startsWith('/')) {
      ctx.addIssue({ code: 'custom', message: `"${v}" needs an absolute socket path (e.g. unix:/run/lunkit/nbd.sock)` });
      return z.NEVER;
    }
    return { path };
  }
  // "host:port", "[v6]:port" or "host" (port 10809, proto.md).
  const hp = parseHostPort(v, 10809);
  if (!hp) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not host:port (e.g. 127.0.0.1:10809, [::1]:10809)` });
    return z.NEVER;
  }
  return hp;
});

export const NbdExportSchema = z.strictObject({
  backstore: NameSchema,
  readOnly: z.boolean().default(false),
  description: z.string().max(4096).optional(),
});

export const NbdTlsSchema = z.strictObject({
  /** PEM files (x509 certificate chain and private key). */
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  /** CA bundle to verify client certificates; absent: no client certificates asked. */
  caFile: z.string().min(1).optional(),
  /** true: refuse clients that do not STARTTLS (nbdkit --tls=require). */
  require: z.boolean().default(false),
});

export const NbdSchema = z.strictObject({
  tls: NbdTlsSchema.optional(),
  listen: z.array(nbdListen).min(1, 'NBD needs at least one listen address').default([{ host: '127.0.0.1', port: 10809 }]),
  /** Export name (what clients ask for) -> backstore. */
  exports: z.record(z.string().max(4096), NbdExportSchema).default({}),
});

export const FuseExportSchema = z.strictObject({
  backstore: NameSchema,
  readOnly: z.boolean().default(false),
});

export const FuseMountSchema = z.strictObject({
  /** File name in the mount directory -> backstore. */
  exports: z.record(z.string().regex(/^[^/\0]{1,255}$/, 'FUSE export names are file names (no "/")').refine((v) => v !== '.' && v !== '..', 'FUSE export names cannot be "." or ".."'), FuseExportSchema).default({}),
  /** Mount with direct_io (no page cache for the files). */
  directIo: z.boolean().default(false),
  /** Let other users open the files (allow_other). */
  allowOther: z.boolean().default(false),
});

export const ConfigSchema = z.strictObject({
  version: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
  backstores: z.record(NameSchema, BackstoreSchema).default({}),
  iscsi: z
    .strictObject({
      discoveryAuth: z
        .strictObject({ enabled: z.boolean().default(false), chap: ChapSecretSchema.optional(), mutualChap: ChapSecretSchema.optional() })
        .optional(),
      targets: z.record(z.string(), TargetSchema).default({}),
    })
    .default({ targets: {} }),
  /** NBD server fabric; absent: no NBD listener. */
  nbd: NbdSchema.optional(),
  /** FUSE exports (our tcm_loop): mount directory -> LUNs shown as files. */
  fuse: z.record(z.string().regex(/^\/./, 'FUSE mount points are absolute paths'), FuseMountSchema).optional(),
  /** Diskless boot labs (docs/bootlab.md): their iSCSI objects are derived (daemon/bootlab-config.ts). */
  bootlabs: BootlabsSchema.optional(),
  /** Budgets on what remote peers can make the daemon hold (docs/security.md); absent fields keep the defaults. */
  limits: LimitsSchema.optional(),
});

export type LunkitConfig = z.output<typeof ConfigSchema>;
export type BackstoreConfig = z.output<typeof BackstoreSchema>;
export type NbdConfigData = z.output<typeof NbdSchema>;
export type TpgConfigData = z.output<typeof TpgSchema>;
export type FuseMountConfig = z.output<typeof FuseMountSchema>;
