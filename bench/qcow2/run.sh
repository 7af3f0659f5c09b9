#!/usr/bin/env bash
# lunkit's qcow2 backstore (NBD) vs qemu-nbd on copies of the same qcow2
# images on tmpfs, same client (fio --ioengine=nbd). See bench/README.md.
# Arguments: --seconds N (default 10), --size MiB (1024), --dir DIR (/dev/shm).
set -euo pipefail
cd "$(dirname "$0")/../.."
LUNKIT_SETUP_PEERS=1 ./scripts/setup.sh >&2
exec node dist/tools/bench-qcow2.js "$@"
