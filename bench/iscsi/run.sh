#!/usr/bin/env bash
# tgtd vs lunkit on the same tmpfs file with the same clients (iscsi-perf for
# reads, qemu-img bench for writes). See bench/README.md.
# Arguments: --seconds N (default 10), --size MiB (1024), --dir DIR (/dev/shm),
# --baseline-rev REV (also measure the build of git revision REV, e.g. HEAD
# to compare uncommitted changes, in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  # The header comment above is the usage; e.g. compare against a revision:
  #   bench/iscsi/run.sh --seconds 5 --size 256 --baseline-rev a148aae
  sed -n '2,6s/^# \{0,1\}//p' "$0"
  echo "Example: bench/iscsi/run.sh --seconds 5 --size 256 --baseline-rev a148aae"
  exit 0
fi
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
. bench/baseline.sh
# Not exec: the EXIT trap of bench/baseline.sh removes the baseline tree.
node dist/tools/bench-iscsi.js "${args[@]}"
