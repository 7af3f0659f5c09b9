// `lunkit set attribute|parameter IQN name=value...` and `lunkit set
// discovery-auth`: TPG attributes, login-key overrides (RFC 7143 §13) and the
// CHAP credentials of SendTargets discovery sessions.

import type { Argv, CommandModule } from 'yargs';

import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { discoveryAuthParams, setParams, TPG_ATTRIBUTES } from '../params.js';
import { callVerb } from '../verbs.js';
import { ARGV_SECRET_RISK, readSecrets, withSecretFileOptions } from '../secret.js';

interface SetArgs extends CommonArgs {
  iqn: string;
  assignments: string[];
  tpg: number;
}

const T = 'iqn.2026-01.org.example:t1';

function setVerb(kind: 'attribute' | 'parameter'): CommandModule<object, SetArgs> {
  return {
    command: `${kind} <iqn> <assignments..>`,
    describe:
      kind === 'attribute'
        ? `Set TPG attributes (${Object.keys(TPG_ATTRIBUTES).join(', ')}); applied in order`
        : 'Set login parameters of a TPG (RFC 7143 §13 keys, e.g. MaxRecvDataSegmentLength, HeaderDigest); new logins use them',
    builder: (y: Argv) =>
      withCommon(
        y
          .positional('iqn', { type: 'string', describe: 'target name' })
          .positional('assignments', { type: 'string', array: true, describe: 'name=value pairs' })
          .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' })
          .example(
            kind === 'attribute' ? `$0 set attribute ${T} authentication=true loginTimeout=30` : `$0 set parameter ${T} HeaderDigest=CRC32C,None MaxBurstLength=1048576`,
            kind === 'attribute' ? 'require CHAP; longer login timeout' : 'offer header digests; larger bursts',
          ),
      ) as Argv<SetArgs>,
    handler: (args) =>
      runVerb(
        args,
        () => setParams(kind, { iqn: args.iqn, assignments: args.assignments.map(String), tpg: args.tpg }),
        async (client, requests) => {
          // One request per name=value: each is all-or-nothing on its own, and
          // the first refused one stops the rest.
          const results: unknown[] = [];
          for (const p of requests) results.push(await client.call(`${kind}.set`, p));
          printResult(results.length === 1 ? results[0] : results, args.json, () =>
            requests.map((p) => `Set ${kind} ${String(p.name)}=${String(p.value)} on ${args.iqn} tpg ${args.tpg}.`).join('\n'),
          );
        },
      ),
  };
}

interface DiscoveryArgs extends CommonArgs {
  enable?: boolean;
  userid?: string;
  password?: string;
  'mutual-userid'?: string;
  'mutual-password'?: string;
  'password-file'?: string;
  'mutual-password-file'?: string;
}

const discoveryAuth: CommandModule<object, DiscoveryArgs> = {
  command: 'discovery-auth',
  describe: 'Require CHAP for discovery (SendTargets) sessions, or turn it off with --no-enable',
  builder: (y: Argv) =>
    withCommon(
      withSecretFileOptions(
        y
          .option('enable', { type: 'boolean', describe: 'require CHAP for discovery (default: on when --userid is given)' })
          .option('userid', { type: 'string', describe: 'CHAP user name' })
          .option('password', { type: 'string', requiresArg: true, describe: `CHAP secret (12 to 255 characters; "-": read stdin); ${ARGV_SECRET_RISK}` })
          .option('mutual-userid', { type: 'string', describe: 'user name of the target (mutual CHAP)' })
          .option('mutual-password', { type: 'string', requiresArg: true, describe: `secret of the target (mutual CHAP; "-": read stdin); ${ARGV_SECRET_RISK}` }),
        [
          { option: 'password', what: 'the CHAP secret' },
          { option: 'mutual-password', what: 'the mutual CHAP secret' },
        ],
      )
        .example('$0 set discovery-auth --userid disc --password-file /root/discovery.secret', 'CHAP for discovery')
        .example('$0 set discovery-auth --no-enable', 'open discovery'),
    ) as Argv<DiscoveryArgs>,
  handler: (args) =>
    callVerb(
      args,
      'discoveryAuth.set',
      async () => {
        const [password, mutualPassword] = await readSecrets([
          { value: args.password, file: args['password-file'], option: 'password' },
          { value: args['mutual-password'], file: args['mutual-password-file'], option: 'mutual-password' },
        ]);
        return discoveryAuthParams({ enable: args.enable, userid: args.userid, password, mutualUserid: args['mutual-userid'], mutualPassword });
      },
      (params) => `Discovery authentication ${params.enabled ? 'enabled' : 'disabled'}.`,
    ),
};

export const setCommand: CommandModule = {
  command: 'set <command>',
  describe: 'Set TPG attributes, login parameters or discovery authentication',
  builder: (y: Argv) =>
    y
      .command(setVerb('attribute'))
      .command(setVerb('parameter'))
      .command(discoveryAuth)
      .example('$0 set attribute iqn.2026-01.org.example:t1 generateNodeAcls=true', 'any initiator may log in')
      .demandCommand(1, 'name a set command: attribute, parameter or discovery-auth'),
  handler: () => undefined,
};
