#!/usr/bin/env bash
# The qcow2 crash test of the suite (test/interop/qcow2-crash.test.ts) with more
# cycles: `lunkit serve` exports a qcow2 overlay over NBD, is killed with
# SIGKILL at a random moment during writes, FUA writes and flushes, and after
# each kill `qemu-img check` must find no corruption and every write
# acknowledged before a completed flush (or with FUA) must read back.
#
#   ./scripts/qcow2-crash.sh            500 cycles (about 25 s per 20 on 2 cores)
#   ./scripts/qcow2-crash.sh 2000       2000 cycles
#   LUNKIT_CRASH_SEED=123 ./scripts/qcow2-crash.sh 50    repeat a run (the seed is in a failure's message)
#
# Builds dist/ first (the daemon runs from the build).
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-${LUNKIT_CRASH_CYCLES:-500}}"
case "$cycles" in '' | *[!0-9]*) echo "usage: $0 [CYCLES]" >&2; exit 2 ;; esac
npx tsc -p tsconfig.build.json
LUNKIT_CRASH_CYCLES="$cycles" exec npx vitest run --project interop test/interop/qcow2-crash.test.ts
