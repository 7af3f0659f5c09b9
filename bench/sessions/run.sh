#!/usr/bin/env bash
# Session scale, lunkit vs tgtd with the same client (src/tools/session-scale.ts):
# N sessions of one connection each log in back to back, one INQUIRY on each,
# all log out. Prints login rate and RSS per session with ratios.
# Arguments: --sessions N (1000), --rounds R (1), --node-arg ARG (to lunkit's
# node, e.g. --node-arg=--cpu-prof), --baseline-rev REV (see bench/baseline.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
# Two sockets per session on this machine (client and server side).
ulimit -n "$(ulimit -Hn)"
npx tsc -p tsconfig.build.json >&2
. bench/baseline.sh
node dist/tools/bench-sessions.js "${args[@]}"
