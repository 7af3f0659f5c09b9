#!/usr/bin/env node
// A tiny stand-in for bin/lunkit.js with only attach/detach/mount/umount,
// until the lead registers them in src/cli/index.ts. Runs the compiled
// command modules (npm run build first), with the same failure handling.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
const dist = new URL('../../../dist/cli/commands/', import.meta.url);
const { attachCommand } = await import(new URL('attach.js', dist).href);
const { detachCommand } = await import(new URL('detach.js', dist).href);
const { mountCommand } = await import(new URL('mount.js', dist).href);
const { umountCommand } = await import(new URL('umount.js', dist).href);
await yargs(hideBin(process.argv))
  .scriptName('lunkit')
  .command(attachCommand)
  .command(detachCommand)
  .command(mountCommand)
  .command(umountCommand)
  .demandCommand(1)
  .strict()
  .fail((msg, err) => {
    if (err) {
      process.stderr.write(`lunkit: ${err.message}${err.code ? ` (${err.code})` : ''}\n`);
      process.exit(1);
    }
    process.stderr.write(`lunkit: ${msg}\n`);
    process.exit(2);
  })
  .parseAsync();
