#!/usr/bin/env bash
# Puts `lunkit` on the PATH: a symlink $LUNKIT_BIN_DIR/lunkit (default
# /usr/local/bin) -> this checkout's bin/lunkit.js. Run by setup.sh.
# Idempotent. It replaces only what a lunkit setup made: a symlink to a
# bin/lunkit.js of a lunkit checkout (another clone, a moved one, a removed
# one). Anything else (an npm install -g, someone's own script) is left alone
# with a message; setup goes on either way (exit 0), since node bin/lunkit.js
# still works.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd -P)
target="$root/bin/lunkit.js"
dir=${LUNKIT_BIN_DIR:-/usr/local/bin}
link="$dir/lunkit"

if [ -L "$link" ]; then
  current=$(readlink "$link")
  if [ "$current" = "$target" ]; then
    exit 0
  fi
  # A checkout made it if the target is .../bin/lunkit.js and that tree is (or
  # was: the target is gone) a lunkit checkout, not an npm package directory.
  old_root=$(dirname "$(dirname "$current")")
  ours=0
  case "$current" in
    /*/bin/lunkit.js)
      if [ ! -e "$current" ]; then ours=1
      elif [ -e "$old_root/.git" ] && grep -q '"name": "lunkit"' "$old_root/package.json" 2>/dev/null; then ours=1
      fi ;;
  esac
  if [ "$ours" != 1 ]; then
    echo "setup: $link already points to $current, which is not a lunkit checkout; leaving it (remove it, or npm uninstall -g lunkit, and re-run setup to use this checkout)" >&2
    exit 0
  fi
  echo "setup: $link pointed to $current; now $target"
elif [ -e "$link" ]; then
  echo "setup: $link exists and is not a symlink (installed by hand or by a package?); leaving it. Remove it and re-run setup, or run node $target" >&2
  exit 0
else
  echo "setup: linking $link -> $target"
fi
if ! { [ -d "$dir" ] && [ -w "$dir" ]; }; then
  echo "setup: cannot write $dir; lunkit is not on the PATH (run setup as root, set LUNKIT_BIN_DIR to a directory on your PATH, or use node $target)" >&2
  exit 0
fi
ln -sfn "$target" "$link"
