#!/usr/bin/env bash
# The crash-consistency test of the suite (test/interop/crash-consistency.test.ts)
# with more cycles: `lunkit serve` exports a file, an NBD (nbdkit) and a qcow2
# LUN over iSCSI, is killed with SIGKILL at a random moment during writes,
# FUA writes and SYNCHRONIZE CACHE, then restarted; every write acknowledged
# with FUA or before a completed SYNCHRONIZE CACHE must read back through it.
# Prints "crash consistency: N cycles, seed S: <per backstore: durable,
# checked, lost>".
#
#   ./scripts/crash-campaign.sh            100 cycles (about 1.5 s per cycle on 2 cores)
#   ./scripts/crash-campaign.sh 1000       1000 cycles
#   LUNKIT_CRASH_SEED=123 ./scripts/crash-campaign.sh 20    repeat a run (a failure names its seed)
#
# Builds dist/ first (the daemon runs from the build). Needs nbdkit and qemu-img.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-${LUNKIT_CRASH_CYCLES:-100}}"
case "$cycles" in '' | *[!0-9]*) echo "usage: $0 [CYCLES]" >&2; exit 2 ;; esac
npx tsc -p tsconfig.build.json
LUNKIT_CRASH_CYCLES="$cycles" exec npx vitest run --project interop test/interop/crash-consistency.test.ts
