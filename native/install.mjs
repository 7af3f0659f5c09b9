// npm's install step for the lunkit_native addon (package.json "install"):
// node-gyp rebuild in native/. node-gyp downloads Node's headers unless told
// where they are; Debian's and NodeSource's nodejs (and the official
// tarballs) ship them next to the binary (<prefix>/include/node), so point
// node-gyp there and the build needs no network. A failed build fails the
// install with what to install: FUSE and systemd readiness need the addon.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const env = { ...process.env };
const prefix = dirname(dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) env.npm_config_nodedir = prefix;

// Inside npm's lifecycle, node-gyp is on the PATH (npm ships it).
const r = spawnSync('node-gyp', ['rebuild', '--directory', here], { stdio: 'inherit', env });
if (r.status !== 0) {
  const why = r.error ? `${r.error.message} (run through npm: npm run install)` : `exit ${r.status ?? r.signal}`;
  process.stderr.write(`lunkit: building the native addon failed: ${why}\n` +
    'lunkit: it needs a C compiler, make and python3 (Debian: apt-get install g++ make python3)\n');
  process.exit(1);
}
