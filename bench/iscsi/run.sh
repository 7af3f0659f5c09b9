#!/usr/bin/env bash
# tgtd vs lunkit on the same tmpfs file with the same clients (iscsi-perf for
# reads, qemu-img bench for writes). See bench/README.md.
# Arguments: --seconds N (default 10), --size MiB (1024), --dir DIR (/dev/shm),
# --baseline-rev REV (also measure the build of git revision REV, e.g. HEAD
# to compare uncommitted changes, in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
args=()
baseline=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--baseline-rev" ]; then baseline="$2"; shift 2; else args+=("$1"); shift; fi
done
if [ -n "$baseline" ]; then
  tree=$(mktemp -d /tmp/lunkit-bench-baseline-XXXXXX)
  trap 'rm -rf "$tree"' EXIT
  git archive "$baseline" | tar -x -C "$tree"
  ln -s "$PWD/node_modules" "$tree/node_modules"
  mkdir -p "$tree/native" && rm -rf "$tree/native/build" && ln -s "$PWD/native/build" "$tree/native/build"
  (cd "$tree" && npx tsc -p tsconfig.build.json >&2)
  args+=(--baseline-root "$tree")
fi
exec node dist/tools/bench-iscsi.js "${args[@]}"
