// The iscsi backstore type: a LUN of a remote iSCSI target through lunkit's
// own initiator (README.md). Config, CLI and targetcli mapping; the session
// and the I/O are iscsi.ts, loaded only when one is opened.
//
// CHAP secrets never travel in argv and never reach logs or listings: the
// configuration names them (`password`, or `passwordFile` read when the
// backstore opens), `lunkit backstore create iscsi` only takes a file, and
// every URL shown is redacted. The daemon never takes credentials from its
// own environment (LIBISCSI_CHAP_*); `lunkit attach` does, as libiscsi.

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { LunkitError } from '../../protocols/errors.js';
import { parseIscsiUrl } from '../../initiator/url.js';
import { CLI_OPTIONS, cliOption } from '../cli-options.js';
import { defineBackstore } from '../descriptor.js';
import { serialSchema } from '../schema.js';
import { redactIscsiUrl, urlHasPassword } from './redact.js';

const ISCSI_URL = /^iscsi:\/\//i;

/** One CHAP account: the secret inline or in a file (first line, read at open). */
const ChapSchema = z
  .strictObject({
    userid: z.string().min(1).max(255),
    password: z.string().min(1).max(255).optional(),
    /** A file holding the secret (its first line); keeps it out of the configuration. */
    passwordFile: z.string().min(1).optional(),
  })
  .refine((c) => (c.password === undefined) !== (c.passwordFile === undefined), 'give password or passwordFile (one of them)');

export const IscsiBackstoreSchema = z
  .strictObject({
    type: z.literal('iscsi'),
    /** iscsi://host[:port]/target-iqn/lun (docs/initiator.md). */
    url: z.string().regex(ISCSI_URL, 'iSCSI URLs start with iscsi://'),
    /** Check only: the remote LUN's block size is used; a different one refuses to open. */
    blockSize: z.union([z.literal(512), z.literal(4096)]).optional(),
    readOnly: z.boolean().default(false),
    removable: z.boolean().default(false),
    serial: serialSchema,
    /** MC/S: connections per session (the target may grant fewer). */
    connections: z.number().int().min(1).max(65535).optional(),
    /** ErrorRecoveryLevel to ask for. */
    erl: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
    /** One-way CHAP (what we prove to the target), unless the URL names a user. */
    chap: ChapSchema.optional(),
    /** Mutual CHAP (what the target must prove to us); needs one-way CHAP. */
    mutualChap: ChapSchema.optional(),
  })
  .superRefine((c, ctx) => {
    try {
      parseIscsiUrl(c.url, { env: {} });
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: (e as Error).message });
    }
    // The initiator ignores mutual CHAP without one-way CHAP (as libiscsi): refuse rather than not check the target.
    if (c.mutualChap && !c.chap && !/^iscsi:\/\/[^/]*@/i.test(c.url)) {
      ctx.addIssue({ code: 'custom', path: ['mutualChap'], message: 'mutual CHAP needs one-way CHAP (chap, or a user in the URL)' });
    }
  });

export type IscsiBackstoreConfig = z.output<typeof IscsiBackstoreSchema>;
type ChapConfig = NonNullable<IscsiBackstoreConfig['chap']>;

/** The secret of a CHAP account, from the configuration or its file (first line). */
async function secret(c: ChapConfig, what: string): Promise<{ userid: string; password: string }> {
  if (c.password !== undefined) return { userid: c.userid, password: c.password };
  let text: string;
  try {
    text = await readFile(c.passwordFile!, 'utf8');
  } catch (e) {
    throw new LunkitError('EINVAL', `cannot read the ${what} secret file ${c.passwordFile}: ${(e as Error).message}`, { cause: e });
  }
  const password = text.split(/\r?\n/, 1)[0];
  if (password.length === 0 || password.length > 255) throw new LunkitError('EINVAL', `the ${what} secret file ${c.passwordFile} holds no secret of 1 to 255 characters on its first line`);
  return { userid: c.userid, password };
}

function chapOptions(a: Readonly<Record<string, unknown>>, prefix: '' | 'mutual-', ctx: { usage(m: string): Error; absolute(p: string): string }): { userid: string; passwordFile: string } | undefined {
  const key = prefix === '' ? 'chap' : 'mutualChap';
  const userid = a[`${key}Userid`];
  const file = a[`${key}PasswordFile`];
  if (userid === undefined && file === undefined) return undefined;
  if (typeof userid !== 'string' || typeof file !== 'string' || userid === '' || file === '') {
    throw ctx.usage(`--${prefix}chap-userid and --${prefix}chap-password-file go together`);
  }
  if (userid.length > 255) throw ctx.usage(`--${prefix}chap-userid must be 1 to 255 characters`);
  return { userid, passwordFile: ctx.absolute(file) };
}

export const iscsiBackstore = defineBackstore({
  type: 'iscsi',
  summary: 'a LUN of a remote iSCSI target (lunkit initiator: MC/S, ERL 0-2, CHAP)',
  schema: IscsiBackstoreSchema,
  reopenOn: ['url', 'blockSize', 'readOnly', 'connections', 'erl', 'chap', 'mutualChap'],
  fixedSize: "is an iSCSI initiator: its size is the remote LUN's",

  async open(name, c) {
    const chap = c.chap ? await secret(c.chap, 'CHAP') : undefined;
    const mutualChap = c.mutualChap ? await secret(c.mutualChap, 'mutual CHAP') : undefined;
    const { IscsiBackstore } = await import('./iscsi.js');
    return IscsiBackstore.open({
      url: c.url,
      name,
      readOnly: c.readOnly,
      connections: c.connections,
      errorRecoveryLevel: c.erl,
      chap,
      mutualChap,
      ignoreEnvironment: true,
      blockSize: c.blockSize,
    });
  },

  describe: (c) => ({ where: redactIscsiUrl(c.url) }),

  cli: {
    usage: '--url',
    options: [
      cliOption('url', 'string', 'iscsi://host[:port]/target-iqn/lun'),
      cliOption('connections', 'number', 'connections per session (MC/S)'),
      cliOption('erl', 'number', 'ErrorRecoveryLevel to ask for', { choices: [0, 1, 2] }),
      cliOption('chap-userid', 'string', 'CHAP user name'),
      cliOption('chap-password-file', 'string', 'file whose first line is the CHAP secret (never on the command line)'),
      cliOption('mutual-chap-userid', 'string', 'mutual CHAP: the name the target must answer with'),
      cliOption('mutual-chap-password-file', 'string', "mutual CHAP: file with the target's secret"),
      CLI_OPTIONS.blockSize,
      CLI_OPTIONS.readOnly,
      CLI_OPTIONS.removable,
      CLI_OPTIONS.serial,
    ],
    examples: [['$0 backstore create iscsi far0 --url iscsi://10.0.0.5/iqn.2003-01.org.example:disk1/0 --chap-userid me --chap-password-file /etc/lunkit/far0.secret', 'a remote iSCSI LUN as backstore']],
    params(a, ctx) {
      if (typeof a.url !== 'string' || !ISCSI_URL.test(a.url)) throw ctx.usage('an iscsi backstore needs --url iscsi://host[:port]/target-iqn/lun');
      if (urlHasPassword(a.url)) throw ctx.usage('keep CHAP secrets off the command line: give --chap-userid and --chap-password-file instead of a password in --url');
      const out: Record<string, unknown> = { url: a.url };
      if (a.connections !== undefined) {
        const n = a.connections;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw ctx.usage(`--connections must be an integer 1..65535 (got ${String(n)})`);
        out.connections = n;
      }
      if (a.erl !== undefined) {
        if (a.erl !== 0 && a.erl !== 1 && a.erl !== 2) throw ctx.usage(`--erl is 0, 1 or 2 (got ${String(a.erl)})`);
        out.erl = a.erl;
      }
      const chap = chapOptions(a, '', ctx);
      if (chap) out.chap = chap;
      const mutual = chapOptions(a, 'mutual-', ctx);
      if (mutual) {
        if (!chap) throw ctx.usage('mutual CHAP needs --chap-userid and --chap-password-file too');
        out.mutualChap = mutual;
      }
      return out;
    },
  },

  targetcli: { notInLio: 'LIO has no iSCSI initiator backstore' },
});
