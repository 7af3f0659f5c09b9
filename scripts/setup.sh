#!/usr/bin/env bash
# Installs what lunkit needs on a fresh Debian 12 machine with Node 20, then
# builds it. Idempotent: a second run only checks. Used by demo.sh and test.sh.
#   LUNKIT_SETUP_PEERS=1  also install the real peers the tests talk to.
set -euo pipefail
cd "$(dirname "$0")/.."

# g++/make/python3 build the native addon (fallocate, /dev/fuse transport);
# FUSE needs no library: lunkit speaks the kernel protocol itself.
need_pkgs=(g++ make python3)
if [ "${LUNKIT_SETUP_PEERS:-0}" = 1 ]; then
  # Peers nobody here wrote (ARCHITECTURE.md "Real peers"); systemd brings
  # systemd-analyze, which checks contrib/systemd/lunkit.service.
  need_pkgs+=(libiscsi-bin tgt qemu-utils qemu-block-extra qemu-system-x86 fio e2fsprogs util-linux procps libnbd-bin nbdkit openssl xfsprogs tmux curl \
    atftp tftp-hpa dnsmasq-base ipxe ipxe-qemu fdisk extlinux syslinux-common kmod cpio \
    systemd)
fi
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install ${missing[*]} (run as root, or install them first)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js >= 20 is required (found $(node -v))" >&2
  exit 1
fi

# The native addon (fallocate/SEEK_HOLE for thin file LUNs) builds against the
# Node headers Debian/NodeSource ship; without this node-gyp would try to
# download them.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ -f native/binding.gyp ] && [ ! -f native/build/Release/lunkit_native.node ]; then
  echo "setup: building the native addon"
  npm run --silent install
fi
echo "setup: building TypeScript"
npx tsc -p tsconfig.build.json

# `lunkit` on the PATH (/usr/local/bin/lunkit -> bin/lunkit.js); see link-bin.sh.
./scripts/link-bin.sh
