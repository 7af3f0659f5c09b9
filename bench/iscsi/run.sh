#!/usr/bin/env bash
# tgtd vs lunkit on the same tmpfs file with the same client (iscsi-perf).
# See bench/README.md. Arguments: --seconds N (default 10), --size MiB (1024).
set -euo pipefail
cd "$(dirname "$0")/../.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
exec node dist/tools/bench-iscsi.js "$@"
