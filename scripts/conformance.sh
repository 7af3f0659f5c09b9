#!/usr/bin/env bash
# Runs libiscsi's iscsi-test-cu (ALL, --dataloss, two initiator names) against
# lunkit serving a thin file LUN and prints "tests N: passed P, skipped S,
# failed F" plus each failure and skip with its reason.
#   ./scripts/conformance.sh [--min-pass N] [--max-fail N] [--test SUITE] [--log FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
exec node dist/tools/conformance.js "$@"
