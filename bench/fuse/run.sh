#!/usr/bin/env bash
# lunkit FUSE file vs nbdfuse over the same nbdkit export (root; needs nbdkit,
# libnbd-bin (nbdfuse), fio, fuse). Usage: bench/fuse/run.sh [--runtime S] [--attach-args "--direct-io"]
set -euo pipefail
cd "$(dirname "$0")/../.."
for t in nbdkit nbdfuse fio fusermount; do command -v "$t" >/dev/null || { echo "missing $t (apt-get install nbdkit libnbd-bin fio fuse)"; exit 1; }; done
npm run build >/dev/null 2>&1 || true
exec node dist/tools/bench-fuse.js "$@"
