// `lunkit backstore reset|snapshot|commit NAME`: operations on the image of a
// running qcow2 backstore (docs/cli.md "qcow2 images on a running daemon").
// The daemon holds the LU's I/O for the swap; the LU and its sessions stay.

import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';

import { withCommon, type CommonArgs } from '../output.js';
import { checkName } from '../params.js';
import { formatSize } from '../../util/size.js';
import { callVerb } from '../verbs.js';

interface NameArgs extends CommonArgs {
  name: string;
}

interface SnapshotArgs extends NameArgs {
  to: string;
}

export const resetVerb: CommandModule<object, NameArgs> = {
  command: 'reset <name>',
  describe: 'qcow2: drop every cluster of the top image (it reads as its backing file again); sessions get MEDIUM MAY HAVE CHANGED',
  builder: (y: Argv) =>
    withCommon(y.positional('name', { type: 'string', describe: 'a qcow2 backstore with a backing file' }).example('$0 backstore reset pc01', "discard pc01's changes to its golden image")) as Argv<NameArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.reset',
      () => ({ name: checkName(args.name, 'backstore name') }),
      (_p, res) => `Reset backstore ${args.name}: ${String(res.path)} reads as ${String(res.backing)} again.`,
    ),
};

export const snapshotVerb: CommandModule<object, SnapshotArgs> = {
  command: 'snapshot <name>',
  describe: 'qcow2: external snapshot: FILE becomes the new top image over the current one, which stays as its read-only backing file',
  builder: (y: Argv) =>
    withCommon(
      y
        .positional('name', { type: 'string', describe: 'a qcow2 backstore' })
        .option('to', { type: 'string', demandOption: true, describe: 'the new top image (must not exist); the configuration now names it' })
        .example('$0 backstore snapshot vm0 --to /srv/vm0-2.qcow2', 'freeze vm0.qcow2; new writes go to vm0-2.qcow2'),
    ) as Argv<SnapshotArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.snapshot',
      () => ({ name: checkName(args.name, 'backstore name'), to: resolve(String(args.to)) }),
      (p, res) => `Snapshot of backstore ${args.name}: writes go to ${p.to}; ${String(res.backing)} is its read-only backing file.`,
    ),
};

export const commitVerb: CommandModule<object, NameArgs> = {
  command: 'commit <name>',
  describe: 'qcow2: fold the top image into its backing file, then empty the top image (I/O waits only for the last pass)',
  builder: (y: Argv) =>
    withCommon(y.positional('name', { type: 'string', describe: 'a qcow2 backstore with a backing file' }).example('$0 backstore commit pc01', "write pc01's changes into its backing file")) as Argv<NameArgs>,
  handler: (args) =>
    callVerb(
      args,
      'backstore.commit',
      () => ({ name: checkName(args.name, 'backstore name') }),
      (_p, res) => `Committed ${formatSize(Number(res.bytes))} of backstore ${args.name} into ${String(res.backing)}.`,
      { progress: 'bytes' },
    ),
};
