#!/usr/bin/env bash
# Sets everything up (Debian peers, npm packages, build) and runs every test
# tier: type-check, lint (eslint + layer rules), unit, integration, interop with
# real peers (libiscsi, tgtd, qemu-img), fuzz. Ends with vitest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh

echo "== type-check"
npx tsc -p tsconfig.json --noEmit
echo "== lint"
npx eslint --max-warnings 0 .
npx depcruise src --config .dependency-cruiser.cjs --output-type err
echo "== tests (unit, integration, interop, fuzz)"
exec npx vitest run --reporter=default
