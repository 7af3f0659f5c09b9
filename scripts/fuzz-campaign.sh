#!/usr/bin/env bash
# The live fuzz campaign of issue 17 at full size: a real `lunkit daemon`,
# mutated iSCSI PDUs (login phase, discovery sessions, full feature phase with
# and without digests) and NBD messages (option haggling, transmission with
# simple, structured and extended replies) from test/fuzz/corpus, a side
# session per fabric verifying its data throughout. Prints cases, crashes,
# answered/closed counts, findings and side-session verifications
# (test/fuzz/live-campaign.ts). The suite runs a one-minute slice of it.
#
#   ./scripts/fuzz-campaign.sh                     1,000,000 iSCSI + 1,000,000 NBD cases
#   ./scripts/fuzz-campaign.sh 200000 50000        other counts (iSCSI, NBD)
#   LUNKIT_FUZZ_SEED=123 ./scripts/fuzz-campaign.sh   repeat a run (the seed is printed)
#
# Stops after LUNKIT_FUZZ_MINUTES (default 40) whatever the counts. Builds
# dist/ first (the daemon runs from the build). Reproducers of findings go to
# $TMPDIR/lunkit-fuzz-findings-SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
iscsi="${1:-1000000}"
nbd="${2:-1000000}"
for n in "$iscsi" "$nbd"; do
  case "$n" in '' | *[!0-9]*) echo "usage: $0 [ISCSI_CASES [NBD_CASES]]" >&2; exit 2 ;; esac
done
minutes="${LUNKIT_FUZZ_MINUTES:-40}"
npx tsc -p tsconfig.build.json
LUNKIT_FUZZ_ISCSI_CASES="$iscsi" LUNKIT_FUZZ_NBD_CASES="$nbd" LUNKIT_LIVE_FUZZ_MS=$((minutes * 60000)) \
  exec npx vitest run --project fuzz test/fuzz/live-daemon.fuzz.test.ts
