#!/usr/bin/env bash
# lunkit's iSCSI initiator with 1, 2 and 4 connections per session (MC/S)
# against lunkit's target, and 1 against tgtd, same file, same jobs, one run.
# See bench/README.md. Arguments: --seconds N (default 5), --size MiB (512),
# --dir DIR (/dev/shm), --connections 1,2,4.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v tgtd >/dev/null || LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
npm run build >/dev/null 2>&1 || true
exec node dist/tools/bench-initiator.js "$@"
