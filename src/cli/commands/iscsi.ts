// `lunkit iscsi inquiry|readcap|luns <url>`: one-shot SCSI queries through the
// lunkit initiator (no daemon). CHAP comes from the URL
// (iscsi://user%password@host/iqn/lun) or LIBISCSI_CHAP_USERNAME/PASSWORD;
// mutual CHAP from --target-user/--target-password, the URL query
// (target_user=, target_password=) or LIBISCSI_CHAP_TARGET_USERNAME/PASSWORD,
// as libiscsi's tools read them. --password-file / --target-password-file
// (or "-" for stdin) keep the secrets out of argv (cli/secret.ts).

import type { Argv, CommandModule } from 'yargs';

import {
  deviceIdentification,
  formatSense,
  inquiry,
  openUrl,
  readCapacity16,
  reportLuns,
  testUnitReady,
  unitSerialNumber,
  type IscsiSession,
  type ScsiReply,
  type SessionOptions,
} from '../../initiator/index.js';
import { LunkitError } from '../../protocols/errors.js';
import { printResult, reportError } from '../output.js';
import { ARGV_SECRET_RISK, readSecrets } from '../secret.js';
import type { ChapEnv } from '../../initiator/url.js';

export interface InitiatorArgs {
  json: boolean;
  'initiator-name'?: string;
  'target-user'?: string;
  'target-password'?: string;
  'password-file'?: string;
  'target-password-file'?: string;
  digest?: boolean;
  timeout: number;
}

/** Options every initiator verb shares. */
export function withInitiatorOptions<T>(y: Argv<T>): Argv<T & InitiatorArgs> {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print the result (and errors, on stderr) as JSON' })
    .option('initiator-name', { type: 'string', describe: 'our iSCSI name (default iqn.2024-01.org.lunkit:initiator:<hostname>)' })
    .option('target-user', { type: 'string', describe: 'mutual CHAP: the name the target must answer with (or $LIBISCSI_CHAP_TARGET_USERNAME)' })
    .option('target-password', { type: 'string', requiresArg: true, describe: `mutual CHAP: the target secret (or $LIBISCSI_CHAP_TARGET_PASSWORD; "-": read stdin); ${ARGV_SECRET_RISK}` })
    .option('password-file', { type: 'string', requiresArg: true, describe: 'our CHAP secret from FILE ("-": stdin), for a URL with a user and no password' })
    .option('target-password-file', { type: 'string', requiresArg: true, describe: 'mutual CHAP: the target secret from FILE ("-": stdin)' })
    .option('digest', { type: 'boolean', describe: 'require (--digest) or refuse (--no-digest) CRC32C header and data digests; default: accept either' })
    .option('timeout', { type: 'number', default: 15, describe: 'seconds for connect and login' }) as unknown as Argv<T & InitiatorArgs>;
}

export type InitiatorOptions = Omit<SessionOptions, 'host' | 'port'> & {
  targetChap?: { user: string; password: string };
  /** Where the URL parser takes CHAP credentials the URL lacks: the environment, plus --password-file. */
  env: ChapEnv;
};

/** Session options from the shared flags (reads the secret files or stdin). */
export async function sessionOptions(args: InitiatorArgs): Promise<InitiatorOptions> {
  const digest = args.digest === undefined ? 'prefer' : args.digest;
  const user = args['target-user'];
  const [own, password] = await readSecrets([
    { file: args['password-file'], option: 'password' },
    { value: args['target-password'], file: args['target-password-file'], option: 'target-password' },
  ]);
  const env: ChapEnv = { ...(process.env as ChapEnv) };
  if (own !== undefined) env.LIBISCSI_CHAP_PASSWORD = own;
  return {
    env,
    initiatorName: args['initiator-name'],
    headerDigest: digest,
    dataDigest: digest,
    connectTimeoutMs: args.timeout * 1000,
    loginTimeoutMs: args.timeout * 1000,
    keepaliveIntervalMs: 0,
    targetChap: user !== undefined && password !== undefined ? { user, password } : undefined,
  };
}

/** A non-GOOD status is the command's answer, but for a one-shot query it is a failure. */
function value<T>(r: ScsiReply<T>, what: string): T {
  if (r.ok) return r.value;
  const sense = r.sense === undefined ? '' : `: ${formatSense(r.sense)}`;
  throw new LunkitError('ERR_ISCSI_SCSI_STATUS', `${what} failed with status 0x${r.status.toString(16).padStart(2, '0')}${sense}`);
}

/** Log in, clear the unit attention a new nexus gets, run `fn`, log out. */
async function withLun(url: string, args: InitiatorArgs, fn: (s: IscsiSession, lun: number) => Promise<void>): Promise<void> {
  try {
    const { session, lun } = await openUrl(url, await sessionOptions(args));
    try {
      // A new I_T nexus starts with a POWER ON unit attention; take it here.
      for (let i = 0; i < 3; i++) if ((await testUnitReady(session, lun)).ok) break;
      await fn(session, lun);
    } finally {
      await session.logout().catch(() => session.destroy());
    }
    process.exitCode = 0;
  } catch (err) {
    process.exitCode = reportError(err, args.json);
  }
}

const DEVICE_TYPES: Record<number, string> = { 0: 'disk', 1: 'tape', 5: 'cd/dvd', 0x0c: 'storage array', 0x0d: 'enclosure', 0x1f: 'unknown' };

interface UrlArgs extends InitiatorArgs {
  url: string;
}

const urlPositional = (y: Argv): Argv => y.positional('url', { type: 'string', demandOption: true, describe: 'iscsi://[user[%password]@]host[:port]/target-iqn/lun' });

const inquiryCmd: CommandModule<object, UrlArgs> = {
  command: 'inquiry <url>',
  describe: 'Standard INQUIRY, unit serial number and device identifiers of a LUN',
  builder: (y: Argv) =>
    withInitiatorOptions(urlPositional(y)).example('$0 iscsi inquiry iscsi://127.0.0.1/iqn.2003-01.org.example:disk/0', 'vendor, product, serial') as Argv<UrlArgs>,
  handler: (args) =>
    withLun(args.url, args, async (s, lun) => {
      const inq = value(await inquiry(s, lun), 'INQUIRY');
      const serial = await unitSerialNumber(s, lun);
      const ids = await deviceIdentification(s, lun);
      const result = {
        ...inq,
        deviceTypeName: DEVICE_TYPES[inq.deviceType] ?? `type 0x${inq.deviceType.toString(16)}`,
        serial: serial.ok ? serial.value : undefined,
        designators: ids.ok ? ids.value.map((d) => ({ type: d.designatorType, association: d.association, codeSet: d.codeSet, text: d.text })) : [],
      };
      printResult(result, args.json, () =>
        [
          `Vendor:   ${inq.vendor}`,
          `Product:  ${inq.product}`,
          `Revision: ${inq.revision}`,
          `Type:     ${result.deviceTypeName}${inq.removable ? ' (removable)' : ''}`,
          `Version:  SPC version 0x${inq.version.toString(16)}`,
          ...(result.serial !== undefined ? [`Serial:   ${result.serial}`] : []),
          ...result.designators.map((d) => `Id:       type ${d.type} ${d.text}`),
        ].join('\n'),
      );
    }),
};

const readcapCmd: CommandModule<object, UrlArgs> = {
  command: 'readcap <url>',
  describe: 'READ CAPACITY(16): blocks, block size, size and thin provisioning of a LUN',
  builder: (y: Argv) =>
    withInitiatorOptions(urlPositional(y)).example('$0 iscsi readcap iscsi://127.0.0.1/iqn.2003-01.org.example:disk/0', 'blocks, block size, thin provisioning') as Argv<UrlArgs>,
  handler: (args) =>
    withLun(args.url, args, async (s, lun) => {
      const cap = value(await readCapacity16(s, lun), 'READ CAPACITY(16)');
      const bytes = cap.blocks * BigInt(cap.blockSize);
      const result = { blocks: cap.blocks.toString(), blockSize: cap.blockSize, bytes: bytes.toString(), thin: cap.thin, unmapReadsZero: cap.unmapReadsZero };
      printResult(result, args.json, () =>
        [`Blocks:     ${cap.blocks}`, `Block size: ${cap.blockSize}`, `Size:       ${bytes} bytes`, `Thin:       ${cap.thin ? 'yes' : 'no'}`].join('\n'),
      );
    }),
};

const lunsCmd: CommandModule<object, UrlArgs> = {
  command: 'luns <url>',
  describe: 'REPORT LUNS: the LUNs the target maps to this initiator',
  builder: (y: Argv) =>
    withInitiatorOptions(urlPositional(y)).example('$0 iscsi luns iscsi://127.0.0.1/iqn.2003-01.org.example:disk', 'what REPORT LUNS answers') as Argv<UrlArgs>,
  handler: (args) =>
    withLun(args.url, args, async (s) => {
      const luns = value(await reportLuns(s), 'REPORT LUNS');
      printResult({ luns }, args.json, () => luns.map(String).join('\n'));
    }),
};

export const iscsiCommand: CommandModule = {
  command: 'iscsi <command>',
  describe: 'Query a remote iSCSI LUN with the lunkit initiator: inquiry, readcap, luns',
  builder: (y: Argv) => y.command(inquiryCmd).command(readcapCmd).command(lunsCmd).example('$0 iscsi luns iscsi://127.0.0.1/iqn.2003-01.org.example:disk', 'the LUNs a target reports').demandCommand(1, 'name an iscsi command: inquiry, readcap or luns'),
  handler: () => undefined,
};
