#!/usr/bin/env bash
# The main job on an embedded default: installs what is missing, builds, and
# serves a 1 GiB ramdisk LUN over iSCSI on 127.0.0.1:3260 and NBD on
# 127.0.0.1:10809 to any client (and as a FUSE file as root). It is the daemon
# of `lunkit daemon`, with its control socket at /run/lunkit/lunkit.sock (or
# $LUNKIT_SOCKET), so `lunkit ls`, `lunkit top` etc. work on it from another
# terminal. Prints the URLs; stops cleanly on Ctrl-C or SIGTERM (q in the
# dashboard on a terminal); works without a terminal (serves until
# signalled). Extra arguments go to `lunkit demo` (e.g. --port 3261 --size 256M).
set -euo pipefail
cd "$(dirname "$0")/.."
LUNKIT_SETUP_PEERS=${LUNKIT_SETUP_PEERS:-1} ./scripts/setup.sh >&2
exec node bin/lunkit.js demo "$@"
