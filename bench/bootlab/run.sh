#!/usr/bin/env bash
# The boot storm of issue 15: N clients of a lunkit boot lab (each its own
# qcow2 overlay of one golden image) read the same first 256 MiB at once;
# tgtd serving the golden itself as N LUs is the peer. See bench/README.md.
# Arguments: --clients 1,10,50, --span MiB (256), --size MiB (golden, 1024),
# --io-size KiB (128), --depth N (8), --dir DIR (/var/tmp: on disk, so the
# cold runs can drop the page cache; tmpfs gives warm only), --client-procs N (2),
# --seconds N (per-storm limit, 300), --servers tgtd,lunkit, --cache cold,warm,
# --cpu-prof DIR (profile the lunkit daemon), --baseline-rev REV (also measure
# the build of git revision REV in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
. bench/baseline.sh
# Not exec: the EXIT trap of bench/baseline.sh removes the baseline tree.
node dist/tools/bench-bootlab.js "${args[@]}"
