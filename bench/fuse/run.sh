#!/usr/bin/env bash
# lunkit FUSE file vs nbdfuse over the same nbdkit export (root; needs nbdkit,
# libnbd-bin (nbdfuse), fio).
# Usage: bench/fuse/run.sh [--runtime S] [--attach-args "--direct-io"] [--baseline-rev REV]
#   --baseline-rev REV: also measure the build of git revision REV (e.g. HEAD,
#   to compare uncommitted changes), job by job in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
for t in nbdkit nbdfuse fio; do command -v "$t" >/dev/null || { echo "missing $t (apt-get install nbdkit libnbd-bin fio)"; exit 1; }; done
args=()
baseline=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--baseline-rev" ]; then baseline="$2"; shift 2; else args+=("$1"); shift; fi
done
npm run build >/dev/null 2>&1 || true
if [ -n "$baseline" ]; then
  tree=$(mktemp -d /tmp/lunkit-bench-baseline-XXXXXX)
  trap 'rm -rf "$tree"' EXIT
  git archive "$baseline" | tar -x -C "$tree"
  ln -s "$PWD/node_modules" "$tree/node_modules"
  (cd "$tree" && npx tsc -p tsconfig.build.json >/dev/null 2>&1 || true)
  args+=(--baseline "$tree/test/integration/fuse/lunkit-fuse-cli.mjs")
fi
node dist/tools/bench-fuse.js "${args[@]}"
