// `lunkit bootlab ...`: diskless boot labs on a running daemon (docs/bootlab.md).
// A lab is a golden image, an address and clients by MAC; the daemon derives
// each client's qcow2 overlay, the lab target and its ACLs, and serves the
// iPXE scripts (HTTP), iPXE itself (TFTP) and, if asked, proxy DHCP.

import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';

import { renderTable } from '../config-view.js';
import { printResult, runVerb, UsageError, withCommon, type CommonArgs } from '../output.js';
import { formatSize } from '../../util/size.js';
import { callVerb } from '../verbs.js';

interface LabArgs extends CommonArgs {
  name: string;
}

interface CreateArgs extends LabArgs {
  golden: string;
  listen: string;
  'proxy-dhcp'?: string;
  dir?: string;
  'http-port'?: number;
  'tftp-port'?: number;
  'iscsi-port'?: number;
  'tftp-root'?: string;
  chap?: boolean;
}

interface ForceArgs extends LabArgs {
  force?: boolean;
}

interface ScriptArgs extends LabArgs {
  mac: string;
}

interface GoldenArgs extends LabArgs {
  path: string;
}

interface ClientArgs extends CommonArgs {
  lab: string;
  client: string;
  force?: boolean;
}

interface ClientAddArgs extends CommonArgs {
  lab: string;
  mac: string;
  name?: string;
  'reset-on-boot'?: boolean;
}

function port(v: number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw new UsageError('ERR_INVALID_NUMBER', `${what} is a port number 1..65535`);
  return v;
}

const create: CommandModule<object, CreateArgs> = {
  command: 'create <name>',
  describe: 'Create a boot lab: its HTTP, TFTP (and proxy DHCP) services and its iSCSI target on --listen',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string', describe: 'lab name (a-z 0-9 -, up to 20)' })
        .option('golden', { type: 'string', demandOption: true, describe: 'the golden image (raw or qcow2); never written' })
        .option('listen', { type: 'string', demandOption: true, describe: "the lab's IPv4 address (HTTP, TFTP and the iSCSI portal)" })
        .option('proxy-dhcp', { type: 'string', describe: 'answer PXE clients as proxy DHCP on this interface' })
        .option('dir', { type: 'string', describe: 'where client overlays live (default /var/lib/lunkit/bootlab/NAME)' })
        .option('http-port', { type: 'number', describe: 'default 80' })
        .option('tftp-port', { type: 'number', describe: 'default 69 (PXE ROMs always use 69)' })
        .option('iscsi-port', { type: 'number', describe: 'default 3260' })
        .option('tftp-root', { type: 'string', describe: 'directory served over TFTP (default /usr/lib/ipxe)' })
        .option('chap', { type: 'boolean', describe: 'per-client CHAP with generated secrets' })
        .example('$0 bootlab create lab1 --golden /srv/images/debian12.img --listen 192.0.2.1 --proxy-dhcp br0', 'a lab on br0'),
    ) as Argv<CreateArgs>,
  handler: (args) =>
    callVerb(
      args,
      'bootlab.create',
      () => {
        const ports: Record<string, number> = {};
        for (const [k, opt] of [['http', 'http-port'], ['tftp', 'tftp-port'], ['iscsi', 'iscsi-port']] as const) {
          const p = port(args[opt], `--${opt}`);
          if (p !== undefined) ports[k] = p;
        }
        return {
          name: args.name,
          golden: resolve(args.golden),
          listen: args.listen,
          ...(Object.keys(ports).length ? { ports } : {}),
          ...(args['proxy-dhcp'] !== undefined ? { proxyDhcp: args['proxy-dhcp'] } : {}),
          ...(args.dir !== undefined ? { dir: resolve(args.dir) } : {}),
          ...(args['tftp-root'] !== undefined ? { tftpRoot: resolve(args['tftp-root']) } : {}),
          ...(args.chap !== undefined ? { chap: args.chap } : {}),
        };
      },
      (p, res) => `Created boot lab ${args.name}: golden ${p.golden} (${String(res.goldenFormat)}), overlays in ${String(res.dir)}, scripts at http://${p.listen}${p.ports?.http ? `:${p.ports.http}` : ''}/boot/default.ipxe.`,
    ),
};

const del: CommandModule<object, ForceArgs> = {
  command: 'delete <name>',
  describe: 'Delete a boot lab, its target and every client overlay (refused while a client is logged in, unless --force)',
  builder: (y: Argv) => withCommon(y.positional('name', { type: 'string' }).option('force', { type: 'boolean', describe: 'even with clients logged in' }).example('$0 bootlab delete lab1', 'its services stop, overlays stay on disk')) as Argv<ForceArgs>,
  handler: (args) =>
    callVerb(
      args,
      'bootlab.delete',
      () => ({ name: args.name, ...(args.force ? { force: true } : {}) }),
      (_p, res) => `Deleted boot lab ${args.name} (${String(res.removedOverlays)} overlays removed).`,
    ),
};

interface ClientStatus {
  mac: string;
  name: string;
  lun: number;
  loggedIn: boolean;
  deltaBytes: number;
  golden: string;
  goldenCurrent: boolean;
  resetOnBoot: boolean;
  lastBoot: { time: string; address: string } | null;
}

interface LabStatus {
  name: string;
  golden: string;
  listen: string;
  ports: { http: number; tftp: number; iscsi: number };
  proxyDhcp: string | null;
  target: string;
  goldens: Array<{ path: string; current: boolean; clients: string[] }>;
  clients: ClientStatus[];
}

function renderLab(l: LabStatus): string {
  const head = [
    `Boot lab ${l.name}: ${l.listen} (HTTP ${l.ports.http}, TFTP ${l.ports.tftp}, iSCSI ${l.ports.iscsi}), proxy DHCP ${l.proxyDhcp ?? 'off'}`,
    `  target ${l.target}`,
    ...l.goldens.map((g) => `  golden ${g.path}${g.current ? ' (current)' : ''}: ${g.clients.length} client${g.clients.length === 1 ? '' : 's'}`),
  ];
  const rows = l.clients.map((c) => [
    c.name,
    c.mac,
    String(c.lun),
    c.loggedIn ? 'yes' : 'no',
    formatSize(c.deltaBytes),
    c.goldenCurrent ? 'current' : c.golden,
    c.resetOnBoot ? 'yes' : 'no',
    c.lastBoot ? `${c.lastBoot.time} from ${c.lastBoot.address}` : '-',
  ]);
  return `${head.join('\n')}\n${rows.length ? renderTable(['CLIENT', 'MAC', 'LUN', 'LOGGED-IN', 'DELTA', 'GOLDEN', 'RESET-ON-BOOT', 'LAST BOOT'], rows) : '  no clients\n'}`;
}

const status: CommandModule<object, LabArgs> = {
  command: 'status <name>',
  describe: 'Clients of a lab: logged in or not, overlay size, golden image in use, last boot',
  builder: (y: Argv) => withCommon(y.positional('name', { type: 'string' }).example('$0 bootlab status lab1', '')) as Argv<LabArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => ({ name: args.name }),
      async (client, params) => {
        const res = await client.call<{ lab: LabStatus }>('bootlab.status', params);
        printResult(res, args.json, () => renderLab(res.lab));
      },
    ),
};

const list: CommandModule<object, CommonArgs> = {
  command: 'list',
  describe: 'Every boot lab with its clients',
  builder: (y: Argv) => withCommon(y.example('$0 bootlab list --json', 'every lab, for scripts')) as Argv<CommonArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => ({}),
      async (client) => {
        const res = await client.call<{ labs: LabStatus[] }>('bootlab.list', {});
        printResult(res, args.json, () => (res.labs.length ? res.labs.map(renderLab).join('\n') : 'No boot labs.'));
      },
    ),
};

const script: CommandModule<object, ScriptArgs> = {
  command: 'script <name> <mac>',
  describe: 'The iPXE script a client gets (contains its CHAP secret if the lab has chap on)',
  builder: (y: Argv) => withCommon(y.positional('name', { type: 'string' }).positional('mac', { type: 'string' }).example('$0 bootlab script lab1 52:54:00:12:34:56', 'the iPXE script that machine gets')) as Argv<ScriptArgs>,
  handler: (args) =>
    runVerb(
      args,
      () => ({ name: args.name, mac: String(args.mac) }),
      async (client, params) => {
        const res = await client.call<{ script: string }>('bootlab.script', params);
        printResult(res, args.json, () => res.script);
      },
    ),
};

const golden: CommandModule<object, GoldenArgs> = {
  command: 'golden <name> <path>',
  describe: 'Make PATH the golden image of new and reset clients; running clients keep theirs until reset',
  builder: (y: Argv) =>
    withCommon(y.positional('name', { type: 'string' }).positional('path', { type: 'string' }).example('$0 bootlab golden lab1 /srv/images/debian12-v2.img', 'live swap')) as Argv<GoldenArgs>,
  handler: (args) =>
    callVerb(
      args,
      'bootlab.golden',
      () => ({ name: args.name, path: resolve(args.path) }),
      (p, res) => {
        const still = (res.stillOnPrevious as string[] | undefined) ?? [];
        return `Boot lab ${args.name}: new and reset clients get ${p.path}.${still.length ? ` Still on ${String(res.previous)} until reset: ${still.join(', ')}.` : ''}`;
      },
    ),
};

const clientAdd: CommandModule<object, ClientAddArgs> = {
  command: 'add <lab> <mac>',
  describe: 'Register a machine by MAC: a copy-on-write overlay of the golden image as its LUN 0',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('lab', { type: 'string' })
        .positional('mac', { type: 'string', describe: 'e.g. 52:54:00:12:34:56' })
        .option('name', { type: 'string', describe: 'client name (a-z 0-9 -, up to 32; default from the MAC)' })
        .option('reset-on-boot', { type: 'boolean', describe: 'stateless: a fresh overlay at every boot' })
        .example('$0 bootlab client add lab1 52:54:00:12:34:56 --name pc01', ''),
    ) as Argv<ClientAddArgs>,
  handler: (args) =>
    callVerb(
      args,
      'bootlab.client.add',
      () => ({ lab: args.lab, mac: String(args.mac), ...(args.name !== undefined ? { name: args.name } : {}), ...(args['reset-on-boot'] ? { resetOnBoot: true } : {}) }),
      (_p, res) => `Added client ${String(res.name)} (${String(res.mac)}) to boot lab ${args.lab}: initiator ${String(res.initiator)}, overlay ${String(res.overlay)}.`,
    ),
};

function clientVerb(verb: 'delete' | 'reset', describe: string, done: (res: Record<string, unknown>) => string): CommandModule<object, ClientArgs> {
  return {
    command: `${verb} <lab> <client>`,
    describe,
    builder: (y: Argv) =>
      withCommon(
        y
          .positional('lab', { type: 'string' })
          .positional('client', { type: 'string', describe: 'MAC or client name' })
          .option('force', { type: 'boolean', describe: 'even while the client is logged in' })
          .example(`$0 bootlab client ${verb} lab1 pc01`, `${verb} the machine named pc01 (or give its MAC)`),
      ) as Argv<ClientArgs>,
    handler: (args) =>
      callVerb(args, `bootlab.client.${verb}`, () => ({ lab: args.lab, client: String(args.client), ...(args.force ? { force: true } : {}) }), (_p, res) => done(res)),
  };
}

const client: CommandModule<object, CommonArgs> = {
  command: 'client <verb>',
  describe: 'Machines of a lab: add, delete, reset',
  builder: (y: Argv) =>
    y
      .command(clientAdd)
      .command(clientVerb('delete', 'Forget a machine and remove its overlay', (r) => `Deleted client ${String(r.name)} of boot lab ${String(r.lab)}.`))
      .command(clientVerb('reset', "Back to the lab's current golden image (a new empty overlay)", (r) => `Reset client ${String(r.name)}: ${String(r.overlay)} over ${String(r.golden)}.`))
      .example('$0 bootlab client add lab1 52:54:00:12:34:56 --name pc01', 'a new machine with its own overlay')
      .demandCommand(1, 'name a client verb: add, delete, reset') as Argv<CommonArgs>,
  handler: () => {},
};

export const bootlabCommand: CommandModule<object, CommonArgs> = {
  command: 'bootlab <verb>',
  describe: 'Diskless PXE/iSCSI boot labs: golden image, per-client overlays, iPXE scripts, TFTP, proxy DHCP',
  builder: (y: Argv) =>
    y
      .command(create)
      .command(del)
      .command(list)
      .command(status)
      .command(script)
      .command(golden)
      .command(client)
      .example('$0 bootlab create lab1 --golden /srv/golden.qcow2 --listen 192.0.2.1 --proxy-dhcp eth1', 'a lab on eth1')
      .demandCommand(1, 'name a bootlab verb: create, delete, list, status, script, golden, client') as Argv<CommonArgs>,
  handler: () => {},
};
