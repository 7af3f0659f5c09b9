#!/usr/bin/env node
// The lunkit executable: runs the compiled CLI (npm run build, or ./scripts/setup.sh).
import { main } from '../dist/cli/index.js';

main().catch((err) => {
  process.stderr.write(`lunkit: ${err?.message ?? err}\n`);
  process.exit(1);
});
