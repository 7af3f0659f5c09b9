#!/usr/bin/env bash
# The soak of issue 17 at full size: SESSIONS iSCSI sessions (default 256),
# each with QD workers (default 32) doing WRITE(16) + READ(16) of their own
# 64 KiB slot and comparing the bytes, against a real `lunkit daemon` with a
# file backstore, for MINUTES (default 30). Prints commands, errors, latency
# p50/p99/p99.9/max, and the daemon's RSS and descriptor count (start, after
# warm-up, min, max, end); fails on any error or if RSS/fds grew past the
# margins of test/interop/soak.test.ts (the suite runs 16 x QD8 for 3 minutes).
#
#   ./scripts/soak.sh                 256 sessions x QD32, 30 minutes
#   ./scripts/soak.sh 64 16 10        64 sessions x QD16, 10 minutes
#
# Builds dist/ first (the daemon runs from the build).
set -euo pipefail
cd "$(dirname "$0")/.."
sessions="${1:-256}"
qd="${2:-32}"
minutes="${3:-30}"
for n in "$sessions" "$qd" "$minutes"; do
  case "$n" in '' | *[!0-9]*) echo "usage: $0 [SESSIONS [QD [MINUTES]]]" >&2; exit 2 ;; esac
done
npx tsc -p tsconfig.build.json
LUNKIT_SOAK_SESSIONS="$sessions" LUNKIT_SOAK_QD="$qd" LUNKIT_SOAK_SECONDS=$((minutes * 60)) \
  exec npx vitest run --project interop test/interop/soak.test.ts
