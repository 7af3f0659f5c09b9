// The `bootlabs` section of the configuration (docs/bootlab.md): per lab the
// golden image, where the lab's services listen, and its clients by MAC. The
// iSCSI objects a lab needs (one qcow2 overlay backstore per client, one
// target with an ACL per client) are not stored: expand.ts derives them, so a
// saved configuration holds what the operator decided and nothing twice.

import { z } from 'zod';

/** Lab names go into IQNs and backstore names: lower case, short. */
export const LAB_NAME = /^[a-z0-9][a-z0-9-]{0,19}$/;
/** Client names go into IQNs and file names (a hostname label, at most 32). */
export const CLIENT_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** MAC keys are canonical: six lower-case hex pairs with colons. */
export const MAC_KEY = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

const absolutePath = z.string().regex(/^\//, 'an absolute path');
const ipv4 = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/, 'an IPv4 address (PXE and iPXE speak IPv4), e.g. 192.0.2.1');
const port = z.number().int().min(1).max(65535);
const imageFormat = z.enum(['raw', 'qcow2']);

export const BootlabChapSchema = z.strictObject({
  userid: z.string().min(1).max(255),
  password: z.string().min(12, 'CHAP secrets are at least 12 characters (RFC 7143 §9.2.1)').max(255),
});

export const BootlabClientSchema = z.strictObject({
  name: z.string().regex(CLIENT_NAME, 'client names use a-z 0-9 - (1 to 32 characters, starting with a letter or digit)'),
  /** TPG LUN of the lab target that holds this client's disk (the client sees it as LUN 0). */
  lun: z.number().int().min(0).max(16383),
  /** A fresh overlay whenever the client asks for its script while not logged in. */
  resetOnBoot: z.boolean().default(false),
  /** The golden image this client's overlay was made from (it stays until a reset). */
  golden: absolutePath,
  goldenFormat: imageFormat,
  /** Bumped by every reset: the overlay file is <dir>/<name>.<generation>.qcow2. */
  generation: z.number().int().min(0).default(0),
  /** Per-client CHAP (when the lab has chap on); generated, carried by the client's script. */
  chap: BootlabChapSchema.optional(),
});

export const BootlabSchema = z.strictObject({
  /** The golden image new and reset clients get (raw or qcow2; never written). */
  golden: absolutePath,
  goldenFormat: imageFormat,
  /** The lab's address: HTTP, TFTP and the iSCSI portal listen here; scripts point here. */
  listen: ipv4,
  ports: z
    .strictObject({ http: port.default(80), tftp: port.default(69), iscsi: port.default(3260) })
    .default({ http: 80, tftp: 69, iscsi: 3260 }),
  /** Answer PXE clients as proxy DHCP on this interface (the site DHCP server keeps handing out addresses). */
  proxyDhcp: z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'an interface name, e.g. br0').optional(),
  /** Where the clients' overlays live. */
  dir: absolutePath,
  /** Directory served over TFTP (iPXE binaries). */
  tftpRoot: absolutePath.default('/usr/lib/ipxe'),
  /** Per-client CHAP: every client gets generated credentials. */
  chap: z.boolean().default(false),
  /** MAC (aa:bb:cc:dd:ee:ff) -> client. */
  clients: z.record(z.string().regex(MAC_KEY, 'client keys are MAC addresses, lower case, e.g. 52:54:00:12:34:56'), BootlabClientSchema).default({}),
});

export const BootlabsSchema = z.record(z.string().regex(LAB_NAME, 'lab names use a-z 0-9 - (1 to 20 characters)'), BootlabSchema);

export type BootlabConfig = z.output<typeof BootlabSchema>;
export type BootlabClientConfig = z.output<typeof BootlabClientSchema>;
export type BootlabsConfig = z.output<typeof BootlabsSchema>;
