// `lunkit acl add|delete|chap|map|unmap`: node ACLs of a TPG (which initiators
// may log in, with which CHAP secrets, seeing which LUNs). Deleting an ACL ends
// that initiator's sessions on the TPG.

import type { Argv, CommandModule } from 'yargs';

import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { aclChapParams, aclMapParams, aclParams, aclUnmapParams } from '../params.js';
import { callVerb } from '../verbs.js';
import { ARGV_SECRET_RISK, readSecrets, withSecretFileOptions } from '../secret.js';

interface AclArgs extends CommonArgs {
  iqn: string;
  initiator: string;
  tpg: number;
}

function base(y: Argv): Argv {
  return y
    .positional('iqn', { type: 'string', describe: 'target name' })
    .positional('initiator', { type: 'string', describe: 'initiator name (iqn./eui./naa.)' })
    .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' });
}

const T = 'iqn.2026-01.org.example:t1';
const I = 'iqn.1994-05.com.redhat:client1';

function addOrDelete(action: 'add' | 'delete'): CommandModule<object, AclArgs> {
  return {
    command: `${action} <iqn> <initiator>`,
    describe: action === 'add' ? 'Allow an initiator to log in to a TPG' : "Remove an initiator's ACL; its sessions on the TPG end",
    builder: (y: Argv) => withCommon(base(y).example(`$0 acl ${action} ${T} ${I}`, `${action} the ACL of client1`)) as Argv<AclArgs>,
    handler: (args) =>
      runVerb(
        args,
        () => aclParams(args),
        async (client, params) => {
          const res = await client.call(`acl.${action}`, params);
          printResult(res, args.json, () => `${action === 'add' ? 'Added' : 'Deleted'} ACL ${args.initiator} on ${args.iqn} tpg ${params.tpg}.`);
        },
      ),
  };
}

interface ChapArgs extends AclArgs {
  userid?: string;
  password?: string;
  'mutual-userid'?: string;
  'mutual-password'?: string;
  'password-file'?: string;
  'mutual-password-file'?: string;
  clear?: boolean;
}

const chap: CommandModule<object, ChapArgs> = {
  command: 'chap <iqn> <initiator>',
  describe: 'Set (or --clear) the CHAP credentials of an ACL; mutual CHAP lets the initiator check the target too',
  builder: (y: Argv) =>
    withCommon(
      withSecretFileOptions(
        base(y)
          .option('userid', { type: 'string', describe: 'CHAP user name the initiator sends' })
          .option('password', { type: 'string', requiresArg: true, describe: `CHAP secret (12 to 255 characters; "-": read stdin); ${ARGV_SECRET_RISK}` })
          .option('mutual-userid', { type: 'string', describe: 'user name the target answers with (mutual CHAP)' })
          .option('mutual-password', { type: 'string', requiresArg: true, describe: `secret of the target (mutual CHAP; "-": read stdin); ${ARGV_SECRET_RISK}` }),
        [
          { option: 'password', what: 'the CHAP secret' },
          { option: 'mutual-password', what: 'the mutual CHAP secret' },
        ],
      )
        .option('clear', { type: 'boolean', describe: 'remove both credentials' })
        .example(`$0 acl chap ${T} ${I} --userid client1 --password-file /root/client1.secret`, 'one-way CHAP, secret from a file')
        .example(`vault read -field=pw k | $0 acl chap ${T} ${I} --userid client1 --password -`, 'secret from stdin')
        .example(`$0 acl chap ${T} ${I} --userid client1 --password-file c1.secret --mutual-userid t1 --mutual-password-file t1.secret`, 'mutual CHAP')
        .example(`$0 acl chap ${T} ${I} --clear`, 'no CHAP'),
    ) as Argv<ChapArgs>,
  handler: (args) =>
    callVerb(
      args,
      'acl.chap',
      async () => {
        const [password, mutualPassword] = await readSecrets([
          { value: args.password, file: args['password-file'], option: 'password' },
          { value: args['mutual-password'], file: args['mutual-password-file'], option: 'mutual-password' },
        ]);
        return aclChapParams({
          iqn: args.iqn,
          initiator: args.initiator,
          tpg: args.tpg,
          userid: args.userid,
          password,
          mutualUserid: args['mutual-userid'],
          mutualPassword,
          clear: args.clear,
        });
      },
      (_params) => `${args.clear ? 'Cleared' : 'Set'} CHAP credentials of ${args.initiator}.`,
    ),
};

interface MapArgs extends AclArgs {
  'mapped-lun': number;
  'tpg-lun'?: number;
  'read-only'?: boolean;
}

const map: CommandModule<object, MapArgs> = {
  command: 'map <iqn> <initiator> <mapped-lun> <tpg-lun>',
  describe: 'Show TPG LUN <tpg-lun> to the initiator as LUN <mapped-lun>; its sessions get REPORTED LUNS DATA HAS CHANGED',
  builder: (y: Argv) =>
    withCommon(
      base(y)
        .positional('mapped-lun', { type: 'number', describe: 'LUN number the initiator sees' })
        .positional('tpg-lun', { type: 'number', describe: 'LUN number in the TPG' })
        .option('read-only', { type: 'boolean', default: false, describe: 'write-protected for this initiator' })
        .example(`$0 acl map ${T} ${I} 0 2`, 'client1 sees TPG LUN 2 as its LUN 0')
        .example(`$0 acl map ${T} ${I} 1 3 --read-only`, 'read-only mapping'),
    ) as Argv<MapArgs>,
  handler: (args) =>
    callVerb(
      args,
      'acl.map',
      () => aclMapParams({ ...args, mappedLun: args['mapped-lun'], tpgLun: args['tpg-lun'] as number, readOnly: args['read-only'] }),
      (params) => `Mapped LUN ${params.mappedLun as number} -> TPG LUN ${params.tpgLun as number} for ${args.initiator}.`,
    ),
};

const unmap: CommandModule<object, MapArgs> = {
  command: 'unmap <iqn> <initiator> <mapped-lun>',
  describe: 'Remove a mapped LUN from an ACL',
  builder: (y: Argv) =>
    withCommon(
      base(y)
        .positional('mapped-lun', { type: 'number', describe: 'LUN number the initiator sees' })
        .example(`$0 acl unmap ${T} ${I} 1`, 'client1 no longer sees its LUN 1'),
    ) as Argv<MapArgs>,
  handler: (args) =>
    callVerb(
      args,
      'acl.unmap',
      () => aclUnmapParams({ ...args, mappedLun: args['mapped-lun'] }),
      (params) => `Unmapped LUN ${params.mappedLun as number} of ${args.initiator}.`,
    ),
};

export const aclCommand: CommandModule = {
  command: 'acl <command>',
  describe: 'Node ACLs: add, delete, chap, map, unmap',
  builder: (y: Argv) =>
    y
      .command(addOrDelete('add'))
      .command(addOrDelete('delete'))
      .command(chap)
      .command(map)
      .command(unmap)
      .example('$0 acl add iqn.2026-01.org.example:t1 iqn.1994-05.com.redhat:client1', 'let client1 log in (it sees every LUN)')
      .demandCommand(1, 'name an acl command: add, delete, chap, map or unmap'),
  handler: () => undefined,
};
