// `lunkit get IQN [attribute|parameter] [name]`: read TPG attributes and
// login-parameter overrides back.

import type { Argv, CommandModule } from 'yargs';

import { ControlError } from '../../daemon/control-client.js';
import { findTpg, getConfig } from '../config-view.js';
import { printResult, runVerb, withCommon, type CommonArgs } from '../output.js';
import { attributeName, checkIscsiName } from '../params.js';

interface GetArgs extends CommonArgs {
  iqn: string;
  kind?: 'attribute' | 'parameter';
  name?: string;
  tpg: number;
}

export const getCommand: CommandModule<object, GetArgs> = {
  command: 'get <iqn> [kind] [name]',
  describe: 'Show the attributes and login parameters of a TPG (parameters: only those set; others negotiate RFC 7143 defaults)',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('iqn', { type: 'string', describe: 'target name' })
        .positional('kind', { choices: ['attribute', 'parameter'] as const, describe: 'only attributes or only parameters' })
        .positional('name', { type: 'string', describe: 'one attribute or parameter' })
        .option('tpg', { type: 'number', default: 1, describe: 'TPG tag' })
        .example('$0 get iqn.2026-01.org.example:t1', 'all attributes and parameters of TPG 1')
        .example('$0 get iqn.2026-01.org.example:t1 attribute authentication', 'one attribute'),
    ) as Argv<GetArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => {
        checkIscsiName(args.iqn, 'target name');
        if (args.name !== undefined && args.kind === 'attribute') return attributeName(args.name);
        return args.name;
      },
      async (client, name) => {
        const { config } = await getConfig(client);
        const tpg = findTpg(config, args.iqn, args.tpg);
        const sections: Record<string, Record<string, unknown>> = {};
        if (args.kind !== 'parameter') sections.attributes = { ...tpg.attributes };
        if (args.kind !== 'attribute') sections.parameters = { ...tpg.parameters };
        if (name !== undefined) {
          for (const [k, v] of Object.entries(sections)) sections[k] = name in v ? { [name]: v[name] } : {};
          if (Object.values(sections).every((s) => Object.keys(s).length === 0)) {
            throw new ControlError('ERR_NOT_FOUND', `${args.iqn} tpg ${args.tpg} has no ${args.kind ?? 'attribute or parameter'} ${name} set`);
          }
        }
        const result = Object.keys(sections).length === 1 ? Object.values(sections)[0] : sections;
        printResult(result, args.json, () => {
          const lines: string[] = [];
          for (const [k, v] of Object.entries(sections)) {
            if (Object.keys(sections).length > 1) lines.push(`${k}:`);
            const pad = Object.keys(sections).length > 1 ? '  ' : '';
            for (const [n, val] of Object.entries(v)) lines.push(`${pad}${n}=${String(val)}`);
            if (Object.keys(v).length === 0 && Object.keys(sections).length > 1) lines.push(`${pad}(none set)`);
          }
          return lines.join('\n');
        });
      },
    ),
};
