#!/usr/bin/env bash
# nbdkit (file plugin) vs lunkit (NBD, file backstore) on the same tmpfs file
# with the same client (fio --ioengine=nbd). See bench/README.md.
# Arguments: --seconds N (default 10), --size MiB (1024), --dir DIR (/dev/shm),
# --only lunkit|nbdkit, --node-arg=--cpu-prof (profile lunkit),
# --baseline-rev REV (also measure the build of git revision REV, e.g. HEAD
# to compare uncommitted changes, in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
. bench/baseline.sh
# Not exec: the EXIT trap of bench/baseline.sh removes the baseline tree.
node dist/tools/bench-nbd.js "${args[@]}"
