#!/usr/bin/env bash
# Configuration scale (bench/README.md "Configuration scale"): 1,000 file
# backstores/LUNs, 200 targets, 2,000 ACLs against a real daemon: start,
# apply from empty, one-line apply and diff, ls --json, save, import targetcli.
# Arguments: --luns N --targets N --acls N. Profile a slow step with
# NODE_OPTIONS=--cpu-prof (every node process writes a .cpuprofile here).
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)"
npx tsc -p tsconfig.build.json >&2
node bench/config/bench.mjs "$@"
