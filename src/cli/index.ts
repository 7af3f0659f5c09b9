// The lunkit command line: one yargs command module per verb (STYLE.md §20);
// handlers call the library (serve, demo, daemon) or the daemon's control
// socket (every other verb, through ControlClient) and print.
// Exit codes: 0 ok, 1 daemon/operation error, 2 usage error.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

import type { Argv } from 'yargs';

import { EXIT_FAILED, EXIT_USAGE, UsageError } from './output.js';
import { packageVersion, versionText } from './version.js';


// Each verb's module is loaded only when that verb runs (or for --help and
// completion, which need them all): a control verb then starts without
// loading the target engine, which `serve`, `demo` and `daemon` pull in.
const VERBS: ReadonlyArray<[string, (y: Argv) => Promise<Argv>]> = [
  ['serve', async (y) => y.command((await import('./commands/serve.js')).serveCommand)],
  ['demo', async (y) => y.command((await import('./commands/demo.js')).demoCommand)],
  ['daemon', async (y) => y.command((await import('./commands/daemon.js')).daemonCommand)],
  ['ls', async (y) => y.command((await import('./commands/ls.js')).lsCommand)],
  ['backstore', async (y) => y.command((await import('./commands/backstore.js')).backstoreCommand)],
  ['target', async (y) => y.command((await import('./commands/target.js')).targetCommand)],
  ['portal', async (y) => y.command((await import('./commands/portal.js')).portalCommand)],
  ['lun', async (y) => y.command((await import('./commands/lun.js')).lunCommand)],
  ['acl', async (y) => y.command((await import('./commands/acl.js')).aclCommand)],
  ['set', async (y) => y.command((await import('./commands/set.js')).setCommand)],
  ['get', async (y) => y.command((await import('./commands/get.js')).getCommand)],
  ['sessions', async (y) => y.command((await import('./commands/sessions.js')).sessionsCommand)],
  ['nbd', async (y) => y.command((await import('./commands/nbd.js')).nbdCommand)],
  ['save', async (y) => y.command((await import('./commands/save.js')).saveCommand)],
  ['restore', async (y) => y.command((await import('./commands/restore.js')).restoreCommand)],
  ['diff', async (y) => y.command((await import('./commands/diff.js')).diffCommand)],
  ['apply', async (y) => y.command((await import('./commands/apply.js')).applyCommand)],
  ['clear', async (y) => y.command((await import('./commands/clear.js')).clearCommand)],
  ['import', async (y) => y.command((await import('./commands/import.js')).importCommand)],
  ['export', async (y) => y.command((await import('./commands/export.js')).exportCommand)],
  ['fuse', async (y) => y.command((await import('./commands/fuse.js')).fuseCommand)],
  ['attach', async (y) => y.command((await import('./commands/attach.js')).attachCommand)],
  ['detach', async (y) => y.command((await import('./commands/detach.js')).detachCommand)],
  ['mount', async (y) => y.command((await import('./commands/mount.js')).mountCommand)],
  ['umount', async (y) => y.command((await import('./commands/umount.js')).umountCommand)],
  ['discover', async (y) => y.command((await import('./commands/discover.js')).discoverCommand)],
  ['iscsi', async (y) => y.command((await import('./commands/iscsi.js')).iscsiCommand)],
  ['top', async (y) => y.command((await import('./commands/top.js')).topCommand)],
  ['stats', async (y) => y.command((await import('./commands/stats.js')).statsCommand)],
  ['bootlab', async (y) => y.command((await import('./commands/bootlab.js')).bootlabCommand)],
];

const EPILOGUE = `Daily workflow:
  lunkit daemon --config /etc/lunkit/saveconfig.json &
  lunkit backstore create file disk0 --path /srv/disk0.img --size 10G
  lunkit target create iqn.2026-01.org.example:t1 --portal 0.0.0.0:3260
  lunkit lun add iqn.2026-01.org.example:t1 disk0
  lunkit acl add iqn.2026-01.org.example:t1 iqn.1994-05.com.redhat:client1
  lunkit ls && lunkit save

Every control verb takes --json and --socket (default $LUNKIT_SOCKET or /run/lunkit/lunkit.sock).
Exit codes: 0 ok, 1 daemon or operation error, 2 usage error. See docs/cli.md.`;

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  const json = argv.includes('--json');
  let y: Argv = yargs(argv)
    .scriptName('lunkit')
    .usage('$0 <command> [options]\n\nA userspace SCSI target toolkit: SPC-4/SBC-3 core, file/ramdisk/null/nbd backstores, iSCSI and NBD targets, FUSE files.');
  const verb = VERBS.find(([name]) => name === argv[0]);
  if (verb) y = await verb[1](y);
  else for (const [, register] of VERBS) y = await register(y);
  await y
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .strict()
    .completion('completion', 'print a shell completion script (lunkit completion >> ~/.bashrc)')
    .epilogue(EPILOGUE)
    .fail((msg, err) => {
      if (err) {
        const code = (err as { code?: string }).code ?? 'ERR_INTERNAL';
        if (json) process.stderr.write(`${JSON.stringify({ error: { code, message: err.message } })}\n`);
        else process.stderr.write(`lunkit: ${err.message} (${code})\n`);
        process.exit(err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED);
      }
      if (json) process.stderr.write(`${JSON.stringify({ error: { code: 'ERR_USAGE', message: msg } })}\n`);
      else process.stderr.write(`lunkit: ${msg}\n(see lunkit --help)\n`);
      process.exit(EXIT_USAGE);
    })
    .help()
    .alias('help', 'h')
    // The commit (git) is looked up only when --version is asked for.
    .version(argv.includes('--version') ? versionText() : packageVersion())
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .parseAsync();
}
